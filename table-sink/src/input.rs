//! Record bytes -> JSON for [`crate::decode`]: JSON as it is, Avro through the registry.
//!
//! A key or value that starts with the magic byte 0 is Avro in the Confluent wire format
//! (cdc-reader `--format avro`; JSON never starts with 0). Its writer schema is fetched from
//! the registry by id (once per id, `schema_registry::AvroDecoder`) and the datum becomes the
//! JSON record with schema, `{"schema":..,"payload":..}`, which decodes like JSON with schema:
//! Debezium's logical types (`connect.name`) come through, so an Avro decimal is a numeric
//! column too. A registry that does not answer is waited for ([`InputError::Transient`]),
//! never a reason to dead-letter.
//!
//! Values come apart into their schema and payload ([`Value`]): every record of a table carries
//! the same 3-4 KB schema, so a schema met before is recognised by its bytes and shared, and
//! only the payload is parsed (as `projections::ChangeDecoder` does for the consumer).

use std::collections::HashMap;
use std::sync::Arc;

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

/// A value, its schema apart: `{"schema":S,"payload":P}` is `S` and `P`; any other JSON is
/// no schema and the whole value.
#[derive(Debug, Clone)]
pub struct Value {
    pub schema: Option<Arc<Json>>,
    pub payload: Json,
}

/// How many value schemas are remembered by their bytes (tables x versions a sink reads).
const KNOWN_SCHEMAS: usize = 16;
const SCHEMA_PREFIX: &[u8] = br#"{"schema":"#;
const PAYLOAD_INFIX: &[u8] = br#","payload":"#;

/// Reads keys and values; keeps the Avro decoder (and its schema cache) between records.
#[derive(Debug)]
pub struct Input {
    avro: AvroDecoder,
    /// Value schemas met before: their bytes as written, parsed (newest last).
    known: Vec<(Vec<u8>, Arc<Json>)>,
    /// The Connect schema of each Avro writer schema id.
    avro_schemas: HashMap<u32, Arc<Json>>,
}

impl Input {
    pub fn new(schema_registry_url: &str) -> Self {
        Self {
            avro: AvroDecoder::new(RegistryClient::new(schema_registry_url)),
            known: Vec::new(),
            avro_schemas: HashMap::new(),
        }
    }

    /// A record value (`None` = a tombstone), its schema apart.
    pub async fn value(&mut self, bytes: Option<&[u8]>) -> Result<Option<Value>, InputError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        if bytes.first() == Some(&0) {
            let record = match self.avro.decode(bytes).await {
                Ok(record) => record,
                Err(e) if e.is_transient() => return Err(InputError::Transient(e.to_string())),
                Err(e) => {
                    return Err(InputError::BadAvro {
                        part: "value",
                        reason: e.to_string(),
                    })
                }
            };
            let schema = self
                .avro_schemas
                .entry(record.schema_id())
                .or_insert_with(|| Arc::new(record.writer.connect.clone()))
                .clone();
            return Ok(Some(Value {
                schema: Some(schema),
                payload: record.payload,
            }));
        }
        if let Some((schema, payload)) = self.known_schema(bytes) {
            // Anything else after the payload (another field) is no longer this shape: the
            // whole value is parsed below instead.
            if let Ok(payload) = serde_json::from_slice(payload) {
                return Ok(Some(Value {
                    schema: Some(schema),
                    payload,
                }));
            }
        }
        let mut json = parse_json("value", bytes)?;
        let with_schema = matches!(&json, Json::Object(o)
            if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload"));
        if !with_schema {
            return Ok(Some(Value {
                schema: None,
                payload: json,
            }));
        }
        let schema = json["schema"].take();
        let payload = json["payload"].take();
        if schema.is_null() {
            return Ok(Some(Value {
                schema: None,
                payload,
            }));
        }
        let schema = Arc::new(schema);
        if let Some(schema_bytes) = schema_bytes(bytes) {
            if self.known.len() == KNOWN_SCHEMAS {
                self.known.remove(0);
            }
            self.known.push((schema_bytes.to_vec(), schema.clone()));
        }
        Ok(Some(Value {
            schema: Some(schema),
            payload,
        }))
    }

    /// A known schema whose bytes open `bytes`, and the payload's bytes after them.
    pub fn known_schema<'a>(&self, bytes: &'a [u8]) -> Option<(Arc<Json>, &'a [u8])> {
        let rest = bytes.strip_prefix(SCHEMA_PREFIX)?;
        self.known.iter().rev().find_map(|(known, schema)| {
            let payload = rest
                .strip_prefix(known.as_slice())?
                .strip_prefix(PAYLOAD_INFIX)?
                .strip_suffix(b"}")?;
            Some((schema.clone(), payload))
        })
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

/// The bytes of the schema in `{"schema":<these>,"payload":..}`, when the value starts so.
fn schema_bytes(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(SCHEMA_PREFIX)?;
    let mut values =
        serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => rest.get(..values.byte_offset()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(input: &mut Input, bytes: &[u8]) -> Option<Value> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(input.value(Some(bytes)))
            .unwrap()
    }

    #[test]
    fn a_schema_met_before_is_shared_and_only_the_payload_parsed() {
        let mut input = Input::new("http://127.0.0.1:1");
        let first = value(
            &mut input,
            br#"{"schema":{"type":"struct"},"payload":{"id":1}}"#,
        )
        .unwrap();
        let second = value(
            &mut input,
            br#"{"schema":{"type":"struct"},"payload":{"id":2}}"#,
        )
        .unwrap();
        assert_eq!(first.payload, json!({"id": 1}));
        assert_eq!(second.payload, json!({"id": 2}));
        assert!(Arc::ptr_eq(
            first.schema.as_ref().unwrap(),
            second.schema.as_ref().unwrap()
        ));
        assert_eq!(input.known.len(), 1);
    }

    #[test]
    fn other_shapes_are_parsed_whole() {
        let mut input = Input::new("http://127.0.0.1:1");
        value(
            &mut input,
            br#"{"schema":{"type":"struct"},"payload":{"id":1}}"#,
        );
        // The same schema bytes, then a third field: a flat value, not schema + payload.
        let extra = value(
            &mut input,
            br#"{"schema":{"type":"struct"},"payload":{"id":2},"x":3}"#,
        )
        .unwrap();
        assert!(extra.schema.is_none());
        assert_eq!(extra.payload["x"], json!(3));
        let flat = value(&mut input, br#"{"order_id":42}"#).unwrap();
        assert!(flat.schema.is_none());
        let null_schema = value(&mut input, br#"{"schema":null,"payload":{"id":3}}"#).unwrap();
        assert!(null_schema.schema.is_none());
        assert_eq!(null_schema.payload, json!({"id": 3}));
    }
}
