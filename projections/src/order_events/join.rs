//! The join: row changes and END records in, one domain event per order per committed source
//! transaction out. Pure logic; the `order-events` binary feeds it Kafka records and writes what
//! comes out, with the changelog, in one Kafka transaction.
//!
//! ```text
//! on_change(row)  ──> buffer[xid] ──┐
//! on_end(END)     ──> buffer[xid] ──┤  poll(now): while the oldest END's transaction is complete:
//!                                   └─>   apply its rows (by LSN) to the state store,
//!                                         one OrderEvent per order it touched  ──> JoinOutput::Event
//! ```
//!
//! Defined outcomes for what does not join:
//! - **Incomplete transaction**: rows or END still missing `incomplete_after_ms` (processing
//!   time) after the transaction's last record arrived -> [`JoinOutput::DeadLetter`] with the
//!   explanation and the rows that did arrive; the state is not changed by it, the join goes
//!   on with the next transaction. A transaction whose rows are all stale (a redelivery of one
//!   already emitted) is dropped quietly instead ([`JoinOutput::DroppedDuplicate`]).
//! - **Items whose order never appears** (the order was captured before the processor started,
//!   or its row is missing): the items are applied to the state store and **held**; no event is
//!   emitted for that order ([`JoinOutput::HeldItems`]). When the order's row arrives, its
//!   `OrderPlaced` event carries the held items. An order inserted and deleted in the same
//!   transaction gives one `OrderDeleted` with `order: null`.
//! - **Rows without a transaction** (snapshot reads, or a reader without
//!   `--provide-transaction-metadata`): applied to the state store at once (they seed it), no
//!   event.
//! - **Redeliveries** (cdc-reader is at-least-once): an END whose commit LSN is not above the
//!   last one done is dropped with its rows; a row not newer than its row's last applied LSN is
//!   skipped.

use std::collections::{HashSet, VecDeque};

use crate::event::OrderId;
use crate::order_events::event::{event_id, EventSource, EventType, OrderEvent};
use crate::order_events::input::{RowChange, RowOp, SourceChange, TransactionEnd, Xid};
use crate::order_events::state_store::{OrderEntry, StateStore};
use crate::order_events::transaction_buffer::{PendingTransaction, TransactionBuffer};

/// How many finished xids are remembered to drop their late duplicate rows at once.
const REMEMBERED_FINISHED: usize = 100_000;

/// What the join hands back to the I/O layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutput {
    /// Write to `orders.events.v1`.
    Event(OrderEvent),
    /// Write to `orders.events.v1.dlq`: a transaction that could not be joined.
    DeadLetter(DeadLetter),
    /// Items of an order whose row is unknown were held in the state store (log it).
    HeldItems { order_id: OrderId, xid: Xid },
    /// A redelivered transaction was dropped (log it).
    DroppedDuplicate { xid: Xid },
}

/// A transaction given up on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub xid: Xid,
    pub reason: String,
    pub pending: PendingTransaction,
}

impl DeadLetter {
    /// The DLQ record value: the reason, the END (if any) and the rows that arrived.
    pub fn to_json(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "xid": self.xid,
            "reason": self.reason,
            "end": self.pending.end,
            "rows": self.pending.rows.values().collect::<Vec<_>>(),
        });
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// The join's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinSettings {
    /// How long a transaction may stay incomplete after its last record arrived.
    pub incomplete_after_ms: u64,
}

impl Default for JoinSettings {
    fn default() -> Self {
        JoinSettings {
            incomplete_after_ms: 60_000,
        }
    }
}

/// The stream join of orders and order items by source transaction.
#[derive(Debug, Clone, Default)]
pub struct OrderEventsJoin {
    settings: JoinSettings,
    store: StateStore,
    buffer: TransactionBuffer,
    finished: HashSet<Xid>,
    finished_order: VecDeque<Xid>,
}

impl OrderEventsJoin {
    pub fn new(settings: JoinSettings) -> Self {
        OrderEventsJoin {
            settings,
            ..Default::default()
        }
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    pub fn buffer(&self) -> &TransactionBuffer {
        &self.buffer
    }

    /// A row change arrived.
    pub fn on_change(&mut self, change: SourceChange, now_ms: u64) {
        match change.xid {
            None => {
                self.store.entry_mut(change.row.order_id()).apply(&change);
            }
            Some(xid) if self.finished.contains(&xid) => {}
            Some(xid) => self.buffer.add_row(xid, change, now_ms),
        }
    }

    /// An END record arrived.
    pub fn on_end(&mut self, end: TransactionEnd, now_ms: u64, out: &mut Vec<JoinOutput>) {
        let xid = end.xid;
        if end.commit_lsn <= self.store.last_commit_lsn() || self.finished.contains(&xid) {
            self.buffer.remove(xid);
            self.remember_finished(xid);
            out.push(JoinOutput::DroppedDuplicate { xid });
            return;
        }
        self.buffer.add_end(end, now_ms);
    }

    /// Emits every transaction that can leave now, and gives up on those past the bound.
    pub fn poll(&mut self, now_ms: u64, out: &mut Vec<JoinOutput>) {
        let bound = self.settings.incomplete_after_ms;
        while let Some(head) = self.buffer.head() {
            let xid = head.xid;
            if head.is_complete() {
                self.emit(xid, out);
            } else if head.is_overfull() {
                self.give_up(xid, "more rows arrived than its END record counts", out);
            } else if now_ms.saturating_sub(head.last_arrival_ms) >= bound {
                self.give_up(xid, "rows still missing", out);
            } else {
                break;
            }
        }
        for xid in self.buffer.stalled_without_end(now_ms, bound) {
            self.give_up(xid, "no END record arrived", out);
        }
    }

    fn remember_finished(&mut self, xid: Xid) {
        if self.finished.insert(xid) {
            self.finished_order.push_back(xid);
            if self.finished_order.len() > REMEMBERED_FINISHED {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
    }

    fn give_up(&mut self, xid: Xid, what: &str, out: &mut Vec<JoinOutput>) {
        let Some(pending) = self.buffer.remove(xid) else {
            return;
        };
        self.remember_finished(xid);
        if let Some(end) = &pending.end {
            self.store.set_last_commit_lsn(end.commit_lsn);
        }
        let all_stale = !pending.rows.is_empty()
            && pending.rows.values().all(|change| {
                self.store
                    .get(change.row.order_id())
                    .is_some_and(|entry| entry.is_stale(change))
            });
        if all_stale {
            out.push(JoinOutput::DroppedDuplicate { xid });
            return;
        }
        let (orders, items) = pending.arrived();
        let expected = match &pending.end {
            Some(end) => format!(
                "its END counts {} orders and {} order_items rows",
                end.order_rows, end.item_rows
            ),
            None => "no END record".to_string(),
        };
        let reason = format!(
            "transaction {xid} incomplete after {} ms: {what} ({expected}; {orders} orders and {items} order_items rows arrived); not joined, the processor went on",
            self.settings.incomplete_after_ms
        );
        out.push(JoinOutput::DeadLetter(DeadLetter {
            xid,
            reason,
            pending,
        }));
    }

    fn emit(&mut self, xid: Xid, out: &mut Vec<JoinOutput>) {
        let Some(pending) = self.buffer.remove(xid) else {
            return;
        };
        self.remember_finished(xid);
        let Some(end) = pending.end else {
            return;
        };
        // The orders in the order the transaction first touched them, with their state before.
        let mut touched: Vec<(OrderId, OrderEntry, bool)> = Vec::new();
        for change in pending.rows.values() {
            let order_id = change.row.order_id();
            let current = self.store.get(order_id);
            if current.is_some_and(|entry| entry.is_stale(change)) {
                continue;
            }
            let before = current.cloned().unwrap_or_default();
            let order_row_changed = change.row.is_order();
            match touched.iter_mut().find(|(id, _, _)| *id == order_id) {
                Some((_, _, changed)) => *changed |= order_row_changed,
                None => touched.push((order_id, before, order_row_changed)),
            }
            self.store.entry_mut(order_id).apply(change);
        }
        let inserted: HashSet<OrderId> = pending
            .rows
            .values()
            .filter(|c| {
                matches!(
                    c.row,
                    RowChange::Order {
                        op: RowOp::Insert,
                        ..
                    }
                )
            })
            .map(|c| c.row.order_id())
            .collect();
        let source = EventSource {
            tx_id: xid,
            lsn: end.commit_lsn,
            ts_ms: end.ts_ms,
        };
        for (order_id, before, order_row_changed) in touched {
            let after = self.store.get(order_id).cloned().unwrap_or_default();
            let event_type = match (&before.order, &after.order) {
                (None, Some(_)) => EventType::OrderPlaced,
                (Some(_), None) => EventType::OrderDeleted,
                (Some(old), Some(new))
                    if new.status == "CANCELLED" && old.status != "CANCELLED" =>
                {
                    EventType::OrderCancelled
                }
                (Some(_), Some(_)) => EventType::OrderChanged,
                (None, None) if order_row_changed && inserted.contains(&order_id) => {
                    EventType::OrderDeleted
                }
                (None, None) => {
                    out.push(JoinOutput::HeldItems { order_id, xid });
                    continue;
                }
            };
            let (order, items) = match event_type {
                EventType::OrderDeleted => (before.order.clone(), Vec::new()),
                _ => (after.order.clone(), after.live_items()),
            };
            out.push(JoinOutput::Event(OrderEvent {
                event_id: event_id(xid, end.commit_lsn, order_id),
                order_id,
                event_type,
                order,
                items,
                source: source.clone(),
            }));
        }
        self.store.set_last_commit_lsn(end.commit_lsn);
    }

    /// The changelog records (key, value; `None` = tombstone) of everything changed since the
    /// last call: write them in the same Kafka transaction as the outputs.
    pub fn take_changelog(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        let mut records = self.store.take_changelog();
        records.extend(self.buffer.take_changelog());
        records
    }

    /// Restores one changelog record (in changelog order).
    pub fn restore(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), RestoreError> {
        let known = self
            .store
            .restore(key, value)
            .map_err(|e| RestoreError::Value(key.to_string(), e))?
            || self
                .buffer
                .restore(key, value)
                .map_err(|e| RestoreError::Value(key.to_string(), e))?;
        if known {
            Ok(())
        } else {
            Err(RestoreError::UnknownKey(key.to_string()))
        }
    }

    /// Ends a restore: rebuilds the END order; every bound starts at `now_ms`.
    pub fn finish_restore(&mut self, now_ms: u64) {
        self.buffer.finish_restore(now_ms);
        // What was restored is what the changelog holds: nothing to write back.
        let _ = self.take_changelog();
    }
}

/// A changelog record the join cannot read.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("changelog key `{0}` is not an order, a transaction or the position: is this the order-events changelog?")]
    UnknownKey(String),
    #[error("changelog record `{0}` is not valid: {1}")]
    Value(String, serde_json::Error),
}
