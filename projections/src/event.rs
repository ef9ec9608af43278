//! The change event: what the decoders make of a Kafka record, and what the projections fold.
//!
//! Two sources describe the same orders: the table's CDC topic (Debezium envelopes,
//! [`crate::debezium`]) and the outbox topic (domain events, [`crate::outbox`]). Both decode
//! to a [`ChangeEvent`]: "order N now looks like this row" or "order N is gone", plus the
//! position that makes applying it idempotent.

use crate::money::Cents;

/// `orders.id`.
pub type OrderId = i64;

/// The columns of an `orders` row the projections read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderRow {
    pub customer_id: i64,
    /// `NEW`, `PAID`, `SHIPPED` or `CANCELLED` today; kept as text so a new status is not poison.
    pub status: String,
    pub total: Cents,
}

/// Debezium's `op` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `c`: an insert.
    Create,
    /// `u`: an update (under `REPLICA IDENTITY DEFAULT`, without a before-image).
    Update,
    /// `d`: a delete (under `REPLICA IDENTITY DEFAULT`, the before-image holds only the key).
    Delete,
    /// `r`: a row read by the initial snapshot.
    Read,
}

impl Op {
    /// `c`, `u`, `d` or `r`; anything else (`t` truncate, `m` message) is not a row change.
    pub fn from_code(code: &str) -> Option<Op> {
        match code {
            "c" => Some(Op::Create),
            "u" => Some(Op::Update),
            "d" => Some(Op::Delete),
            "r" => Some(Op::Read),
            _ => None,
        }
    }
}

/// What makes applying an event twice harmless.
///
/// The reader is at-least-once and a redelivered change arrives with a NEW Kafka offset, so
/// the offset cannot tell a duplicate. The source can:
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Position {
    /// CDC: `source.lsn`, the WAL position of the change. Per order it only grows (two
    /// transactions cannot change one row at once: the second waits for the first's commit,
    /// and writes its WAL after it), so "apply only if newer than the last applied LSN" drops
    /// every duplicate and every stale redelivery. Snapshot reads share one LSN (the slot's
    /// consistent point), which is below every change streamed after the snapshot.
    Lsn(i64),
    /// CDC with Debezium's `source.sequence` (`["<last commit>","<lsn>"]`): the end LSN of the
    /// last transaction committed before this change's, then the change's own LSN, compared
    /// in that order (see [`crate::order_state::apply`]). The first half follows commit order,
    /// which the bare LSN does not: a transaction can write a row's WAL before an incremental
    /// snapshot's high watermark and commit after it. An incremental snapshot read has no
    /// `source.lsn`; it is the high watermark's LSN twice (`["90","90"]`), so it sorts after
    /// every change it saw and before every change committed after it. `last_commit` is None
    /// where the reader did not know it (the first transaction after it started): then the
    /// LSNs alone are compared, as with [`Position::Lsn`].
    Sequence { last_commit: Option<i64>, lsn: i64 },
    /// Outbox: the event's unique id (the `id` header). The consumer keeps the ids it has
    /// applied and drops an event it has seen; per order the topic is in commit order, so what
    /// is left is applied unconditionally.
    EventId(String),
}

/// One decoded change to one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub order_id: OrderId,
    pub op: Op,
    /// The row after the change; `None` when the order was deleted.
    pub after: Option<OrderRow>,
    pub position: Position,
}

/// A decoded Kafka record: a change, or a tombstone (Kafka's compaction marker after a delete,
/// which carries nothing the projections need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Change(ChangeEvent),
    Tombstone,
}
