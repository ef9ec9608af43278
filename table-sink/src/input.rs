//! Record bytes -> JSON for [`crate::decode`]: JSON as it is, Avro through the registry.
//!
//! A key or value that starts with the magic byte 0 is Avro in the Confluent wire format
//! (cdc-reader `--format avro`; JSON never starts with 0). Its writer schema is fetched from
//! the registry by id (once per id, `schema_registry::AvroDecoder`) and the datum becomes the
//! JSON record with schema, `{"schema":..,"payload":..}`, which decodes like JSON with schema:
//! Debezium's logical types (`connect.name`) come through, so an Avro decimal is a numeric
//! column too. A registry that does not answer is waited for ([`InputError::Transient`]),
//! never a reason to dead-letter.

use schema_registry::{AvroDecoder, RegistryClient};
use serde_json::Value as Json;

use crate::decode::{parse_json, DecodeError};

/// Why bytes did not become JSON.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The record is bad: dead-letter it.
    #[error(transparent)]
    Bad(#[from] DecodeError),
    #[error("the {part} is Avro that does not decode: {reason}")]
    BadAvro { part: &'static str, reason: String },
    /// The registry is away: wait and try the same bytes again.
    #[error("the schema registry does not answer: {0}")]
    Transient(String),
}

/// Reads keys and values; keeps the Avro decoder (and its schema cache) between records.
#[derive(Debug)]
pub struct Input {
    avro: AvroDecoder,
}

impl Input {
    pub fn new(schema_registry_url: &str) -> Self {
        Self {
            avro: AvroDecoder::new(RegistryClient::new(schema_registry_url)),
        }
    }

    /// `None` bytes (a null key, a tombstone) stay `None`. A key that is not JSON but UTF-8
    /// text is taken as a string.
    pub async fn json(
        &mut self,
        part: &'static str,
        bytes: Option<&[u8]>,
    ) -> Result<Option<Json>, InputError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        if bytes.first() == Some(&0) {
            return match self.avro.decode(bytes).await {
                Ok(record) => Ok(Some(record.connect_json())),
                Err(e) if e.is_transient() => Err(InputError::Transient(e.to_string())),
                Err(e) => Err(InputError::BadAvro {
                    part,
                    reason: e.to_string(),
                }),
            };
        }
        match parse_json(part, bytes) {
            Ok(json) => Ok(Some(json)),
            // A key written as plain text (the producer's direct-publish key `42` is JSON by
            // luck; an id like `A-7` is not): take it as a string.
            Err(_) if part == "key" && !bytes.is_empty() => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(Some(Json::String(text.to_string()))),
                Err(_) => Err(parse_json(part, bytes).unwrap_err().into()),
            },
            Err(e) => Err(e.into()),
        }
    }
}
