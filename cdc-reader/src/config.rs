//! The reader's command line: every flag with its environment-variable twin.

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::lsn::Lsn;
pub use crate::snapshot::SnapshotMode;
pub use crate::transforms::extract_new_record_state::{
    DeleteTombstoneHandling, LegacyDeleteHandling,
};
pub use crate::transforms::TransformName;

/// Stream row changes from PostgreSQL (pgoutput) to Kafka as Debezium PostgreSQL connector envelopes.
#[derive(Debug, Clone, Parser)]
#[command(name = "cdc-reader", version, about, long_about = None)]
pub struct ReaderArgs {
    #[command(flatten)]
    pub database: db::DatabaseArgs,

    /// Kafka bootstrap servers (with --sink kafka).
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS)]
    pub kafka_bootstrap_servers: String,

    /// Where envelopes go: Kafka topics, or one JSON line per record on stdout.
    #[arg(long, env = "CDC_SINK", value_enum, default_value_t = SinkKind::Kafka)]
    pub sink: SinkKind,

    /// With --sink stdout: indent each record.
    #[arg(long, env = "CDC_PRETTY")]
    pub pretty: bool,

    /// The logical replication slot (created when missing).
    #[arg(long, env = "CDC_SLOT_NAME", default_value = "playground_slot")]
    pub slot_name: String,

    /// The publication (created when missing; captured tables it lacks are added).
    #[arg(long, env = "CDC_PUBLICATION_NAME", default_value = "playground_pub")]
    pub publication_name: String,

    /// The captured tables, `schema.table`, comma-separated.
    #[arg(
        long,
        env = "CDC_TABLES",
        value_delimiter = ',',
        default_value = "public.orders,public.order_items,public.outbox_events"
    )]
    pub tables: Vec<String>,

    /// Capture every table (a publication FOR ALL TABLES) instead of --tables.
    #[arg(long, env = "CDC_ALL_TABLES")]
    pub all_tables: bool,

    /// Topic prefix, Debezium's `topic.prefix`: topics are `<prefix>.<schema>.<table>`.
    #[arg(long, env = "CDC_TOPIC_PREFIX", default_value = "dbserver1")]
    pub topic_prefix: String,

    /// Write the payload alone, without the JsonConverter `schema` part (schemas.enable=false).
    #[arg(long, env = "CDC_NO_SCHEMAS")]
    pub no_schemas: bool,

    /// Debezium's `decimal.handling.mode` for numeric columns.
    #[arg(long, env = "CDC_DECIMAL_HANDLING", value_enum, default_value_t = DecimalHandlingArg::Precise)]
    pub decimal_handling: DecimalHandlingArg,

    /// Do not write a tombstone (same key, null value) after each delete.
    #[arg(long, env = "CDC_NO_TOMBSTONES")]
    pub no_tombstones: bool,

    /// Partitions for topics the reader creates.
    #[arg(long, env = "CDC_TOPIC_PARTITIONS", default_value_t = 1)]
    pub topic_partitions: i32,

    /// Replication factor for topics the reader creates.
    #[arg(long, env = "CDC_TOPIC_REPLICATION_FACTOR", default_value_t = 1)]
    pub topic_replication_factor: i32,

    /// Kafka producer compression (none, gzip, snappy, lz4, zstd).
    #[arg(long, env = "CDC_KAFKA_COMPRESSION", default_value = "lz4")]
    pub kafka_compression: String,

    /// Extra librdkafka producer settings, `key=value`, repeatable.
    #[arg(long = "kafka-property", env = "CDC_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_properties: Vec<(String, String)>,

    /// How often to report the confirmed LSN to PostgreSQL (standby status update).
    #[arg(long, env = "CDC_STATUS_INTERVAL", value_parser = humantime::parse_duration, default_value = "1s")]
    pub status_interval: Duration,

    /// Drop the slot on exit if this run created it (for experiments; the next run starts fresh).
    #[arg(long, env = "CDC_DROP_SLOT_ON_EXIT")]
    pub drop_slot_on_exit: bool,

    /// Outbox Event Router: inserts into this table become events on `outbox.event.<aggregatetype>`
    /// instead of change envelopes. `none` turns the router off.
    #[arg(long, env = "CDC_OUTBOX_TABLE", default_value = "public.outbox_events")]
    pub outbox_table: String,

    /// The router's topic (Debezium's `route.topic.replacement`).
    #[arg(
        long,
        env = "CDC_OUTBOX_TOPIC_REPLACEMENT",
        default_value = "outbox.event.${routedByValue}"
    )]
    pub outbox_topic_replacement: String,

    /// Initial snapshot: `initial` (when the slot is new), `no-data`, `always`, `initial-only`.
    #[arg(long, env = "CDC_SNAPSHOT_MODE", value_enum, default_value_t = SnapshotMode::Initial)]
    pub snapshot_mode: SnapshotMode,

    /// Write a heartbeat record to `__debezium-heartbeat.<prefix>` this often (e.g. 10s; off by default).
    #[arg(long, env = "CDC_HEARTBEAT_INTERVAL", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Option<Duration>,

    /// SQL to run at each heartbeat (Debezium's `heartbeat.action.query`), e.g. an UPDATE of a
    /// heartbeat table, so a slot on a quiet database still moves forward.
    #[arg(long, env = "CDC_HEARTBEAT_ACTION_QUERY")]
    pub heartbeat_action_query: Option<String>,

    /// Debezium's `provide.transaction.metadata`: BEGIN/END records on `<prefix>.transaction`
    /// and a `transaction` block (id, total_order, data_collection_order) in every event.
    #[arg(long, env = "CDC_PROVIDE_TRANSACTION_METADATA")]
    pub provide_transaction_metadata: bool,

    /// Exit once everything up to this LSN is delivered and confirmed (benchmarks, tests).
    #[arg(long, env = "CDC_UNTIL_LSN", value_parser = parse_lsn)]
    pub until_lsn: Option<Lsn>,

    // ---- Transforms (Debezium's SMTs, see transforms/) and --debezium-config ----
    /// Debezium's New Record State Extraction (`io.debezium.transforms.ExtractNewRecordState`):
    /// write the row (`after`, or `before` for a rewritten delete) instead of the envelope.
    #[arg(long, env = "CDC_UNWRAP", help_heading = "Transforms")]
    pub unwrap: bool,

    /// With --unwrap: `delete.tombstone.handling.mode`, what deletes and tombstones become
    /// (Debezium's default: tombstone).
    #[arg(
        long,
        env = "CDC_UNWRAP_DELETE_TOMBSTONE_HANDLING_MODE",
        value_enum,
        help_heading = "Transforms"
    )]
    pub unwrap_delete_tombstone_handling_mode: Option<DeleteTombstoneHandling>,

    /// With --unwrap: Debezium 2.x's `delete.handling.mode` (none, drop, rewrite); ignored when
    /// --unwrap-delete-tombstone-handling-mode is given.
    #[arg(
        long,
        env = "CDC_UNWRAP_DELETE_HANDLING_MODE",
        value_enum,
        help_heading = "Transforms"
    )]
    pub unwrap_delete_handling_mode: Option<LegacyDeleteHandling>,

    /// With --unwrap: Debezium 2.x's `drop.tombstones` (true or false; 2.x's default true).
    #[arg(long, env = "CDC_UNWRAP_DROP_TOMBSTONES", help_heading = "Transforms")]
    pub unwrap_drop_tombstones: Option<bool>,

    /// With --unwrap: `add.fields`, envelope fields to add to the row, e.g. `op,table,lsn,source.ts_ms`.
    #[arg(
        long,
        env = "CDC_UNWRAP_ADD_FIELDS",
        default_value = "",
        help_heading = "Transforms"
    )]
    pub unwrap_add_fields: String,

    /// With --unwrap: `add.fields.prefix`.
    #[arg(
        long,
        env = "CDC_UNWRAP_ADD_FIELDS_PREFIX",
        default_value = "__",
        help_heading = "Transforms"
    )]
    pub unwrap_add_fields_prefix: String,

    /// With --unwrap: `add.headers`, envelope fields to add as Kafka headers, e.g. `op,db`.
    #[arg(
        long,
        env = "CDC_UNWRAP_ADD_HEADERS",
        default_value = "",
        help_heading = "Transforms"
    )]
    pub unwrap_add_headers: String,

    /// With --unwrap: `add.headers.prefix`.
    #[arg(
        long,
        env = "CDC_UNWRAP_ADD_HEADERS_PREFIX",
        default_value = "__",
        help_heading = "Transforms"
    )]
    pub unwrap_add_headers_prefix: String,

    /// Topic routing (`io.debezium.transforms.ByLogicalTableRouter`) `topic.regex`: topics that
    /// match it all the way go to --route-topic-replacement.
    #[arg(long, env = "CDC_ROUTE_TOPIC_REGEX", help_heading = "Transforms")]
    pub route_topic_regex: Option<String>,

    /// Routing's `topic.replacement`, Java syntax: `$1` is the regex's first group.
    #[arg(long, env = "CDC_ROUTE_TOPIC_REPLACEMENT", help_heading = "Transforms")]
    pub route_topic_replacement: Option<String>,

    /// Routing's `key.enforce.uniqueness`: add the original topic to the key as a field.
    #[arg(long, env = "CDC_ROUTE_KEY_ENFORCE_UNIQUENESS", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Transforms")]
    pub route_key_enforce_uniqueness: bool,

    /// Routing's `key.field.name`.
    #[arg(long, env = "CDC_ROUTE_KEY_FIELD_NAME", default_value = crate::transforms::topic_router::DEFAULT_KEY_FIELD_NAME, help_heading = "Transforms")]
    pub route_key_field_name: String,

    /// Routing's `key.field.regex`: what of the original topic goes into the key field.
    #[arg(long, env = "CDC_ROUTE_KEY_FIELD_REGEX", help_heading = "Transforms")]
    pub route_key_field_regex: Option<String>,

    /// Routing's `key.field.replacement` (needed with --route-key-field-regex).
    #[arg(
        long,
        env = "CDC_ROUTE_KEY_FIELD_REPLACEMENT",
        help_heading = "Transforms"
    )]
    pub route_key_field_replacement: Option<String>,

    /// The order the transforms run in (Kafka Connect's `transforms=` list).
    #[arg(
        long,
        env = "CDC_TRANSFORM_ORDER",
        value_enum,
        value_delimiter = ',',
        default_value = "route,unwrap",
        help_heading = "Transforms"
    )]
    pub transform_order: Vec<TransformName>,

    /// A Debezium PostgreSQL connector configuration (the JSON posted to Kafka Connect, or a
    /// `.properties` file) to run with: its keys become these flags; flags and environment
    /// variables given here win. A key the reader does not support stops the start.
    #[arg(long, env = "CDC_DEBEZIUM_CONFIG")]
    pub debezium_config: Option<std::path::PathBuf>,
    // ---- Riding out PostgreSQL restarts (see retry.rs); keep these flags together. ----
    /// Treat a connection to PostgreSQL as dead when nothing arrives for this long (the reader
    /// asks the server for a reply every --status-interval), or a login takes longer. Like
    /// PostgreSQL's wal_sender_timeout, which drops a silent reader on the server's side.
    #[arg(long, env = "CDC_CONNECTION_TIMEOUT", value_parser = humantime::parse_duration, default_value = "60s")]
    pub connection_timeout: Duration,

    /// Reconnect attempts in a row before giving up on a lost connection (Debezium's
    /// `errors.max.retries`): -1 = unlimited, 0 = stop at the first error.
    #[arg(long, env = "CDC_MAX_RETRIES", default_value_t = -1, allow_negative_numbers = true)]
    pub max_retries: i64,

    /// The wait before the first reconnect attempt; doubled at each further attempt.
    #[arg(long, env = "CDC_RETRY_BACKOFF", value_parser = humantime::parse_duration, default_value = "100ms")]
    pub retry_backoff: Duration,

    /// The longest wait between reconnect attempts (Debezium's
    /// `retriable.restart.connector.wait.ms`, 10 s).
    #[arg(long, env = "CDC_RETRY_BACKOFF_MAX", value_parser = humantime::parse_duration, default_value = "10s")]
    pub retry_backoff_max: Duration,
}

/// Where envelopes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    Kafka,
    Stdout,
}

/// Debezium's `decimal.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecimalHandlingArg {
    Precise,
    Double,
    String,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("expected key=value, got '{text}'")),
    }
}

fn parse_lsn(text: &str) -> Result<Lsn, String> {
    text.parse::<Lsn>()
        .map_err(|e| format!("{e} (expected e.g. 0/16B3748)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_playground() {
        let args = ReaderArgs::try_parse_from(["cdc-reader"]).unwrap();
        assert_eq!(args.slot_name, "playground_slot");
        assert_eq!(
            args.tables,
            vec![
                "public.orders",
                "public.order_items",
                "public.outbox_events"
            ]
        );
        assert_eq!(args.topic_prefix, "dbserver1");
        assert_eq!(args.sink, SinkKind::Kafka);
        assert_eq!(args.connection_timeout, Duration::from_secs(60));
        assert_eq!(
            args.max_retries, -1,
            "unlimited, as Debezium's errors.max.retries"
        );
        assert_eq!(args.retry_backoff, Duration::from_millis(100));
        assert_eq!(args.retry_backoff_max, Duration::from_secs(10));
        let args = ReaderArgs::try_parse_from(["cdc-reader", "--max-retries", "-1"]).unwrap();
        assert_eq!(args.max_retries, -1);
        let args = ReaderArgs::try_parse_from(["cdc-reader", "--max-retries", "3"]).unwrap();
        assert_eq!(args.max_retries, 3);
    }

    #[test]
    fn bad_flags_say_what_is_expected() {
        let error =
            ReaderArgs::try_parse_from(["cdc-reader", "--kafka-property", "oops"]).unwrap_err();
        assert!(error.to_string().contains("expected key=value"), "{error}");
        let error = ReaderArgs::try_parse_from(["cdc-reader", "--until-lsn", "xyz"]).unwrap_err();
        assert!(error.to_string().contains("expected e.g."), "{error}");
    }
}
