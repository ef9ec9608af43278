//! The seam between the sink's loop and a store: the [`Target`] trait.
//!
//! The loop ([`crate::sink`]) polls Kafka, decodes and routes the records into
//! [`RowChange`]s, and hands each poll's worth to the target as one [`Batch`]. A target writes
//! the batch and says how it went:
//!
//! ```text
//! Ok(())                        every change written; the batch's offsets are safe
//! Err(TargetError::Record{..})  change #index can never be written (a value that does not
//!                               fit the column, a key the table cannot take): nothing of the
//!                               batch was kept; the loop dead-letters that record and writes
//!                               the batch again without it
//! Err(TargetError::Unavailable) the store is down or busy: nothing counts as written; the
//!                               loop waits, retries the same batch, commits nothing past it
//! ```
//!
//! Where the offsets live is the target's choice ([`OffsetStore`]):
//!
//! - PostgreSQL keeps them in a table of the target database, written in the SAME
//!   transaction as the rows ([`OffsetStore::InTarget`]): after any crash the rows and the
//!   offsets agree, and the sink resumes exactly after the last written record
//!   (exactly-once).
//! - Cassandra has no transactions across tables: the loop commits the batch's offsets to the
//!   Kafka consumer group only after the target acknowledged every write
//!   ([`OffsetStore::KafkaGroup`]). A crash in between replays the batch; the writes are
//!   idempotent upserts by primary key, so the replay changes nothing (at-least-once delivery,
//!   exactly-once effect).

use std::future::Future;

use crate::change::{Position, RowChange};

/// Where a target's consumed offsets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetStore {
    /// In the target, in the same transaction as the rows; read back with
    /// [`Target::stored_offsets`] at start.
    InTarget,
    /// In the Kafka consumer group (`--group-id`), committed by the loop after
    /// [`Target::write`] returned `Ok`.
    KafkaGroup,
}

/// What the loop hands a target: the changes of one Kafka poll, in Kafka order, and the
/// offsets to store with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The changes to write, each with the position of the record it came from.
    pub changes: Vec<(Position, RowChange)>,
    /// Per partition, the NEXT offset to read once this batch is written (last offset of the
    /// batch + 1). It also covers records that produced no change (dead-lettered, skipped
    /// tombstones), so their offsets advance too.
    pub next_offsets: Vec<Position>,
}

/// Why a write failed: the loop branches on it.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Change number `index` of the batch can never be written: dead-letter its record and
    /// write the batch again without it. Nothing of the batch may have been kept.
    #[error("change #{index} cannot be written: {message}")]
    Record { index: usize, message: String },
    /// The store cannot take writes now (down, restarting, overloaded): nothing of the batch
    /// counts as written; wait and retry.
    #[error("target unavailable: {message}")]
    Unavailable { message: String },
}

impl TargetError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        TargetError::Unavailable {
            message: message.into(),
        }
    }
}

/// A store the sink writes into. Implemented by [`crate::postgres::PostgresTarget`] and the
/// Cassandra target.
///
/// The futures are `Send` so the loop may run on any tokio worker.
pub trait Target: Send {
    /// A short description for logs, e.g. `postgres://127.0.0.1:55432/playground_mirror`.
    fn describe(&self) -> String;

    /// Where this target's offsets are kept.
    fn offset_store(&self) -> OffsetStore;

    /// For [`OffsetStore::InTarget`]: the next offset to read per partition, as stored by the
    /// last written batch of consumer group `group_id` (empty on the first start). Targets
    /// that keep no offsets return an empty list.
    fn stored_offsets(
        &mut self,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<Position>, TargetError>> + Send;

    /// Writes the batch (all or nothing, see the module comment); an
    /// [`OffsetStore::InTarget`] target stores `batch.next_offsets` for `group_id` with it.
    fn write(
        &mut self,
        group_id: &str,
        batch: &Batch,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;
}
