//! table-sink's command line. The option names are Kafka Connect's (Debezium JDBC sink:
//! `insert.mode`, `primary.key.mode`, `primary.key.fields`, `delete.enabled`,
//! `truncate.enabled`, `schema.evolution`; `RegexRouter` for `--route`), spelled as flags;
//! every flag has an environment twin (`TABLE_SINK_*`).
//!
//! ```text
//! cargo run -p table-sink -- --topics dbserver1.public.orders,dbserver1.public.order_items \
//!     --to postgres://playground:playground@127.0.0.1:55432/playground_mirror \
//!     --schema-evolution basic --until-caught-up
//! cargo run -p table-sink -- dlq --topics dbserver1.public.orders
//! ```

use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

/// The stack's schema registry (scripts/stack).
pub const DEFAULT_SCHEMA_REGISTRY_URL: &str = "http://127.0.0.1:58081/apis/ccompat/v7";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "table-sink",
    version,
    about = "A Kafka Connect-style sink: Debezium change events and flat events from Kafka topics \
             into rows of PostgreSQL (or Cassandra) tables"
)]
pub struct Cli {
    #[command(flatten)]
    pub sink: SinkArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List the dead-letter records of the topics (`<topic>.dlq`, or --dlq-topic) with their errors.
    Dlq {
        /// Show at most this many records per topic (the most recent ones).
        #[arg(long, env = "TABLE_SINK_DLQ_LIMIT", default_value_t = 50)]
        limit: usize,
    },
}

/// `--primary-key-mode`: where the key of a row comes from (Debezium JDBC sink's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum PrimaryKeyMode {
    /// The fields of the Kafka record's key (`--primary-key-fields` picks some of them).
    RecordKey,
    /// Fields of the value, named by `--primary-key-fields` (Kafka Connect's `ValueToKey`).
    RecordValue,
    /// No key: every record is inserted (needs `--insert-mode insert`; deletes are skipped).
    None,
}

/// `--insert-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InsertMode {
    /// `INSERT`: a second record with the same key is an error (dead-lettered).
    Insert,
    /// `INSERT ... ON CONFLICT (key) DO UPDATE`: the row ends as the last record says.
    Upsert,
}

/// `--schema-evolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaEvolution {
    /// Tables and columns must exist; a record with an unknown column is dead-lettered.
    None,
    /// Create missing tables and add missing columns (never drops or changes one).
    Basic,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// Kafka bootstrap servers.
    #[arg(long = "kafka-bootstrap-servers", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS, global = true)]
    pub bootstrap_servers: String,

    /// Topics to read, comma-separated.
    #[arg(long, env = "TABLE_SINK_TOPICS", value_delimiter = ',', global = true)]
    pub topics: Vec<String>,

    /// Where rows go: postgres://user:pass@host:port/database (or cassandra://host:port/keyspace).
    #[arg(long, env = "TABLE_SINK_TO", global = true)]
    pub to: Option<String>,

    /// The sink's name: the key of its stored offsets and its Kafka consumer group.
    #[arg(
        long,
        env = "TABLE_SINK_GROUP_ID",
        default_value = "table-sink",
        global = true
    )]
    pub group_id: String,

    /// Route a topic's records to a table, Kafka Connect RegexRouter style: REGEX=REPLACEMENT,
    /// matched against the whole topic name, `$1` for a group; the result is `schema.table` or
    /// `table`. Repeatable (or `;`-separated in the env twin); the first that matches wins.
    /// Unrouted: the source table of a change event, the topic (dots -> underscores) of a flat event.
    #[arg(
        long = "route",
        env = "TABLE_SINK_ROUTES",
        value_delimiter = ';',
        global = true
    )]
    pub routes: Vec<String>,

    /// Copy a record header into the row as a text field, Kafka Connect's HeaderFrom:
    /// HEADER=FIELD (e.g. id=event_id: the outbox event id becomes a column, and can be the key
    /// with --primary-key-mode record_value --primary-key-fields event_id). Repeatable (or
    /// comma-separated). A missing header gives a null field.
    #[arg(
        long = "header-to-field",
        env = "TABLE_SINK_HEADER_TO_FIELD",
        value_delimiter = ',',
        value_parser = crate::decode::HeaderToField::parse,
        global = true
    )]
    pub header_to_field: Vec<crate::decode::HeaderToField>,

    /// Where the primary key comes from: record_key, record_value or none.
    #[arg(
        long,
        env = "TABLE_SINK_PRIMARY_KEY_MODE",
        value_enum,
        default_value = "record_key",
        global = true
    )]
    pub primary_key_mode: PrimaryKeyMode,

    /// The key fields, comma-separated (needed for record_value; a subset for record_key).
    #[arg(
        long,
        env = "TABLE_SINK_PRIMARY_KEY_FIELDS",
        value_delimiter = ',',
        global = true
    )]
    pub primary_key_fields: Vec<String>,

    /// insert or upsert.
    #[arg(
        long,
        env = "TABLE_SINK_INSERT_MODE",
        value_enum,
        default_value = "upsert",
        global = true
    )]
    pub insert_mode: InsertMode,

    /// Apply deletes (op d) and tombstones as DELETEs (`--delete-enabled false` skips them).
    #[arg(long, env = "TABLE_SINK_DELETE_ENABLED", action = ArgAction::Set, default_value_t = true, global = true)]
    pub delete_enabled: bool,

    /// Apply truncate events (op t) as TRUNCATE.
    #[arg(long, env = "TABLE_SINK_TRUNCATE_ENABLED", action = ArgAction::Set, default_value_t = false, default_missing_value = "true", num_args = 0..=1, global = true)]
    pub truncate_enabled: bool,

    /// none: tables must exist; basic: create tables and add missing columns.
    #[arg(
        long,
        env = "TABLE_SINK_SCHEMA_EVOLUTION",
        value_enum,
        default_value = "none",
        global = true
    )]
    pub schema_evolution: SchemaEvolution,

    /// The dead-letter topic [default: <topic>.dlq for each topic].
    #[arg(long, env = "TABLE_SINK_DLQ_TOPIC", global = true)]
    pub dlq_topic: Option<String>,

    /// Exit 0 once every partition reaches the end offset it had at start.
    #[arg(long, env = "TABLE_SINK_UNTIL_CAUGHT_UP", global = true)]
    pub until_caught_up: bool,

    /// Most records per batch (one target transaction).
    #[arg(long, env = "TABLE_SINK_BATCH_SIZE", default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub batch_size: u32,

    /// Longest a batch waits to fill before it is written (e.g. 200ms, 1s).
    #[arg(long, env = "TABLE_SINK_BATCH_TIMEOUT", default_value = "200ms", value_parser = humantime::parse_duration, global = true)]
    pub batch_timeout: Duration,

    /// A batch also ends when no record came for this long (Kafka has nothing more right now):
    /// under a backlog batches fill up, in a steady stream rows are written within
    /// milliseconds instead of waiting out --batch-timeout.
    #[arg(long, env = "TABLE_SINK_BATCH_IDLE", default_value = "5ms", value_parser = humantime::parse_duration, global = true)]
    pub batch_idle: Duration,

    /// First wait after the target or Kafka failed; doubles up to --retry-backoff-max. Never gives up.
    #[arg(long, env = "TABLE_SINK_RETRY_BACKOFF", default_value = "500ms", value_parser = humantime::parse_duration, global = true)]
    pub retry_backoff: Duration,

    /// Longest wait between two attempts.
    #[arg(long, env = "TABLE_SINK_RETRY_BACKOFF_MAX", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub retry_backoff_max: Duration,

    /// The schema registry's Confluent API, for Avro records.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = DEFAULT_SCHEMA_REGISTRY_URL, global = true)]
    pub schema_registry_url: String,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9104); off when unset.
    #[arg(long, env = "TABLE_SINK_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The Cassandra target's flags (--ttl, --consistency, --auto-create, --partition-key,
    /// --clustering-key).
    #[command(flatten)]
    pub cassandra: crate::cassandra::CassandraArgs,
}

impl SinkArgs {
    /// The topics to read, trimmed.
    pub fn topics(&self) -> Vec<String> {
        self.topics
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The dead-letter topic for records of `topic`.
    pub fn dlq_topic_for(&self, topic: &str) -> String {
        match &self.dlq_topic {
            Some(dlq) if !dlq.trim().is_empty() => dlq.trim().to_string(),
            _ => format!("{topic}.dlq"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_jdbc_sinks() {
        let cli = Cli::parse_from(["table-sink", "--topics", "a,b", "--to", "postgres://x/y"]);
        assert_eq!(cli.sink.topics(), vec!["a", "b"]);
        assert_eq!(cli.sink.primary_key_mode, PrimaryKeyMode::RecordKey);
        assert_eq!(cli.sink.insert_mode, InsertMode::Upsert);
        assert!(cli.sink.delete_enabled);
        assert!(!cli.sink.truncate_enabled);
        assert_eq!(cli.sink.schema_evolution, SchemaEvolution::None);
        assert_eq!(cli.sink.dlq_topic_for("a"), "a.dlq");
    }

    #[test]
    fn switches_take_values() {
        let cli = Cli::parse_from([
            "table-sink",
            "--delete-enabled",
            "false",
            "--truncate-enabled",
            "--route",
            "dbserver1\\.public\\.(.*)=mirror_$1",
            "--primary-key-mode",
            "record_value",
            "--primary-key-fields",
            "id",
            "dlq",
        ]);
        assert!(!cli.sink.delete_enabled);
        assert!(cli.sink.truncate_enabled);
        assert_eq!(cli.sink.routes.len(), 1);
        assert_eq!(cli.sink.primary_key_fields, vec!["id"]);
        assert!(matches!(cli.command, Some(Command::Dlq { .. })));
    }

    #[test]
    fn header_to_field_repeats_or_takes_a_list() {
        let cli = Cli::parse_from([
            "table-sink",
            "--header-to-field",
            "id=event_id,eventType=event_type",
            "--header-to-field",
            "trace=trace_id",
        ]);
        let fields: Vec<&str> = cli
            .sink
            .header_to_field
            .iter()
            .map(|h| h.field.as_str())
            .collect();
        assert_eq!(fields, vec!["event_id", "event_type", "trace_id"]);
        assert!(Cli::try_parse_from(["table-sink", "--header-to-field", "id"]).is_err());
    }
}
