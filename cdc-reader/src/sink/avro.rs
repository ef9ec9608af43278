//! `--format avro`: keys and values as Kafka Connect's `AvroConverter` writes them, in front of
//! the Kafka (or stdout) sink.
//!
//! ```text
//! stream ─prepare(record)─> AvroSink ── key: register <topic>-key schema, encode ──┐ (async: may wait
//!        ─send(record)────>     │       value: register <topic>-value schema, encode┘  for the registry)
//!                               └─send(00 <id> <datum>)─> Kafka
//! ```
//!
//! The records reaching this sink are JSON with schemas (what the envelope builder and the
//! transforms write); [`schema_registry::AvroEncoder`] turns each key and value into the
//! Confluent wire format, registering the Avro schema the first time it sees it (subjects
//! `<topic>-key` and `<topic>-value`, Confluent's TopicNameStrategy). A tombstone stays a null
//! value. Registration happens in [`Sink::prepare`], which may wait; `send` stays synchronous.
//!
//! When the registry does not answer, `prepare` says [`SinkError::Unavailable`]: the stream
//! waits and asks again, reading no further WAL and confirming nothing past the record that
//! waits. When the registry refuses a schema (409: the compatibility rule), it says
//! [`SinkError::Refused`] with the registry's reason and the subject, and the reader stops.

use std::time::Duration;

use schema_registry::{AvroEncoder, EncodeError, RegistryError};
use tokio::sync::mpsc;

use super::{Ack, OutgoingRecord, SendError, Sink, SinkError};

/// The key and value of the record `prepare` got ready, in the wire format.
struct Prepared {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Encodes keys and values as Avro, then delegates to `inner`.
pub struct AvroSink<S: Sink> {
    inner: S,
    encoder: AvroEncoder,
    prepared: Option<Prepared>,
}

impl<S: Sink> AvroSink<S> {
    pub fn new(inner: S, encoder: AvroEncoder) -> Self {
        AvroSink {
            inner,
            encoder,
            prepared: None,
        }
    }

    async fn encode(
        &mut self,
        subject: String,
        bytes: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, SinkError> {
        let Some(bytes) = bytes.filter(|b| !b.is_empty() && *b != b"null") else {
            return Ok(None);
        };
        match self.encoder.encode(&subject, bytes).await {
            Ok(encoded) => Ok(Some(encoded)),
            Err(EncodeError::Registry(error)) if error.is_transient() => {
                Err(SinkError::Unavailable(error.to_string()))
            }
            Err(EncodeError::Registry(error @ RegistryError::Incompatible { .. })) => Err(SinkError::Refused(format!(
                "{error}. Nothing after the last delivered record is confirmed; make the change compatible (BACKWARD: e.g. give the new column a default), or change the subject's rule, then restart the reader"
            ))),
            Err(error) => Err(SinkError::Refused(format!("cannot write {subject} as Avro: {error}"))),
        }
    }
}

impl<S: Sink> Sink for AvroSink<S> {
    async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        self.inner.ensure_topic(topic).await
    }

    async fn prepare(&mut self, record: OutgoingRecord<'_>) -> Result<(), SinkError> {
        let key = self
            .encode(format!("{}-key", record.topic), record.key)
            .await?;
        let value = self
            .encode(format!("{}-value", record.topic), record.value)
            .await?;
        self.prepared = Some(Prepared {
            topic: record.topic.to_string(),
            key,
            value,
        });
        self.inner.prepare(record).await
    }

    fn send(&mut self, record: OutgoingRecord<'_>, ticket: u64) -> Result<(), SendError> {
        let Some(prepared) = self.prepared.as_ref().filter(|p| p.topic == record.topic) else {
            return Err(SendError::Fatal(format!(
                "a record for {} was sent without being prepared (a bug in the reader)",
                record.topic
            )));
        };
        let result = self.inner.send(
            OutgoingRecord {
                topic: record.topic,
                key: prepared.key.as_deref(),
                value: prepared.value.as_deref(),
                headers: record.headers,
            },
            ticket,
        );
        if !matches!(result, Err(SendError::QueueFull)) {
            self.prepared = None;
        }
        result
    }

    fn flush(&mut self, timeout: Duration) -> Result<(), SinkError> {
        self.inner.flush(timeout)
    }

    fn take_acks(&mut self) -> mpsc::UnboundedReceiver<Ack> {
        self.inner.take_acks()
    }
}
