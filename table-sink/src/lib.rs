//! # table-sink: Kafka topics in, rows of another store out
//!
//! A Kafka Connect-style sink, the general tool at the end of many CDC pipelines: it reads
//! Debezium change events (JSON with or without schema, Avro through the registry) and flat
//! events (the outbox topic, the producer's direct-publish events) and keeps tables of a
//! PostgreSQL database (or a Cassandra keyspace) equal to what the events say.
//!
//! ```text
//! dbserver1.public.orders ──────┐                                   ┌─> playground_mirror: orders
//! dbserver1.public.order_items ─┴─> table-sink ─(rows + offsets, ───┴─> order_items
//!                                    │            one transaction)
//!                                    └─ records it cannot write ─> <topic>.dlq
//! ```
//!
//! The modules, in the order a record meets them:
//!
//! - [`config`]: the command line (Kafka Connect's option names as flags, `TABLE_SINK_*` twins).
//! - [`change`]: the model every step speaks: [`change::RowChange`] of a [`change::Row`] with
//!   its typed fields, into a [`change::TableId`], from a [`change::Position`].
//! - [`input`]: record bytes -> JSON (Avro through the schema registry).
//! - [`decode`]: JSON -> [`change::RowChange`]: change events and flat events, Debezium's
//!   logical types, the primary key (`--primary-key-mode`).
//! - [`route`]: `--route REGEX=REPLACEMENT`, Kafka Connect's RegexRouter.
//! - [`target`]: the [`target::Target`] trait a store implements, and who keeps the offsets.
//! - [`postgres`]: the PostgreSQL target (plan, SQL, type map; offsets in the same transaction).
//! - [`cassandra`]: the Cassandra target (type map, plan: batches per partition; offsets
//!   committed to the Kafka group once Cassandra acknowledged the writes).
//! - [`sink`]: the loop: poll, decode, route, write, dead-letter, retry.
//! - [`dlq`]: the dead-letter topic (`table-sink dlq` lists it).
//!
//! Pure (values in, values out, unit-tested without servers): `change`, `decode`,
//! `envelope_plan`, `route`, `target`, `postgres::{plan, sql, types}`, `cassandra::{plan, types}`.

pub mod cassandra;
pub mod change;
pub mod config;
pub mod decode;
pub mod dlq;
pub mod envelope_plan;
pub mod input;
pub mod postgres;
pub mod route;
pub mod sink;
pub mod target;

pub use config::{Cli, Command, SinkArgs};
pub use sink::RunSummary;

use anyhow::Context;

/// Which store `--to` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetUrl {
    Postgres(String),
    Cassandra(String),
}

impl TargetUrl {
    pub fn parse(to: &str) -> anyhow::Result<Self> {
        let to = to.trim();
        if to.starts_with("postgres://") || to.starts_with("postgresql://") {
            Ok(TargetUrl::Postgres(to.to_string()))
        } else if to.starts_with("cassandra://") {
            Ok(TargetUrl::Cassandra(to.to_string()))
        } else {
            anyhow::bail!(
                "--to `{to}`: expected postgres://user:password@host:port/database or cassandra://host:port/keyspace"
            )
        }
    }
}

/// Checks what can be checked without I/O (before `PGCDC_CHECK_ARGS` exits).
pub fn validate(cli: &Cli) -> anyhow::Result<()> {
    let args = &cli.sink;
    route::Router::new(&args.routes)?;
    if cli.command.is_none() {
        anyhow::ensure!(
            !args.topics().is_empty(),
            "no topics to read: pass --topics a,b (or TABLE_SINK_TOPICS)"
        );
        let to = args
            .to
            .as_deref()
            .context("no target: pass --to postgres://... (or TABLE_SINK_TO)")?;
        TargetUrl::parse(to)?;
    }
    if args.primary_key_mode == config::PrimaryKeyMode::RecordValue {
        anyhow::ensure!(
            !args.primary_key_fields.is_empty(),
            "--primary-key-mode record_value needs --primary-key-fields (the value's key columns)"
        );
    }
    if args.primary_key_mode == config::PrimaryKeyMode::None {
        anyhow::ensure!(
            args.insert_mode == config::InsertMode::Insert,
            "--primary-key-mode none has no key to upsert by: add --insert-mode insert"
        );
    }
    Ok(())
}

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    validate(&cli)?;
    let args = &cli.sink;
    if let Some(Command::Dlq { limit }) = cli.command {
        let dlqs: Vec<String> = args
            .topics()
            .iter()
            .map(|t| args.dlq_topic_for(t))
            .collect();
        let mut dlqs = dlqs;
        dlqs.dedup();
        return consumer::dlq::print_dlqs(&args.bootstrap_servers, &dlqs, limit);
    }
    if let Some(listen) = args.metrics_listen {
        db::metrics::serve(listen, "table-sink").await?;
    }
    let to = args.to.clone().unwrap_or_default();
    let summary = match TargetUrl::parse(&to)? {
        TargetUrl::Postgres(url) => {
            let options = postgres::PostgresOptions {
                insert_mode: args.insert_mode,
                schema_evolution: args.schema_evolution,
            };
            let target = loop {
                match postgres::PostgresTarget::connect(&url, options.clone()).await {
                    Ok(target) => break target,
                    Err(error) => {
                        tracing::warn!(%error, "cannot reach the target: waiting and trying again");
                        tokio::time::sleep(
                            args.retry_backoff_max
                                .min(std::time::Duration::from_secs(2)),
                        )
                        .await;
                    }
                }
            };
            sink::run(args, target).await?
        }
        TargetUrl::Cassandra(url) => {
            let options = cassandra::CassandraOptions::from_args(
                &args.cassandra,
                args.schema_evolution == config::SchemaEvolution::Basic,
            );
            let target = loop {
                match cassandra::CassandraTarget::connect(&url, options.clone()).await {
                    Ok(target) => break target,
                    Err(error) => {
                        tracing::warn!(%error, "cannot reach Cassandra: waiting and trying again");
                        tokio::time::sleep(
                            args.retry_backoff_max
                                .min(std::time::Duration::from_secs(2)),
                        )
                        .await;
                    }
                }
            };
            sink::run(args, target).await?
        }
    };
    println!(
        "{} records ({} changes written, {} skipped, {} dead letters{}) in {:.1}s: {:.0} records/s",
        summary.records,
        summary.changes,
        summary.skipped,
        summary.dead_letters,
        match summary.retries {
            0 => String::new(),
            n => format!(", {n} retries"),
        },
        summary.elapsed.as_secs_f64(),
        summary.records_per_second()
    );
    Ok(())
}
