//! Settings of the envelope builder, named after the Debezium options they mirror.

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

/// What to do with a column whose type the builder does not map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownTypeHandling {
    /// Write PostgreSQL's text form as a plain string (and warn once when the table is set up).
    #[default]
    AsText,
    /// Leave the column out of events, as Debezium does (`include.unknown.datatypes=false`).
    Omit,
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
        }
    }
}
