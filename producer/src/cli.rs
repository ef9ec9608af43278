//! The command line: `producer [run flags]` for the workload, `producer serve` for the HTTP API.
//!
//! ```text
//! cargo run -p producer -- [--orders N | --duration 30s] [--rate 200 | --rate unlimited]
//!     [--customers 100] [--mix create=70,update=20,cancel=5,delete=5] [--seed 42]
//!     [--concurrency K] [--items 3] [--outbox-delete-after-insert]
//!     [--direct-publish [--fail-between-commit-and-publish 0.05] [--direct-publish-topic T]
//!                       [--format json|avro] [--schema-registry-url URL]]
//!     [--max-retries 100] [--retry-backoff 200ms] [--retry-backoff-max 5s]
//! cargo run -p producer -- serve --listen 127.0.0.1:4000
//! ```
//!
//! Every flag can also come from the environment (`PRODUCER_...`, `DATABASE_URL`,
//! `KAFKA_BOOTSTRAP_SERVERS`). This module only turns flags into [`RunConfig`] / [`ServeConfig`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use db::DatabaseArgs;

use crate::direct_publish;
use crate::http::ServeConfig;
use crate::orders::OutboxMode;
use crate::retry::RetryPolicy;
use crate::runner::{DirectPublishConfig, Rate, RunConfig, StopAfter};
use crate::workload::{Mix, WorkloadShape};

/// How many operations a run makes when neither `--orders` nor `--duration` is given.
pub const DEFAULT_OPERATIONS: u64 = 1_000;

#[derive(Debug, Parser)]
#[command(
    name = "producer",
    about = "Write orders and their outbox events to PostgreSQL, one transaction each",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the orders API over HTTP (each write one transaction with its outbox row).
    Serve(ServeArgs),
}

/// Flags of a workload run.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Stop after this many operations (each one order transaction) [default: 1000].
    #[arg(long, env = "PRODUCER_ORDERS", conflicts_with = "duration")]
    pub orders: Option<u64>,
    /// Stop after this long (e.g. 30s, 2m).
    #[arg(long, env = "PRODUCER_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Operations per second over all workers, or `unlimited`.
    #[arg(long, env = "PRODUCER_RATE", default_value = "200")]
    pub rate: Rate,
    /// Customer ids are drawn from 1..=N.
    #[arg(long, env = "PRODUCER_CUSTOMERS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub customers: u32,
    /// Relative weights of the operation kinds.
    #[arg(
        long,
        env = "PRODUCER_MIX",
        default_value = "create=70,update=20,cancel=5,delete=5"
    )]
    pub mix: Mix,
    /// Lines per created order (default: 1 to 5, drawn from the seed).
    #[arg(long, env = "PRODUCER_ITEMS", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub items: Option<u8>,
    /// Seed of the operation sequence: the same seed gives the same operations.
    #[arg(long, env = "PRODUCER_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Workers, each with its own connection and its own seeded sequence.
    #[arg(long, env = "PRODUCER_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Insert each outbox row and delete it in the same transaction (CDC still sees the insert).
    #[arg(long, env = "PRODUCER_OUTBOX_DELETE_AFTER_INSERT")]
    pub outbox_delete_after_insert: bool,
    /// After each commit, also publish the event straight to Kafka (the dual write).
    #[arg(long, env = "PRODUCER_DIRECT_PUBLISH")]
    pub direct_publish: bool,
    /// Probability (0 to 1) that a direct publish is lost after the commit.
    #[arg(
        long,
        env = "PRODUCER_FAIL_BETWEEN_COMMIT_AND_PUBLISH",
        default_value_t = 0.0,
        requires = "direct_publish"
    )]
    pub fail_between_commit_and_publish: f64,
    /// Topic for --direct-publish.
    #[arg(long, env = "PRODUCER_DIRECT_PUBLISH_TOPIC", default_value = direct_publish::DEFAULT_TOPIC)]
    pub direct_publish_topic: String,
    /// How --direct-publish writes each event: `json` (the outbox payload) or `avro` (the
    /// `OrderEvent` schema, registered under `<topic>-value`, Confluent wire format).
    #[arg(long, env = "PRODUCER_FORMAT", value_enum, default_value_t = direct_publish::PublishFormat::Json, requires = "direct_publish")]
    pub format: direct_publish::PublishFormat,
    /// The schema registry's Confluent API, for --format avro (`scripts/stack env` prints it).
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = db::DEFAULT_SCHEMA_REGISTRY_URL)]
    pub schema_registry_url: String,
    /// Kafka for --direct-publish.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS)]
    pub kafka_bootstrap_servers: String,
    /// Do not draw the progress bar.
    #[arg(long, env = "PRODUCER_NO_PROGRESS")]
    pub no_progress: bool,
    /// Failed attempts in a row (PostgreSQL or Kafka away) after which the run gives up.
    #[arg(long, env = "PRODUCER_MAX_RETRIES", default_value_t = 100)]
    pub max_retries: u32,
    /// First wait before an operation is retried on a new connection; doubles per attempt.
    #[arg(long, env = "PRODUCER_RETRY_BACKOFF", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,
    /// Longest wait between two attempts.
    #[arg(long, env = "PRODUCER_RETRY_BACKOFF_MAX", default_value = "5s", value_parser = humantime::parse_duration)]
    pub retry_backoff_max: Duration,
    /// Serve Prometheus metrics on http://ADDR/metrics while the run lasts (e.g. 127.0.0.1:9100).
    #[arg(long, env = "PRODUCER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl RunArgs {
    pub fn into_config(self) -> RunConfig {
        let stop_after = match (self.orders, self.duration) {
            (_, Some(duration)) => StopAfter::Duration(duration),
            (Some(n), None) => StopAfter::Operations(n),
            (None, None) => StopAfter::Operations(DEFAULT_OPERATIONS),
        };
        RunConfig {
            database_url: self.database.database_url,
            stop_after,
            rate: self.rate,
            shape: WorkloadShape {
                mix: self.mix,
                customers: self.customers,
                items_per_order: self.items,
            },
            seed: self.seed,
            concurrency: self.concurrency,
            outbox_mode: OutboxMode {
                delete_after_insert: self.outbox_delete_after_insert,
            },
            direct_publish: self.direct_publish.then_some(DirectPublishConfig {
                bootstrap_servers: self.kafka_bootstrap_servers,
                topic: self.direct_publish_topic,
                fail_probability: self.fail_between_commit_and_publish,
                format: self.format,
                schema_registry_url: self.schema_registry_url,
            }),
            progress: !self.no_progress,
            retry: RetryPolicy {
                max_retries: self.max_retries,
                first_backoff: self.retry_backoff,
                max_backoff: self.retry_backoff_max,
            },
        }
    }
}

/// Flags of `producer serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "PRODUCER_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Insert each outbox row and delete it in the same transaction.
    #[arg(long, env = "PRODUCER_OUTBOX_DELETE_AFTER_INSERT")]
    pub outbox_delete_after_insert: bool,
    /// Database connections the server may hold.
    #[arg(long, env = "PRODUCER_POOL_SIZE", default_value_t = 8)]
    pub pool_size: u32,
    /// How long a request waits for the database before answering 503 (while it is away).
    #[arg(long, env = "PRODUCER_DB_WAIT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub db_wait: Duration,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9100); off when unset.
    #[arg(long, env = "PRODUCER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeArgs {
    pub fn into_config(self) -> ServeConfig {
        ServeConfig {
            database_url: self.database.database_url,
            listen: self.listen,
            outbox_mode: OutboxMode {
                delete_after_insert: self.outbox_delete_after_insert,
            },
            pool_size: self.pool_size.max(1),
            db_wait: self.db_wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let cli = Cli::try_parse_from([
            "producer",
            "--duration",
            "30s",
            "--rate",
            "unlimited",
            "--customers",
            "100",
            "--mix",
            "create=70,update=20,cancel=5,delete=5",
            "--seed",
            "42",
            "--concurrency",
            "4",
        ])
        .unwrap();
        let config = cli.run.into_config();
        assert_eq!(
            config.stop_after,
            StopAfter::Duration(Duration::from_secs(30))
        );
        assert_eq!(config.rate, Rate::Unlimited);
        assert_eq!(config.concurrency, 4);
        assert!(config.direct_publish.is_none());
    }

    #[test]
    fn parses_serve_and_rejects_conflicts() {
        let cli = Cli::try_parse_from(["producer", "serve", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve(_))));
        assert!(Cli::try_parse_from(["producer", "--orders", "1", "--duration", "1s"]).is_err());
        assert!(
            Cli::try_parse_from(["producer", "--fail-between-commit-and-publish", "0.1"]).is_err()
        );
        assert!(Cli::try_parse_from(["producer", "--mix", "refund=1"]).is_err());
    }
}
