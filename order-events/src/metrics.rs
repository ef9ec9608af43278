//! The processor's `/metrics` (with `--metrics-listen`, see [`db::metrics`]): what went in, what
//! came out, how the Kafka transactions fare, how big the state store is, and how long an event
//! takes from its source commit to being readable by a `read_committed` reader.
//!
//! ```text
//! source COMMIT in PostgreSQL ── cdc-reader ── Kafka ── join ── commit_transaction
//! └ source.ts_ms of the event                                 └ now: the event is readable
//!   pgcdc_order_events_end_to_end_latency_seconds = now - source.ts_ms, one per event
//! ```
//!
//! | name | type | labels |
//! |---|---|---|
//! | `pgcdc_order_events_records_total` | counter | `topic`: the input it came from |
//! | `pgcdc_order_events_events_total` | counter | `type`: OrderPlaced, OrderChanged, OrderCancelled, OrderDeleted |
//! | `pgcdc_order_events_dead_letters_total` | counter | |
//! | `pgcdc_order_events_transactions_total` | counter | `outcome`: committed, aborted |
//! | `pgcdc_order_events_commit_seconds` | histogram | |
//! | `pgcdc_order_events_end_to_end_latency_seconds` | histogram | |
//! | `pgcdc_order_events_state_orders` | gauge | |
//! | `pgcdc_order_events_waiting_transactions` | gauge | |
//!
//! The processor is synchronous (rdkafka's `BaseConsumer`/`BaseProducer`, one thread), so the
//! HTTP endpoint runs on a small tokio runtime of its own, on a thread beside it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

/// Starts `/metrics` on `listen`, on a thread of its own; returns once it listens.
pub fn serve_in_background(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = bound_tx.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                let bound = db::metrics::serve(listen, "order-events").await;
                let ok = bound.is_ok();
                let _ = bound_tx.send(bound);
                if ok {
                    // The server runs in a task of this runtime: keep the runtime alive.
                    std::future::pending::<()>().await;
                }
            });
        })
        .context("cannot start the metrics thread")?;
    bound_rx
        .recv()
        .context("the metrics thread ended before it listened")?
}

fn enabled() -> bool {
    db::metrics::enabled()
}

/// Counts one input record of `topic`.
pub fn record_read(topic: &str) {
    if enabled() {
        metrics::counter!("pgcdc_order_events_records_total", "topic" => topic.to_string())
            .increment(1);
    }
}

/// Counts one dead letter (an undecodable record or an incomplete transaction).
pub fn dead_letter() {
    if enabled() {
        metrics::counter!("pgcdc_order_events_dead_letters_total").increment(1);
    }
}

/// Records a committed Kafka transaction: how long the commit took, the events it made
/// readable (their type and the commit time of their source transaction), and the size of the
/// state store after it.
pub fn transaction_committed(
    commit_time: Duration,
    events: &[(&'static str, i64)],
    state_orders: usize,
    waiting_transactions: usize,
) {
    if !enabled() {
        return;
    }
    metrics::counter!("pgcdc_order_events_transactions_total", "outcome" => "committed")
        .increment(1);
    metrics::histogram!("pgcdc_order_events_commit_seconds").record(commit_time.as_secs_f64());
    let latency = metrics::histogram!("pgcdc_order_events_end_to_end_latency_seconds");
    for &(event_type, ts_ms) in events {
        metrics::counter!("pgcdc_order_events_events_total", "type" => event_type).increment(1);
        if let Some(seconds) = db::metrics::seconds_since_unix_micros(ts_ms.saturating_mul(1000)) {
            latency.record(seconds);
        }
    }
    metrics::gauge!("pgcdc_order_events_state_orders").set(state_orders as f64);
    metrics::gauge!("pgcdc_order_events_waiting_transactions").set(waiting_transactions as f64);
}

/// Counts a Kafka transaction that was aborted (the session starts again).
pub fn transaction_aborted() {
    if enabled() {
        metrics::counter!("pgcdc_order_events_transactions_total", "outcome" => "aborted")
            .increment(1);
    }
}
