//! Settings of the envelope builder, named after the Debezium options they mirror.

pub use super::column_rules::{ColumnRules, ColumnSelector, KeyColumnsRule};

/// The `source.version` we write: the Debezium release whose output cdc-reader reproduces (and
/// is checked against in `conformance/`). Consumers that look at it see the format they expect.
pub const DEBEZIUM_VERSION: &str = "3.6.1.Final";

/// Debezium's default `unavailable.value.placeholder`: what an unchanged TOAST value becomes
/// when the old value is not known.
pub const DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER: &str = "__debezium_unavailable_value";

/// How `numeric`/`decimal`/`money` values are written (Debezium's `decimal.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalHandling {
    /// Kafka Connect `Decimal` (base64 of the unscaled integer); `numeric` without a declared
    /// scale becomes `io.debezium.data.VariableScaleDecimal`. NaN/Infinity are errors.
    #[default]
    Precise,
    /// A JSON number (a Java double): loses precision.
    Double,
    /// The decimal as a string, e.g. `"47.40"`; NaN becomes `"NAN"`.
    String,
}

/// What to do with a column whose type the builder does not map (Debezium's
/// `include.unknown.datatypes`, plus our default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownTypeHandling {
    /// Write PostgreSQL's text form as a plain string (and warn once when the table is set up).
    #[default]
    AsText,
    /// Leave the column out of events, as Debezium does (`include.unknown.datatypes=false`).
    Omit,
    /// The bytes of PostgreSQL's text form, in the form `binary.handling.mode` gives bytes
    /// (`include.unknown.datatypes=true`).
    AsBytes,
}

/// How dates, times and timestamps are written (Debezium's `time.precision.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimePrecisionMode {
    /// `time(0..3)`/`timestamp(0..3)` in milliseconds, wider ones in microseconds
    /// (`io.debezium.time.*`).
    #[default]
    Adaptive,
    /// As adaptive, but every `time` in microseconds (`io.debezium.time.MicroTime`).
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's own `Date`, `Time` (ms) and `Timestamp` (ms): sub-millisecond digits are lost.
    Connect,
}

/// How `bytea` values are written (Debezium's `binary.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryHandling {
    /// Kafka Connect bytes (JsonConverter writes them as base64).
    #[default]
    Bytes,
    /// A string, standard base64 with padding.
    Base64,
    /// A string, URL-safe base64 (`-` and `_`) with padding.
    Base64UrlSafe,
    /// A string of lower-case hex digits.
    Hex,
}

/// How `interval` values are written (Debezium's `interval.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntervalHandling {
    /// `io.debezium.time.MicroDuration`: microseconds, a month counted as 30.4375 days.
    #[default]
    Numeric,
    /// `io.debezium.time.Interval`: ISO 8601 text, `P1Y2M3DT4H5M6.78S`.
    String,
}

/// How `hstore` values are written (Debezium's `hstore.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HstoreHandling {
    /// `io.debezium.data.Json` text.
    #[default]
    Json,
    /// A Kafka Connect map of string to optional string.
    Map,
}

/// Debezium's `schema.name.adjustment.mode` / `field.name.adjustment.mode`: make names valid
/// Avro names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameAdjustment {
    /// Names as they are.
    #[default]
    None,
    /// Every character Avro does not allow becomes `_`.
    Avro,
    /// Every character Avro does not allow becomes `_uXXXX` (its UTF-16 code in hex).
    AvroUnicode,
}

/// The per-type options together: what decides a column's [`ValueKind`](super::kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeOptions {
    pub decimals: DecimalHandling,
    pub time_precision: TimePrecisionMode,
    pub binary: BinaryHandling,
    pub interval: IntervalHandling,
    pub hstore: HstoreHandling,
}

/// Settings shared by every table's builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeConfig {
    /// Debezium's `topic.prefix`: first part of topic and schema names, and `source.name`.
    pub topic_prefix: String,
    /// The database name written as `source.db`.
    pub database: String,
    /// Kafka Connect JsonConverter `schemas.enable`: `{"schema":..,"payload":..}` when true,
    /// only the payload when false.
    pub schemas_enabled: bool,
    pub decimal_handling: DecimalHandling,
    pub unknown_types: UnknownTypeHandling,
    /// JsonConverter's `replace.null.with.default` (true by default in Kafka): a NULL in a
    /// column that has a DEFAULT is written as that default. Surprising, but it is what a
    /// default Debezium + JsonConverter setup writes.
    pub replace_null_with_default: bool,
    /// Debezium's `unavailable.value.placeholder`.
    pub unavailable_value_placeholder: String,
    /// `source.version`.
    pub source_version: String,
    /// Debezium's `tombstones.on.delete`: follow each delete with a tombstone. The builder does
    /// not act on it (deletes and tombstones are separate calls); the pipeline does.
    pub tombstones_on_delete: bool,
    pub time_precision: TimePrecisionMode,
    pub binary_handling: BinaryHandling,
    pub interval_handling: IntervalHandling,
    pub hstore_handling: HstoreHandling,
    /// Debezium's `schema.name.adjustment.mode`: the Key, Value and Envelope schema names.
    pub schema_name_adjustment: NameAdjustment,
    /// Debezium's `field.name.adjustment.mode`: the column fields' names.
    pub field_name_adjustment: NameAdjustment,
    /// Which columns are written, masked, truncated, described, and which make the key.
    pub column_rules: ColumnRules,
}

impl EnvelopeConfig {
    /// The options that decide each column's type mapping.
    pub fn type_options(&self) -> TypeOptions {
        TypeOptions {
            decimals: self.decimal_handling,
            time_precision: self.time_precision,
            binary: self.binary_handling,
            interval: self.interval_handling,
            hstore: self.hstore_handling,
        }
    }
}

impl Default for EnvelopeConfig {
    fn default() -> Self {
        EnvelopeConfig {
            topic_prefix: "dbserver1".to_string(),
            database: "playground".to_string(),
            schemas_enabled: true,
            decimal_handling: DecimalHandling::Precise,
            unknown_types: UnknownTypeHandling::AsText,
            replace_null_with_default: true,
            unavailable_value_placeholder: DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER.to_string(),
            source_version: DEBEZIUM_VERSION.to_string(),
            tombstones_on_delete: true,
            time_precision: TimePrecisionMode::Adaptive,
            binary_handling: BinaryHandling::Bytes,
            interval_handling: IntervalHandling::Numeric,
            hstore_handling: HstoreHandling::Json,
            schema_name_adjustment: NameAdjustment::None,
            field_name_adjustment: NameAdjustment::None,
            column_rules: ColumnRules::default(),
        }
    }
}
