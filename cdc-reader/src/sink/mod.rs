//! Sinks: where envelopes go, the last stage of cdc-reader.
//!
//! ```text
//! replication -> pgoutput -> envelope -> [sink] -> Kafka | stdout
//! ```
//!
//! A sink takes records and later tells, through an acknowledgement channel, that a record is
//! durable (Kafka: acknowledged by all in-sync replicas). Each record carries a `ticket` (the
//! sequence number of its transaction, see [`crate::delivery`]) that comes back in its [`Ack`];
//! that is how the reader knows which LSN it may confirm to PostgreSQL.
//!
//! - [`kafka::KafkaSink`]: rdkafka's idempotent producer (`enable.idempotence=true`, `acks=all`).
//! - [`stdout::StdoutSink`]: one envelope per line, for watching changes without Kafka.
//! - [`transforming::TransformingSink`]: runs the transforms (`--unwrap`, `--route-*`) in front
//!   of either.
//! - [`avro::AvroSink`]: `--format avro`: keys and values in the Confluent wire format, their
//!   schemas registered in the schema registry ([`Sink::prepare`] does that, before `send`).
//!
//! The trait is the seam for other destinations (a table-mirroring sink, Avro, ...).

pub mod avro;
pub mod kafka;
pub mod stdout;
pub mod transforming;

use std::time::Duration;

use tokio::sync::mpsc;

/// One record to write: a Kafka-shaped message.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRecord<'a> {
    pub topic: &'a str,
    /// None: a record without key (e.g. a table with no primary key).
    pub key: Option<&'a [u8]>,
    /// None: a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// A sink's word that the record sent with `ticket` is durable, or that it failed for good.
#[derive(Debug, Clone)]
pub struct Ack {
    pub ticket: u64,
    pub result: Result<(), String>,
}

/// Why a send did not take the record.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The sink's buffer is full: wait for acknowledgements, then send the same record again.
    #[error("the sink's queue is full")]
    QueueFull,
    #[error("{0}")]
    Fatal(String),
}

/// Errors of sink setup and flushing.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Kafka(String),
    #[error("writing to stdout failed: {0}")]
    Io(#[from] std::io::Error),
    /// Waiting helps (the schema registry does not answer): prepare the same record again later.
    #[error("{0}")]
    Unavailable(String),
    /// The record cannot be written as it is (the registry refuses its schema, it has no Avro
    /// form): the reader stops with the reason.
    #[error("{0}")]
    Refused(String),
}

/// A destination for envelopes.
pub trait Sink {
    /// Makes sure `topic` exists (Kafka creates it with the configured partitions).
    fn ensure_topic(
        &mut self,
        topic: &str,
    ) -> impl std::future::Future<Output = Result<(), SinkError>>;

    /// Gets `record` ready before [`Sink::send`]: the work that may wait (registering a schema)
    /// happens here. [`SinkError::Unavailable`]: call again with the same record later.
    fn prepare(
        &mut self,
        record: OutgoingRecord<'_>,
    ) -> impl std::future::Future<Output = Result<(), SinkError>> {
        let _ = record;
        async { Ok(()) }
    }

    /// Queues one record; its [`Ack`] arrives later on the channel from [`Sink::take_acks`].
    fn send(&mut self, record: OutgoingRecord<'_>, ticket: u64) -> Result<(), SendError>;

    /// Waits until every queued record is acknowledged, at most `timeout`.
    fn flush(&mut self, timeout: Duration) -> Result<(), SinkError>;

    /// The acknowledgement channel (taken once, by the pipeline).
    fn take_acks(&mut self) -> mpsc::UnboundedReceiver<Ack>;
}
