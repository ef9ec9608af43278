//! The consumer's command line: every flag has an environment-variable twin.
//!
//! ```text
//! cargo run -p consumer                          # follow dbserver1.public.orders, forever
//! cargo run -p consumer -- --replay              # rebuild the projections from the earliest offsets
//! cargo run -p consumer -- --from outbox --replay --until-caught-up
//! cargo run -p consumer -- status                # stored position, log end and lag per partition
//! cargo run -p consumer -- dlq                   # the dead letters, with their errors
//! ```

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use db::DatabaseArgs;

/// The CDC topic cdc-reader writes for `public.orders`.
pub const DEFAULT_CDC_TOPIC: &str = "dbserver1.public.orders";
/// The outbox topic cdc-reader writes for `aggregatetype = 'order'`.
pub const DEFAULT_OUTBOX_TOPIC: &str = "outbox.event.order";
/// The topic of the `order-events` stream processor.
pub const DEFAULT_DOMAIN_TOPIC: &str = "orders.events.v1";
/// The stack's schema registry (scripts/stack).
pub const DEFAULT_SCHEMA_REGISTRY_URL: &str = db::DEFAULT_SCHEMA_REGISTRY_URL;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "consumer",
    version,
    about = "Apply order change events from Kafka to the order_totals projection, exactly once"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Per partition: the stored position, the log-end offset and the lag; and the row counts.
    /// With `--serve ADDR`: the live page of the whole pipeline instead.
    Status(crate::live::LiveArgs),
    /// List the dead-letter records (`<topic>.dlq`) with the error that sent them there.
    Dlq {
        /// Show at most this many records per topic (the most recent ones).
        #[arg(long, env = "CONSUMER_DLQ_LIMIT", default_value_t = 50)]
        limit: usize,
    },
}

/// Which topic the projections are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// The table's change events (Debezium envelopes) on `dbserver1.public.orders`.
    Cdc,
    /// The domain events of the transactional outbox on `outbox.event.order`.
    Outbox,
    /// The domain events the `order-events` stream processor joins, on `orders.events.v1`
    /// (written in Kafka transactions; read with isolation.level=read_committed).
    Domain,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumerArgs {
    /// Kafka bootstrap servers.
    #[arg(long = "kafka-bootstrap-servers", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS, global = true)]
    pub bootstrap_servers: String,

    /// Build the projections from the CDC topic, the outbox topic or the domain events.
    #[arg(
        long,
        env = "CONSUMER_FROM",
        value_enum,
        default_value = "cdc",
        global = true
    )]
    pub from: Source,

    /// Topics to read, comma-separated [default: dbserver1.public.orders, or
    /// outbox.event.order with --from outbox, orders.events.v1 with --from domain].
    #[arg(long, env = "CONSUMER_TOPICS", value_delimiter = ',', global = true)]
    pub topics: Vec<String>,

    /// The consumer's name: the key of its stored offsets, and its Kafka group id (where the
    /// offsets are also committed, for `kafka-consumer-groups --describe` only)
    /// [default: order-projections-cdc, or order-projections-outbox].
    #[arg(long, env = "CONSUMER_GROUP_ID", global = true)]
    pub group_id: Option<String>,

    /// Most records per batch (one PostgreSQL transaction).
    #[arg(long, env = "CONSUMER_BATCH_SIZE", default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub batch_size: u32,

    /// Longest a batch waits to fill before it is applied (e.g. 200ms, 1s).
    #[arg(long, env = "CONSUMER_BATCH_TIMEOUT", default_value = "200ms", value_parser = humantime::parse_duration, global = true)]
    pub batch_timeout: Duration,

    /// A batch also ends when no record came for this long (Kafka has nothing more right now):
    /// under a backlog batches fill up, in a steady stream each change is applied within
    /// milliseconds instead of waiting out --batch-timeout.
    #[arg(long, env = "CONSUMER_BATCH_IDLE", default_value = "5ms", value_parser = humantime::parse_duration, global = true)]
    pub batch_idle: Duration,

    /// Empty the projections and forget every stored offset (one transaction), then rebuild
    /// from the earliest offsets.
    #[arg(long, env = "CONSUMER_REPLAY", global = true)]
    pub replay: bool,

    /// Share the partitions with every other consumer of the same `--group-id` through Kafka's
    /// group protocol (cooperative-sticky) instead of being the only writer: start as many
    /// instances as there are partitions. Refuses `--replay` (reset first with one instance:
    /// `consumer --replay --until-caught-up`, then start the group). See `consumer::group`.
    #[arg(long, env = "CONSUMER_GROUP_MODE", global = true)]
    pub group_mode: bool,

    /// Exit once every partition reaches the end offset it had at start, and print events/s.
    #[arg(long, env = "CONSUMER_UNTIL_CAUGHT_UP", global = true)]
    pub until_caught_up: bool,

    /// First wait after a failed batch or a lost server (PostgreSQL, Kafka); doubles with
    /// every failed attempt up to --retry-backoff-max. The consumer never gives up.
    #[arg(long, env = "CONSUMER_RETRY_BACKOFF", default_value = "500ms", value_parser = humantime::parse_duration, global = true)]
    pub retry_backoff: Duration,

    /// The schema registry's Confluent API, for CDC records written with `--format avro`.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = DEFAULT_SCHEMA_REGISTRY_URL, global = true)]
    pub schema_registry_url: String,

    /// Longest wait between two attempts.
    #[arg(long, env = "CONSUMER_RETRY_BACKOFF_MAX", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub retry_backoff_max: Duration,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9102); off when unset.
    #[arg(long, env = "CONSUMER_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl ConsumerArgs {
    /// The topics to read: `--topics`, or the source's default.
    pub fn topics(&self) -> Vec<String> {
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if !topics.is_empty() {
            return topics;
        }
        match self.from {
            Source::Cdc => vec![DEFAULT_CDC_TOPIC.to_string()],
            Source::Outbox => vec![DEFAULT_OUTBOX_TOPIC.to_string()],
            Source::Domain => vec![DEFAULT_DOMAIN_TOPIC.to_string()],
        }
    }

    /// The consumer's name: `--group-id`, or one per source.
    pub fn consumer_name(&self) -> String {
        match (&self.group_id, self.from) {
            (Some(name), _) if !name.trim().is_empty() => name.trim().to_string(),
            (_, Source::Cdc) => "order-projections-cdc".to_string(),
            (_, Source::Outbox) => "order-projections-outbox".to_string(),
            (_, Source::Domain) => "order-projections-domain".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_source() {
        let cli = Cli::parse_from(["consumer"]);
        assert_eq!(cli.consumer.topics(), vec![DEFAULT_CDC_TOPIC]);
        assert_eq!(cli.consumer.consumer_name(), "order-projections-cdc");
        let cli = Cli::parse_from(["consumer", "--from", "outbox", "--replay"]);
        assert_eq!(cli.consumer.topics(), vec![DEFAULT_OUTBOX_TOPIC]);
        assert!(cli.consumer.replay);
        assert!(!cli.consumer.group_mode);
        let cli = Cli::parse_from(["consumer", "--group-mode", "--group-id", "g"]);
        assert!(cli.consumer.group_mode);
        assert_eq!(cli.consumer.consumer_name(), "g");
    }

    #[test]
    fn flags_after_a_subcommand() {
        let cli = Cli::parse_from([
            "consumer",
            "status",
            "--topics",
            "a,b",
            "--batch-timeout",
            "1s",
        ]);
        assert!(matches!(cli.command, Some(Command::Status(_))));
        assert_eq!(cli.consumer.topics(), vec!["a", "b"]);
    }
}
