//! A Kafka record as the consumer holds it in a batch: a change event, a tombstone, or a poison
//! record (kept as it arrived, with the error).
//!
//! Decoded once, as soon as it is read (`consume`), then used by two steps that do not know of
//! each other: [`crate::apply`] folds the changes in one transaction, and [`crate::dlq`] copies
//! the poison records to the dead-letter topic first.
//!
//! ```text
//! Kafka record ──decode_record──> BatchRecord { topic, partition, offset, outcome }
//!                                   outcome: Change(ChangeEvent) | Tombstone | Poison(Poison)
//! ```
//!
//! A value that starts with the magic byte 0 is Avro in the Confluent wire format (JSON never
//! starts with 0): CDC records from cdc-reader `--format avro`, domain events from
//! `order-events --format avro`, outbox events from `producer --direct-publish --format avro`.
//! Its writer schema is fetched from the schema registry by id (once per id). A CDC datum is
//! read by the change decoder directly, through the writer schema's view
//! (`schema_registry::datum_view`); domain and outbox datums, and any CDC datum the view cannot
//! read, become JSON first (the reference path), and the JSON decoding runs on that. Bytes that are not Avro, an id the registry does
//! not know, or a datum that does not match its schema make a poison record (the error goes into the
//! dead-letter headers). A registry that does not answer is waited for, never dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use projections::order_events::decode_domain_event;
use projections::{decode_outbox, ChangeDecoder, ChangeEvent, Decoded};
use rdkafka::message::{Headers, Message};
use schema_registry::decoder::decode_datum;
use schema_registry::{datum_view, wire, AvroDecoder, DecodedRecord, RegistryClient, WriterSchema};

use crate::config::Source;

/// A record of a batch, decoded (or not) as soon as it is read.
#[derive(Debug)]
pub struct BatchRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub outcome: Outcome,
    /// `source.ts_us`, read only while metrics are on (the end-to-end latency).
    pub source_commit_us: Option<i64>,
}

#[derive(Debug)]
pub enum Outcome {
    Change(ChangeEvent),
    Tombstone,
    /// Not decodable: goes to the dead-letter topic, with a copy of what arrived.
    Poison(Poison),
}

/// A record that could not be used, as it arrived, and why.
#[derive(Debug, Clone)]
pub struct Poison {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub error: String,
}

/// The decoders a consumer keeps between records: the JSON one remembers the last CDC schema,
/// the Avro one the writer schemas it fetched.
#[derive(Debug)]
pub struct RecordDecoder {
    pub json: ChangeDecoder,
    pub avro: AvroDecoder,
}

impl RecordDecoder {
    /// Decoders that fetch Avro writer schemas from the registry at `schema_registry_url`.
    pub fn new(schema_registry_url: &str) -> Self {
        RecordDecoder {
            json: ChangeDecoder::new(),
            avro: AvroDecoder::new(RegistryClient::new(schema_registry_url)),
        }
    }

    /// A CDC value: Avro (magic byte 0) through the registry, else JSON.
    async fn decode_cdc(&mut self, value: Option<&[u8]>) -> Result<Decoded, String> {
        let Some(bytes) = value.filter(|b| wire::looks_like_avro(b)) else {
            return self.json.decode(value).map_err(|e| e.to_string());
        };
        let (writer, datum) = self.avro_writer(bytes).await?;
        // The fast path: the change decoder reads the datum through the writer schema's view,
        // no JSON in between. Anything it cannot read takes the reference path below, which
        // reads it or gives the error the dead-letter headers carry.
        if let Some(view) = &writer.view {
            let mut input = datum_view::Input::new(datum);
            let decoded = self.json.decode_parts(
                writer.connect_text.as_bytes(),
                view.deserializer(&mut input),
            );
            if let (Ok(decoded), true) = (decoded, input.is_empty()) {
                return Ok(decoded);
            }
        }
        let record = reference_record(writer, datum)?;
        // The schema part is the same bytes for every record of the writer schema: the JSON
        // decoder recognises them and parses the payload alone.
        self.json
            .decode(Some(&record.connect_json_bytes()))
            .map_err(|e| e.to_string())
    }
}

impl RecordDecoder {
    /// A domain event: Avro (`order-events --format avro`) through the registry, else JSON.
    async fn decode_domain(&mut self, value: Option<&[u8]>) -> Result<Decoded, String> {
        let Some(bytes) = value.filter(|b| wire::looks_like_avro(b)) else {
            return decode_domain_event(value).map_err(|e| e.to_string());
        };
        let record = self.avro_record(bytes).await?;
        let json = serde_json::to_vec(&record.payload).map_err(|e| e.to_string())?;
        decode_domain_event(Some(&json)).map_err(|e| e.to_string())
    }

    /// An outbox event: Avro (`producer --direct-publish --format avro`, the `OrderEvent`
    /// schema) through the registry, else JSON; the id and type come from the headers either way.
    async fn decode_outbox_event(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<Decoded, String> {
        let Some(bytes) = value.filter(|b| wire::looks_like_avro(b)) else {
            return decode_outbox(key, value, headers).map_err(|e| e.to_string());
        };
        let record = self.avro_record(bytes).await?;
        let json = serde_json::to_vec(&record.payload).map_err(|e| e.to_string())?;
        decode_outbox(key, Some(&json), headers).map_err(|e| e.to_string())
    }

    /// An Avro record, decoded with its writer schema; waits while the registry does not
    /// answer (such a record is not poison: it is read again once the registry is back).
    async fn avro_record(&mut self, bytes: &[u8]) -> Result<DecodedRecord, String> {
        let (writer, datum) = self.avro_writer(bytes).await?;
        reference_record(writer, datum)
    }

    /// The writer schema of an Avro record and its datum; waits while the registry does not
    /// answer.
    async fn avro_writer<'b>(
        &mut self,
        bytes: &'b [u8],
    ) -> Result<(Arc<WriterSchema>, &'b [u8]), String> {
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.avro.writer_of(bytes).await {
                Ok(found) => return Ok(found),
                Err(error) if error.is_transient() => {
                    tracing::warn!(retry_in = ?backoff, "{error}; waiting (the record is not dead-lettered)");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(format!("not a usable Avro record: {error}")),
            }
        }
    }
}

/// A datum made JSON by the reference path (`apache_avro`'s value tree), or why it cannot be.
fn reference_record(writer: Arc<WriterSchema>, datum: &[u8]) -> Result<DecodedRecord, String> {
    let payload =
        decode_datum(&writer, datum).map_err(|e| format!("not a usable Avro record: {e}"))?;
    Ok(DecodedRecord { writer, payload })
}

/// Decodes a Kafka record from `source`'s topic.
pub async fn decode_record<M: Message>(
    source: Source,
    decoder: &mut RecordDecoder,
    message: &M,
) -> BatchRecord {
    let decoded = match source {
        Source::Cdc => decoder.decode_cdc(message.payload()).await,
        Source::Domain => decoder.decode_domain(message.payload()).await,
        Source::Outbox => {
            let headers: Vec<(&str, Option<&[u8]>)> = message
                .headers()
                .map(|h| h.iter().map(|header| (header.key, header.value)).collect())
                .unwrap_or_default();
            decoder
                .decode_outbox_event(message.key(), message.payload(), &headers)
                .await
        }
    };
    let outcome = match decoded {
        Ok(Decoded::Change(event)) => Outcome::Change(event),
        Ok(Decoded::Tombstone) => Outcome::Tombstone,
        Err(error) => Outcome::Poison(Poison {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            error,
        }),
    };
    BatchRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        source_commit_us: match &outcome {
            Outcome::Change(_) if crate::metrics::enabled() => {
                crate::metrics::source_commit_micros(message.payload())
            }
            _ => None,
        },
        outcome,
    }
}
