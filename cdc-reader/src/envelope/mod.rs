//! # Debezium envelopes: row changes in, Debezium-identical Kafka records out
//!
//! ```text
//! replication -> pgoutput -> [envelope] -> sink
//! ```
//!
//! The pipeline describes a captured table once ([`TableSchema`], from a pgoutput Relation
//! message plus catalog facts) and hands each change over as rows of [`CellValue`]s: the text
//! values pgoutput sent. [`TableEnvelopeBuilder`] turns them into exactly what Debezium's
//! PostgreSQL connector (3.x) writes through Kafka Connect's `JsonConverter`: the topic
//! (`<prefix>.<schema>.<table>`), the key and the value (the change envelope with `before`,
//! `after`, `source`, `op`, timestamps), with or without the schema half.
//!
//! The module is pure: no I/O and no clock (the caller passes the processing time), so every
//! detail is tested from values. The expected outputs in the tests come from Debezium's
//! documentation and source, and from a real Debezium's recordings in `conformance/debezium/`.
//!
//! Files, in reading order:
//! - [`table`]: the input types; [`config`]: the options (Debezium's names).
//! - [`column_rules`]: the options that pick columns by name; `names`: Avro name adjustment.
//! - `kind`: which Kafka Connect type each PostgreSQL type becomes; `value`: converting a value;
//!   `decimal`, `temporal`, `array`, `extra_types` (bits, point, hstore): the formats behind it; `default_value`: column DEFAULTs.
//! - `schema`: Kafka Connect schemas as JSON text; [`source`]: the `source` block.
//! - [`builder`]: the events; `message`: logical decoding messages (`op: "m"`).
//! - `json`: writing JSON exactly as Jackson does.

mod array;
pub mod builder;
pub mod column_rules;
pub mod config;
mod decimal;
mod default_value;
pub mod error;
mod extra_types;
mod json;
mod kind;
pub mod message;
mod names;
mod schema;
pub mod source;
pub mod table;
mod temporal;
mod value;

pub use builder::{EnvelopeRecord, ProcessingTime, TableEnvelopeBuilder};
pub use config::{
    BinaryHandling, ColumnRules, ColumnSelector, DecimalHandling, EnvelopeConfig, HstoreHandling,
    IntervalHandling, KeyColumnsRule, NameAdjustment, TimePrecisionMode, TypeOptions,
    UnknownTypeHandling, DEBEZIUM_VERSION,
};
pub use error::{EnvelopeError, SchemaWarning, UnconvertibleValue};
pub use message::{logical_message, LogicalMessageEnvelopeBuilder};
pub use source::{SnapshotMarker, SourcePosition, TransactionBlock};
pub use table::{CellValue, ColumnSchema, TableSchema};
