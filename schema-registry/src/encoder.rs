//! A Connect JSON record (`{"schema":..,"payload":..}`, as `JsonConverter` writes it) -> the
//! same record in the Confluent wire format: what `AvroConverter` does for each key and value.
//!
//! ```text
//! {"schema":S,"payload":P} ──S: AvroData rules (cached by S's bytes)──> Avro schema ──register──> id
//!                          └─P: datum ─────────────────────────────────────────────────────────> 00 <id> <datum>
//! ```
//!
//! The Connect schema of a table's records only changes with the table, so the translation and
//! the registration happen once per subject and schema; the rest is encoding the datum.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::client::{RegistryClient, RegistryError};
use crate::connect_avro::{self, AvroRecordSchema, ConnectAvroError};
use crate::wire;

/// Why a record could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{subject}: {source}")]
    Convert {
        subject: String,
        source: ConnectAvroError,
    },
}

/// Encodes records for one registry.
pub struct AvroEncoder {
    client: RegistryClient,
    /// (subject, Connect schema JSON bytes) -> its Avro schema and registered id.
    known: HashMap<(String, Vec<u8>), (Arc<AvroRecordSchema>, u32)>,
}

impl AvroEncoder {
    pub fn new(client: RegistryClient) -> Self {
        AvroEncoder {
            client,
            known: HashMap::new(),
        }
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The record under `subject` in the wire format. Registry errors leave nothing changed:
    /// call again with the same record once the registry is back.
    pub async fn encode(
        &mut self,
        subject: &str,
        connect_json: &[u8],
    ) -> Result<Vec<u8>, EncodeError> {
        let convert = |source| EncodeError::Convert {
            subject: subject.to_string(),
            source,
        };
        let (schema_bytes, schema, payload) = split(connect_json).map_err(convert)?;
        let key = (subject.to_string(), schema_bytes.to_vec());
        let (avro, id) = match self.known.get(&key) {
            Some((avro, id)) => (avro.clone(), *id),
            None => {
                let avro = Arc::new(connect_avro::avro_schema(&schema).map_err(convert)?);
                let id = self.client.register(subject, &avro.text).await?;
                self.known.insert(key, (avro.clone(), id));
                (avro, id)
            }
        };
        let datum = connect_avro::avro_datum(&schema, &payload).map_err(convert)?;
        let bytes = connect_avro::encode_datum(&avro.schema, datum).map_err(convert)?;
        Ok(wire::encode(id, &bytes))
    }
}

/// The schema's own bytes (the cache key), the schema and the payload.
fn split(bytes: &[u8]) -> Result<(&[u8], Json, Json), ConnectAvroError> {
    const PREFIX: &[u8] = br#"{"schema":"#;
    let (schema, payload) = connect_avro::split_connect_json(bytes)?;
    let schema_bytes = match bytes.strip_prefix(PREFIX) {
        Some(rest) => {
            let mut values =
                serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
            match values.next() {
                Some(Ok(_)) => &rest[..values.byte_offset()],
                _ => bytes,
            }
        }
        None => bytes,
    };
    Ok((schema_bytes, schema, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_the_schema_part_alone() {
        let (schema_bytes, schema, payload) =
            split(br#"{"schema":{"type":"int64","optional":false},"payload":5}"#).unwrap();
        assert_eq!(schema_bytes, br#"{"type":"int64","optional":false}"#);
        assert_eq!(schema["type"], "int64");
        assert_eq!(payload, 5);
    }

    #[test]
    fn records_without_schemas_are_refused_with_the_fix() {
        let error = split(br#"{"id":5}"#).unwrap_err();
        assert!(error.to_string().contains("--no-schemas"), "{error}");
    }
}
