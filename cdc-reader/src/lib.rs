//! # cdc-reader: PostgreSQL logical replication -> Debezium envelopes -> Kafka
//!
//! The heart of the playground. Read the modules in this order, the order a change travels:
//!
//! ```text
//! PostgreSQL WAL
//!   │ replication::connection   the replication connection: startup, auth, CopyBoth frames
//!   │ replication::slot         slot + publication: create when missing, explain refusals
//!   │ replication::protocol     XLogData / keepalive / standby status update (sans-IO)
//!   │ pgoutput                  pgoutput messages: Begin, Relation, Insert, ... (sans-IO)
//!   │ catalog                   NOT NULL, defaults, enum labels that pgoutput does not send
//!   │ snapshot                  the initial snapshot on the slot's exported snapshot
//!   │ snapshot_parallel         the same snapshot on N connections (--snapshot-max-threads)
//!   │ incremental               snapshots on demand: signals, chunks, watermarks (--signal-data-collection)
//!   │ changes                   a decoded change -> the records to write (via envelope)
//!   │ outbox                    the Outbox Event Router: outbox rows -> domain events
//!   │ heartbeat                 heartbeat records
//!   │ transaction_metadata      BEGIN/END records (--provide-transaction-metadata)
//!   │ envelope                  Debezium's envelope JSON: key, value, schema (pure)
//!   │ transforms                Debezium's SMTs: --unwrap (the row alone), --route-* (pure)
//!   │ sink                      Kafka (idempotent producer) or stdout, with acknowledgements;
//!   │                           --format avro: the Confluent wire format (crate schema-registry)
//!   │ delivery                  which LSN is safe to confirm: everything before it is acked
//!   │ stream                    the loop that ties them together
//!   │ reader                    setup and shutdown around the loop, a new session after a lost connection
//!   ▼ retry                     which errors are worth a new connection, and the backoff
//! Kafka topics dbserver1.<schema>.<table>
//! ```
//!
//! `metrics` is the `/metrics` page (`--metrics-listen`): changes, records, LSNs, the slot's
//! retained WAL, commit -> Kafka ack latency.
//!
//! `debezium_config` turns a Debezium connector configuration (`--debezium-config FILE`) into
//! these flags.
//!
//! Two binaries: `cdc-reader` (`src/main.rs`, the reader) and `topic-peek` (`src/bin/`, a
//! learner's look into Kafka: topics with record counts, or the newest records of one).
//!
//! Delivery is at-least-once: the LSN confirmed to PostgreSQL only moves past a transaction
//! once Kafka acknowledged every record of it and of everything before it; after a crash the
//! slot resends from there, so records after the last confirmed LSN may arrive twice. The same
//! holds when PostgreSQL restarts or crashes under a running reader: it connects again with
//! capped exponential backoff and resumes from the slot (see `retry`).

pub mod catalog;
pub mod changes;
pub mod config;
pub mod debezium_config;
pub mod delivery;
pub mod envelope;
pub mod heartbeat;
pub mod incremental;
pub mod lsn;
pub mod metrics;
pub mod outbox;
pub mod pgoutput;
pub mod reader;
pub mod replication;
pub mod retry;
pub mod sink;
pub mod snapshot;
pub mod snapshot_parallel;
pub mod stream;
pub mod transaction_metadata;
pub mod transforms;

/// Everything that stops the reader, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error(transparent)]
    Slot(#[from] replication::slot::SlotError),
    #[error(transparent)]
    Connection(#[from] replication::connection::ConnectionError),
    #[error("bad replication message: {0}")]
    Protocol(#[from] replication::protocol::ProtocolError),
    #[error("bad pgoutput message: {0}")]
    Decode(#[from] pgoutput::DecodeError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Changes(#[from] changes::ChangeError),
    #[error(transparent)]
    Sink(#[from] sink::SinkError),
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    #[error("Kafka did not take a record for good: {0}. Nothing after the last confirmed LSN is lost: restart the reader to resend it")]
    Delivery(String),
    #[error("{0}")]
    Kafka(String),
    #[error("delivery bookkeeping: {0}")]
    Tracker(#[from] delivery::TrackerError),
    #[error("replication stream: {0}")]
    Stream(String),
    #[error(transparent)]
    Transforms(#[from] transforms::TransformConfigError),
    /// `--format avro`: the schema registry is not there, or the flags do not fit Avro.
    #[error("{0}")]
    Registry(String),
}

impl ReaderError {
    /// The variant's name, for `pgcdc_reader_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReaderError::Slot(_) => "slot",
            ReaderError::Connection(_) => "connection",
            ReaderError::Protocol(_) => "protocol",
            ReaderError::Decode(_) => "decode",
            ReaderError::Catalog(_) => "catalog",
            ReaderError::Changes(_) => "changes",
            ReaderError::Sink(_) => "sink",
            ReaderError::Snapshot(_) => "snapshot",
            ReaderError::Delivery(_) => "delivery",
            ReaderError::Kafka(_) => "kafka",
            ReaderError::Tracker(_) => "tracker",
            ReaderError::Stream(_) => "stream",
            ReaderError::Transforms(_) => "transforms",
            ReaderError::Registry(_) => "registry",
        }
    }
}
