//! A Connect JSON record (`{"schema":..,"payload":..}`, as `JsonConverter` writes it) -> the
//! same record in the Confluent wire format: what `AvroConverter` does for each key and value.
//!
//! ```text
//! {"schema":S,"payload":P} ──S: AvroData rules (cached by S's bytes)──> Avro schema ──register──> id
//!                          └─P: datum ─────────────────────────────────────────────────────────> 00 <id> <datum>
//! ```
//!
//! The Connect schema of a table's records only changes with the table, so the parsing, the
//! translation, the registration and the datum plan happen once per subject and schema; the
//! rest is writing the payload's JSON tokens as Avro ([`crate::transcode`]). A payload the plan
//! cannot write takes the reference path ([`crate::connect_avro`]: parse, build the datum,
//! encode), which writes it or says precisely where it does not fit.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::client::{RegistryClient, RegistryError};
use crate::connect_avro::{self, AvroRecordSchema, ConnectAvroError};
use crate::transcode::DatumPlan;
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
    /// Per subject, the Connect schemas seen (one, until the table changes), newest last.
    known: HashMap<String, Vec<Arc<KnownSchema>>>,
}

/// A Connect schema met before: its bytes as `JsonConverter` wrote them, parsed, translated,
/// registered, and the plan that writes its payloads (`None`: the reference path writes them).
struct KnownSchema {
    bytes: Vec<u8>,
    connect: Json,
    avro: AvroRecordSchema,
    id: u32,
    plan: Option<DatumPlan>,
}

const SCHEMA_PREFIX: &[u8] = br#"{"schema":"#;
const PAYLOAD_INFIX: &[u8] = br#","payload":"#;

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
    ///
    /// A record whose schema bytes are those of a schema met before (every record of a table,
    /// until it changes) costs one comparison of those bytes and the parsing of its payload;
    /// only a new schema is parsed, translated and registered.
    pub async fn encode(
        &mut self,
        subject: &str,
        connect_json: &[u8],
    ) -> Result<Vec<u8>, EncodeError> {
        let convert = |source| EncodeError::Convert {
            subject: subject.to_string(),
            source,
        };
        let (known, payload) = match self.seen(subject, connect_json) {
            Some((known, payload_bytes)) => {
                if let Some(plan) = &known.plan {
                    let mut out = Vec::with_capacity(payload_bytes.len() / 2);
                    out.extend_from_slice(&wire::header(known.id));
                    match plan.write(payload_bytes, &mut out) {
                        Ok(()) => return Ok(out),
                        Err(error) => tracing::debug!(
                            "{subject}: the datum plan cannot write this payload ({error}); the reference path takes it"
                        ),
                    }
                }
                let payload: Json = serde_json::from_slice(payload_bytes)
                    .map_err(|e| convert(ConnectAvroError::NotConnectJson(e.to_string())))?;
                (known, payload)
            }
            None => {
                let (schema_bytes, schema, payload) = split(connect_json).map_err(convert)?;
                let known = match self.seen_schema(subject, schema_bytes) {
                    Some(known) => known,
                    None => {
                        let avro = connect_avro::avro_schema(&schema).map_err(convert)?;
                        let id = self.client.register(subject, &avro.text).await?;
                        let plan = DatumPlan::new(&schema)
                            .inspect_err(|error| tracing::debug!("{subject}: {error}"))
                            .ok();
                        let known = Arc::new(KnownSchema {
                            bytes: schema_bytes.to_vec(),
                            connect: schema,
                            avro,
                            id,
                            plan,
                        });
                        self.known
                            .entry(subject.to_string())
                            .or_default()
                            .push(known.clone());
                        known
                    }
                };
                (known, payload)
            }
        };
        let datum = connect_avro::avro_datum(&known.connect, &payload).map_err(convert)?;
        let bytes = connect_avro::encode_datum(&known.avro.schema, datum).map_err(convert)?;
        Ok(wire::encode(known.id, &bytes))
    }

    /// A known schema whose bytes open `connect_json`, and the payload's bytes after them.
    fn seen<'a>(
        &self,
        subject: &str,
        connect_json: &'a [u8],
    ) -> Option<(Arc<KnownSchema>, &'a [u8])> {
        let rest = connect_json.strip_prefix(SCHEMA_PREFIX)?;
        self.known.get(subject)?.iter().rev().find_map(|known| {
            let payload = rest
                .strip_prefix(known.bytes.as_slice())?
                .strip_prefix(PAYLOAD_INFIX)?
                .strip_suffix(b"}")?;
            Some((known.clone(), payload))
        })
    }

    fn seen_schema(&self, subject: &str, schema_bytes: &[u8]) -> Option<Arc<KnownSchema>> {
        self.known
            .get(subject)?
            .iter()
            .find(|known| known.bytes == schema_bytes)
            .cloned()
    }
}

/// The schema's own bytes (the cache key), the schema and the payload.
fn split(bytes: &[u8]) -> Result<(&[u8], Json, Json), ConnectAvroError> {
    let (schema, payload) = connect_avro::split_connect_json(bytes)?;
    let schema_bytes = match bytes.strip_prefix(SCHEMA_PREFIX) {
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
