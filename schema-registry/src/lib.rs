//! # schema-registry: Avro records in the Confluent wire format, and the registry they name
//!
//! The half of the pipeline that Debezium users meet with `AvroConverter`: instead of carrying
//! its schema in every record (JSON with `schemas.enable=true`), a record carries a 5-byte header
//! that names a schema registered once in a schema registry, then the Avro binary datum.
//!
//! ```text
//!  cdc-reader ──Connect schema + payload (JSON)──> connect_avro ──Avro schema──> client ──> registry
//!      │                                               │ datum                     │ id      (Apicurio,
//!      └────────── wire::encode(id, datum) <───────────┴───────────────────────────┘          /apis/ccompat/v7)
//!                         │ Kafka
//!  consumer, topic-peek ──┴─ wire::decode -> id -> client (writer schema, cached) -> datum -> JSON
//!                                                                   (the consumer: datum_view)
//! ```
//!
//! Modules, in the order a record is made:
//! - [`names`]: Avro's name rules, and how Debezium's `schema.name.adjustment.mode=avro` fixes names.
//! - [`connect_avro`]: Kafka Connect's `AvroData` rules: a Connect schema (as `JsonConverter`
//!   writes it) -> the Avro schema, a Connect payload -> the Avro datum (pure).
//! - [`transcode`]: the fast path of the same rules: a payload's JSON bytes -> the Avro datum in
//!   one pass, guided by a plan made once per schema (pure; checked against [`connect_avro`]).
//! - [`avro_json`]: the way back: an Avro datum -> the JSON payload `JsonConverter` would have
//!   written, and an Avro schema -> the Connect schema (pure).
//! - [`datum_view`]: the fast way back: an Avro datum read by any serde `Deserialize` as that
//!   JSON payload, with no tree in between (pure; checked against [`avro_json`]).
//! - [`wire`]: the Confluent wire format: magic byte 0, 4-byte big-endian schema id, datum (sans-IO).
//! - [`encoder`]: a Connect JSON record -> the wire format (translate, register, encode; cached).
//! - [`decoder`]: the wire format -> the JSON payload (writer schema by id, cached).
//! - [`client`]: the registry's HTTP API: register a subject's schema, fetch a schema by id, both
//!   cached; errors that say whether waiting helps.
//!
//! A crate of its own because everything that writes or reads records needs it: cdc-reader,
//! the consumer (which must not depend on cdc-reader) and topic-peek.

pub mod avro_json;
pub mod client;
pub mod connect_avro;
pub mod datum_view;
pub mod decoder;
pub mod encoder;
pub mod names;
pub mod transcode;
pub mod wire;

pub use client::{RegistryClient, RegistryError, WriterSchema};
pub use connect_avro::{AvroRecordSchema, ConnectAvroError};
pub use decoder::{AvroDecoder, DecodeError, DecodedRecord};
pub use encoder::{AvroEncoder, EncodeError};
pub use wire::WireError;
