//! The transaction buffer: the rows of source transactions that are not complete yet.
//!
//! Rows of one transaction arrive on two topics (and on any of their partitions), its END on a
//! third, in any interleaving. The buffer collects them by xid until the END's counts are met:
//!
//! ```text
//! xid 771: END {orders: 1, order_items: 3}   rows: orders lsn 100, items lsn 101, 103   -> waiting (3 of 4)
//!          ... items lsn 102 arrives                                                  -> complete
//! ```
//!
//! Complete transactions leave in the order of their END records ([`TransactionBuffer::ends`]):
//! cdc-reader writes END records in commit order to a one-partition topic, so emitting in that
//! order keeps every order's events in commit order, even when a later transaction's rows are
//! in before an earlier one's. Rows are kept sorted by LSN (and deduplicated by it: a row
//! redelivered in the same transaction is one row).
//!
//! The buffer is a state store too: a transaction still waiting when a Kafka transaction
//! commits is written to the changelog (`tx/<xid>`), and deleted from it (a tombstone) once it
//! is emitted or dead-lettered, so a restart loses none of the rows whose offsets it committed.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::order_events::input::{SourceChange, TransactionEnd, Xid};

/// One transaction's rows so far, and its END once it came.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransaction {
    pub xid: Xid,
    /// Rows by LSN.
    pub rows: BTreeMap<i64, SourceChange>,
    pub end: Option<TransactionEnd>,
    /// Processing time (ms) of the last record that arrived for it: the incomplete bound
    /// counts from here. Not in the changelog: a restored transaction starts counting anew.
    #[serde(skip)]
    pub last_arrival_ms: u64,
}

impl PendingTransaction {
    /// (orders rows, order_items rows) that arrived.
    pub fn arrived(&self) -> (u64, u64) {
        let orders = self.rows.values().filter(|c| c.row.is_order()).count() as u64;
        (orders, self.rows.len() as u64 - orders)
    }

    /// All rows the END counts are in.
    pub fn is_complete(&self) -> bool {
        match &self.end {
            Some(end) => self.arrived() == (end.order_rows, end.item_rows),
            None => false,
        }
    }

    /// More rows arrived than the END counts: this transaction cannot be joined.
    pub fn is_overfull(&self) -> bool {
        match &self.end {
            Some(end) => {
                let (orders, items) = self.arrived();
                orders > end.order_rows || items > end.item_rows
            }
            None => false,
        }
    }
}

/// The changelog key of a waiting transaction.
pub fn transaction_key(xid: Xid) -> String {
    format!("tx/{xid}")
}

/// All waiting transactions.
#[derive(Debug, Clone, Default)]
pub struct TransactionBuffer {
    pending: HashMap<Xid, PendingTransaction>,
    /// The xids whose END arrived, in arrival (= commit) order.
    ends: VecDeque<Xid>,
    /// Changed since the changelog was written.
    dirty: HashSet<Xid>,
    /// In the changelog now (so their removal needs a tombstone).
    persisted: HashSet<Xid>,
}

impl TransactionBuffer {
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn get(&self, xid: Xid) -> Option<&PendingTransaction> {
        self.pending.get(&xid)
    }

    /// Adds a row of transaction `xid`.
    pub fn add_row(&mut self, xid: Xid, change: SourceChange, now_ms: u64) {
        let pending = self.pending_mut(xid, now_ms);
        pending.rows.insert(change.lsn, change);
    }

    /// Adds the END of a transaction; `false` if this xid already had one (a redelivery).
    pub fn add_end(&mut self, end: TransactionEnd, now_ms: u64) -> bool {
        let xid = end.xid;
        let pending = self.pending_mut(xid, now_ms);
        if pending.end.is_some() {
            return false;
        }
        pending.end = Some(end);
        self.ends.push_back(xid);
        true
    }

    fn pending_mut(&mut self, xid: Xid, now_ms: u64) -> &mut PendingTransaction {
        self.dirty.insert(xid);
        let pending = self
            .pending
            .entry(xid)
            .or_insert_with(|| PendingTransaction {
                xid,
                ..Default::default()
            });
        pending.last_arrival_ms = now_ms;
        pending
    }

    /// The oldest transaction whose END arrived: the next to leave.
    pub fn head(&self) -> Option<&PendingTransaction> {
        self.ends.front().and_then(|xid| self.pending.get(xid))
    }

    /// Takes a transaction out (emitted, dead-lettered or dropped).
    pub fn remove(&mut self, xid: Xid) -> Option<PendingTransaction> {
        let removed = self.pending.remove(&xid)?;
        if removed.end.is_some() {
            if self.ends.front() == Some(&xid) {
                self.ends.pop_front(); // the usual case: the head leaves
            } else {
                self.ends.retain(|x| *x != xid);
            }
        }
        self.dirty.insert(xid);
        Some(removed)
    }

    /// Transactions without an END whose last row arrived `bound_ms` or more before `now_ms`.
    pub fn stalled_without_end(&self, now_ms: u64, bound_ms: u64) -> Vec<Xid> {
        let mut xids: Vec<Xid> = self
            .pending
            .values()
            .filter(|p| p.end.is_none() && now_ms.saturating_sub(p.last_arrival_ms) >= bound_ms)
            .map(|p| p.xid)
            .collect();
        xids.sort_unstable();
        xids
    }

    /// The changelog records for everything changed since the last call.
    pub fn take_changelog(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        let mut dirty: Vec<Xid> = self.dirty.drain().collect();
        dirty.sort_unstable();
        let mut records = Vec::new();
        for xid in dirty {
            match self.pending.get(&xid) {
                Some(pending) => {
                    let value = serde_json::to_vec(pending).unwrap_or_default();
                    self.persisted.insert(xid);
                    records.push((transaction_key(xid), Some(value)));
                }
                None => {
                    if self.persisted.remove(&xid) {
                        records.push((transaction_key(xid), None));
                    }
                }
            }
        }
        records
    }

    /// Restores one changelog record; `Ok(false)` if the key is not a transaction's.
    /// Call [`TransactionBuffer::finish_restore`] after the last one.
    pub fn restore(&mut self, key: &str, value: Option<&[u8]>) -> Result<bool, serde_json::Error> {
        let Some(xid) = key.strip_prefix("tx/").and_then(|x| x.parse::<Xid>().ok()) else {
            return Ok(false);
        };
        match value {
            Some(value) => {
                let pending: PendingTransaction = serde_json::from_slice(value)?;
                self.pending.insert(xid, pending);
                self.persisted.insert(xid);
            }
            None => {
                self.pending.remove(&xid);
                self.persisted.remove(&xid);
            }
        }
        Ok(true)
    }

    /// Rebuilds the END order (by commit LSN) and starts every bound anew at `now_ms`.
    pub fn finish_restore(&mut self, now_ms: u64) {
        let mut ends: Vec<(i64, Xid)> = self
            .pending
            .values_mut()
            .filter_map(|p| {
                p.last_arrival_ms = now_ms;
                p.end.as_ref().map(|end| (end.commit_lsn, p.xid))
            })
            .collect();
        ends.sort_unstable();
        self.ends = ends.into_iter().map(|(_, xid)| xid).collect();
    }
}
