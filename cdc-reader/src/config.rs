//! The reader's command line: every flag with its environment-variable twin.

use std::time::Duration;

use clap::{Parser, ValueEnum};

pub use crate::changes::SkippedOperations;
use crate::envelope::column_rules::parse_length_and_columns;
use crate::envelope::config::DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER;
use crate::envelope::{
    BinaryHandling, ColumnRules, ColumnSelector, EnvelopeConfig, HstoreHandling, IntervalHandling,
    KeyColumnsRule, NameAdjustment, TimePrecisionMode, UnknownTypeHandling,
};
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

    /// How keys and values are written: `json` (JsonConverter) or `avro` (AvroConverter: the
    /// Confluent wire format, schemas in the schema registry).
    #[arg(long, env = "CDC_FORMAT", value_enum, default_value_t = RecordFormat::Json)]
    pub format: RecordFormat,

    /// The schema registry's Confluent API, with --format avro (`scripts/stack env` prints it).
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = DEFAULT_SCHEMA_REGISTRY_URL)]
    pub schema_registry_url: String,

    /// Debezium's `decimal.handling.mode` for numeric columns.
    #[arg(long, env = "CDC_DECIMAL_HANDLING", value_enum, default_value_t = DecimalHandlingArg::Precise)]
    pub decimal_handling: DecimalHandlingArg,

    /// Do not write a tombstone (same key, null value) after each delete.
    #[arg(long, env = "CDC_NO_TOMBSTONES")]
    pub no_tombstones: bool,

    /// Partitions for topics the reader creates.
    #[arg(long, env = "CDC_TOPIC_PARTITIONS", default_value_t = 1)]
    pub topic_partitions: i32,

    /// Replication factor for topics the reader creates; -1: the brokers' own
    /// `default.replication.factor` (1 on the single-broker stack, 3 with `scripts/stack up
    /// --brokers 3`).
    #[arg(long, env = "CDC_TOPIC_REPLICATION_FACTOR", default_value_t = -1, allow_negative_numbers = true)]
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

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9101); off when unset.
    #[arg(long, env = "CDC_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,

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
    // ---- Snapshots on demand and in parallel (see incremental/ and snapshot.rs) ----
    /// Debezium's `signal.data.collection`: the signal table (`id, type, data`) whose inserted
    /// rows are signals (execute-snapshot, stop-, pause-, resume-snapshot); added to the
    /// publication; its rows are not written to Kafka.
    #[arg(long, env = "CDC_SIGNAL_DATA_COLLECTION")]
    pub signal_data_collection: Option<String>,

    /// Debezium's `incremental.snapshot.chunk.size`: rows per chunk of an incremental snapshot.
    #[arg(long, env = "CDC_INCREMENTAL_SNAPSHOT_CHUNK_SIZE", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub incremental_snapshot_chunk_size: u32,

    /// Debezium's `snapshot.max.threads`: connections reading the initial snapshot in parallel
    /// (each imports the slot's exported snapshot); 1 = one table after another on one.
    #[arg(long, env = "CDC_SNAPSHOT_MAX_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub snapshot_max_threads: u32,
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

    #[command(flatten)]
    pub record_options: RecordOptionArgs,
}

// ---- Debezium's options that shape values and records (README "Options") ----------------
// Each flag is a Debezium connector key with its dots as dashes, taking Debezium's values.

/// How values and records are shaped: Debezium's connector options of the same names.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordOptionArgs {
    /// Debezium's `time.precision.mode`: `adaptive`, `adaptive_time_microseconds` or `connect`.
    #[arg(long, env = "CDC_TIME_PRECISION_MODE", value_enum, default_value_t = TimePrecisionModeArg::Adaptive)]
    pub time_precision_mode: TimePrecisionModeArg,

    /// Debezium's `binary.handling.mode` for bytea: `bytes`, `base64`, `base64-url-safe` or `hex`.
    #[arg(long, env = "CDC_BINARY_HANDLING_MODE", value_enum, default_value_t = BinaryHandlingModeArg::Bytes)]
    pub binary_handling_mode: BinaryHandlingModeArg,

    /// Debezium's `interval.handling.mode`: `numeric` (microseconds) or `string` (ISO 8601).
    #[arg(long, env = "CDC_INTERVAL_HANDLING_MODE", value_enum, default_value_t = IntervalHandlingModeArg::Numeric)]
    pub interval_handling_mode: IntervalHandlingModeArg,

    /// Debezium's `hstore.handling.mode`: `json` (a JSON string) or `map`.
    #[arg(long, env = "CDC_HSTORE_HANDLING_MODE", value_enum, default_value_t = HstoreHandlingModeArg::Json)]
    pub hstore_handling_mode: HstoreHandlingModeArg,

    /// Debezium's `column.include.list`: only these columns (regexes over schema.table.column,
    /// comma-separated) are written.
    #[arg(long, env = "CDC_COLUMN_INCLUDE_LIST", value_parser = ColumnSelector::parse, conflicts_with = "column_exclude_list")]
    pub column_include_list: Option<ColumnSelector>,

    /// Debezium's `column.exclude.list`: these columns (regexes over schema.table.column) are left out.
    #[arg(long, env = "CDC_COLUMN_EXCLUDE_LIST", value_parser = ColumnSelector::parse)]
    pub column_exclude_list: Option<ColumnSelector>,

    /// Debezium's `message.key.columns`: `<schema.table regex>:<col>,<col>;...` replaces the
    /// primary key as the record key of those tables.
    #[arg(long, env = "CDC_MESSAGE_KEY_COLUMNS", value_parser = KeyColumnsRule::parse_list)]
    pub message_key_columns: Option<KeyColumnsRules>,

    /// Debezium's `skipped.operations`: operations not written, any of `c,u,d,t`, or `none`.
    /// Our default is `none` (truncates written); Debezium's is `t`.
    #[arg(long, env = "CDC_SKIPPED_OPERATIONS", default_value = "none", value_parser = SkippedOperations::parse)]
    pub skipped_operations: SkippedOperations,

    /// Debezium's `include.unknown.datatypes`: `false` leaves columns of unmapped types out (as
    /// Debezium does), `true` writes the bytes of their text; our default `text` writes their text.
    #[arg(long, env = "CDC_INCLUDE_UNKNOWN_DATATYPES", value_enum, default_value_t = UnknownDatatypesArg::Text)]
    pub include_unknown_datatypes: UnknownDatatypesArg,

    /// Debezium's `unavailable.value.placeholder`: what an unchanged TOAST value becomes
    /// (`hex:` and hex digits for bytes that are not text).
    #[arg(long, env = "CDC_UNAVAILABLE_VALUE_PLACEHOLDER", default_value = DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER)]
    pub unavailable_value_placeholder: String,

    /// Debezium's `column.mask.with.N.chars`, as `N:<regexes>` (repeatable): string columns
    /// written as N asterisks.
    #[arg(long = "column-mask-with-chars", env = "CDC_COLUMN_MASK_WITH_CHARS", value_delimiter = ';', value_parser = parse_length_and_columns)]
    pub column_mask_with_chars: Vec<(usize, ColumnSelector)>,

    /// Debezium's `column.truncate.to.N.chars`, as `N:<regexes>` (repeatable): values cut to N
    /// characters (bytes for bytea).
    #[arg(long = "column-truncate-to-chars", env = "CDC_COLUMN_TRUNCATE_TO_CHARS", value_delimiter = ';', value_parser = parse_length_and_columns)]
    pub column_truncate_to_chars: Vec<(usize, ColumnSelector)>,

    /// Debezium's `column.propagate.source.type`: these columns' schemas carry
    /// `__debezium.source.column.type`, `.length`, `.scale`.
    #[arg(long, env = "CDC_COLUMN_PROPAGATE_SOURCE_TYPE", value_parser = ColumnSelector::parse)]
    pub column_propagate_source_type: Option<ColumnSelector>,

    /// Debezium's `datatype.propagate.source.type`: the same for columns of these types
    /// (regexes over the type name, e.g. `varchar,numeric`).
    #[arg(long, env = "CDC_DATATYPE_PROPAGATE_SOURCE_TYPE", value_parser = ColumnSelector::parse)]
    pub datatype_propagate_source_type: Option<ColumnSelector>,

    /// Debezium's `schema.name.adjustment.mode`: `none`, `avro` or `avro_unicode`.
    #[arg(long, env = "CDC_SCHEMA_NAME_ADJUSTMENT_MODE", value_enum, default_value_t = NameAdjustmentModeArg::None)]
    pub schema_name_adjustment_mode: NameAdjustmentModeArg,

    /// Debezium's `field.name.adjustment.mode`: `none`, `avro` or `avro_unicode`.
    #[arg(long, env = "CDC_FIELD_NAME_ADJUSTMENT_MODE", value_enum, default_value_t = NameAdjustmentModeArg::None)]
    pub field_name_adjustment_mode: NameAdjustmentModeArg,
}

/// The rules of one `--message-key-columns` (an alias: clap would take a `Vec` for a list of
/// flag values).
pub type KeyColumnsRules = Vec<KeyColumnsRule>;

/// Debezium's `time.precision.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimePrecisionModeArg {
    Adaptive,
    #[value(name = "adaptive_time_microseconds")]
    AdaptiveTimeMicroseconds,
    Connect,
}

/// Debezium's `binary.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BinaryHandlingModeArg {
    Bytes,
    Base64,
    #[value(name = "base64-url-safe")]
    Base64UrlSafe,
    Hex,
}

/// Debezium's `interval.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntervalHandlingModeArg {
    Numeric,
    String,
}

/// Debezium's `hstore.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HstoreHandlingModeArg {
    Json,
    Map,
}

/// Debezium's `include.unknown.datatypes`, plus our default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownDatatypesArg {
    /// Their PostgreSQL text form as a string (ours; Debezium has no such mode).
    Text,
    True,
    False,
}

/// Debezium's `schema.name.adjustment.mode` / `field.name.adjustment.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NameAdjustmentModeArg {
    None,
    Avro,
    #[value(name = "avro_unicode")]
    AvroUnicode,
}

impl RecordOptionArgs {
    /// Puts these options into the envelope settings.
    pub fn apply_to(&self, config: &mut EnvelopeConfig) {
        config.time_precision = match self.time_precision_mode {
            TimePrecisionModeArg::Adaptive => TimePrecisionMode::Adaptive,
            TimePrecisionModeArg::AdaptiveTimeMicroseconds => {
                TimePrecisionMode::AdaptiveTimeMicroseconds
            }
            TimePrecisionModeArg::Connect => TimePrecisionMode::Connect,
        };
        config.binary_handling = match self.binary_handling_mode {
            BinaryHandlingModeArg::Bytes => BinaryHandling::Bytes,
            BinaryHandlingModeArg::Base64 => BinaryHandling::Base64,
            BinaryHandlingModeArg::Base64UrlSafe => BinaryHandling::Base64UrlSafe,
            BinaryHandlingModeArg::Hex => BinaryHandling::Hex,
        };
        config.interval_handling = match self.interval_handling_mode {
            IntervalHandlingModeArg::Numeric => IntervalHandling::Numeric,
            IntervalHandlingModeArg::String => IntervalHandling::String,
        };
        config.hstore_handling = match self.hstore_handling_mode {
            HstoreHandlingModeArg::Json => HstoreHandling::Json,
            HstoreHandlingModeArg::Map => HstoreHandling::Map,
        };
        config.unknown_types = match self.include_unknown_datatypes {
            UnknownDatatypesArg::Text => UnknownTypeHandling::AsText,
            UnknownDatatypesArg::True => UnknownTypeHandling::AsBytes,
            UnknownDatatypesArg::False => UnknownTypeHandling::Omit,
        };
        config.unavailable_value_placeholder = self.unavailable_value_placeholder.clone();
        let adjustment = |mode: NameAdjustmentModeArg| match mode {
            NameAdjustmentModeArg::None => NameAdjustment::None,
            NameAdjustmentModeArg::Avro => NameAdjustment::Avro,
            NameAdjustmentModeArg::AvroUnicode => NameAdjustment::AvroUnicode,
        };
        config.schema_name_adjustment = adjustment(self.schema_name_adjustment_mode);
        config.field_name_adjustment = adjustment(self.field_name_adjustment_mode);
        config.column_rules = ColumnRules {
            include: self.column_include_list.clone(),
            exclude: self.column_exclude_list.clone(),
            mask: self.column_mask_with_chars.clone(),
            truncate: self.column_truncate_to_chars.clone(),
            propagate_source_type: self.column_propagate_source_type.clone(),
            propagate_datatype: self.datatype_propagate_source_type.clone(),
            message_key_columns: self.message_key_columns.clone().unwrap_or_default(),
        };
    }
}

// ---- end of Debezium's value and record options --------------------------------------------

/// The stack's schema registry (scripts/stack: Apicurio's Confluent API).
pub const DEFAULT_SCHEMA_REGISTRY_URL: &str = db::DEFAULT_SCHEMA_REGISTRY_URL;

/// How records are written (`key.converter` / `value.converter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    Json,
    Avro,
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

    /// The README's "Options" table: every flag exists with the default it names, each value it
    /// lists is accepted, and every recording it names is in conformance/debezium/.
    #[test]
    fn options_table_in_the_readme_matches_the_flags() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Options\n")
            .nth(1)
            .expect("README has an Options section");
        let rows: Vec<Vec<&str>> = section
            .lines()
            .skip_while(|line| !line.starts_with("| Debezium key"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        assert!(rows.len() >= 17, "{} rows", rows.len());
        let command = <ReaderArgs as clap::CommandFactory>::command();
        let conformance =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/debezium");
        let quoted = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        for row in rows {
            let flag = row[1].trim_matches('`').trim_start_matches("--");
            let argument = command
                .get_arguments()
                .find(|argument| argument.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("{}: no flag --{flag}", row[0]));
            assert!(argument.get_env().is_some(), "--{flag} has no env twin");
            if let (Some(default), [first]) = (
                argument.get_default_values().first(),
                quoted(row[3]).as_slice(),
            ) {
                assert_eq!(
                    default.to_str(),
                    Some(first.as_str()),
                    "default of --{flag}"
                );
            }
            if !argument.get_possible_values().is_empty() {
                for value in quoted(row[2]) {
                    let argv = ["cdc-reader".to_string(), format!("--{flag}"), value.clone()];
                    assert!(
                        ReaderArgs::try_parse_from(&argv).is_ok(),
                        "--{flag} refuses {value}"
                    );
                }
            }
            if !row[4].contains("unit test") {
                for folder in quoted(row[4]) {
                    let has_recording = std::fs::read_dir(conformance.join(&folder))
                        .map(|entries| {
                            entries.flatten().any(|entry| {
                                entry.path().extension().is_some_and(|ext| ext == "jsonl")
                            })
                        })
                        .unwrap_or(false);
                    assert!(has_recording, "{}: no recording in {folder}", row[0]);
                }
            }
        }
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
