//! # consumer: Kafka change events in, exact projections in PostgreSQL out
//!
//! The last hop of the pipeline:
//!
//! ```text
//! dbserver1.public.orders (CDC) ─┐
//!                                ├─> consumer ─(one transaction per batch: projection rows,
//! outbox.event.order (outbox) ───┘             order states, offsets)─> order_totals, order_status_totals
//!                                  └─ poison records ─> <topic>.dlq
//! ```
//!
//! The decoding and folding are pure ([`projections`]); this crate moves bytes:
//!
//! - [`config`]: the command line (every flag with an env twin).
//! - [`kafka`]: the Kafka clients, and why partitions are assigned by hand.
//! - [`consume`]: the loop of sessions: claim, (replay), assign at the stored offsets, batch,
//!   apply; a failed session is followed by the next, from the stored offsets.
//! - [`group`]: `--group-mode`: several instances share the partitions through a Kafka
//!   consumer group (cooperative-sticky); a stored-offset fence in every batch.
//! - [`projection_writer`]: one writer at a time (advisory lock + fencing epoch checked in
//!   every batch); [`retry`]: which failures are retried, and the backoff.
//! - [`record`]: a record of a batch, decoded once: a change, a tombstone, or poison.
//! - [`apply`]: one batch = one transaction with its offsets: the exactly-once step.
//! - [`store`] and [`offsets`]: the projection tables and the offset store in PostgreSQL;
//!   [`state_cache`]: the committed order states kept in memory between batches.
//! - [`dlq`]: the dead-letter topic, and the `dlq` listing.
//! - [`metrics`]: `--metrics-listen`: outcomes, batch sizes, apply time, lag, end-to-end latency.
//! - [`live`]: `status --serve ADDR`: the live page of the whole pipeline (HTML + a JSON endpoint).
//! - [`status`]: stored position, log end and lag per partition.
//! - [`shutdown`]: SIGINT and SIGTERM finish the batch in flight, then stop.

pub mod apply;
pub mod config;
pub mod consume;
pub mod dlq;
pub mod group;
pub mod kafka;
pub mod live;
pub mod metrics;
pub mod offsets;
pub mod projection_writer;
pub mod record;
pub mod retry;
pub mod shutdown;
pub mod state_cache;
pub mod status;
pub mod store;

pub use config::{Cli, Command, ConsumerArgs, Source};
pub use consume::{consume, RunSummary};

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let database_url = &cli.database.database_url;
    match cli.command {
        None => {
            let summary = consume(database_url, &cli.consumer).await?;
            println!(
                "{} records ({} applied, {} duplicates, {} tombstones, {} dead letters{}) in {:.1}s: {:.0} events/s",
                summary.records,
                summary.applied,
                summary.duplicates,
                summary.tombstones,
                summary.dead_letters,
                match summary.restarts {
                    0 => String::new(),
                    n => format!(", {n} restarts after failures"),
                },
                summary.elapsed.as_secs_f64(),
                summary.records_per_second()
            );
        }
        Some(Command::Status(live)) => match live.serve {
            Some(listen) => live::serve(listen, database_url, &cli.consumer, &live).await?,
            None => status::print(database_url, &cli.consumer).await?,
        },
        Some(Command::Dlq { limit }) => dlq::print(
            &cli.consumer.bootstrap_servers,
            &cli.consumer.topics(),
            limit,
        )?,
    }
    Ok(())
}
