//! The state store: per order id, the current order row and its items (Kafka Streams would
//! call it a key-value store), plus where the join stands in the source.
//!
//! Every entry is written to a compacted changelog topic in the same Kafka transaction as the
//! events it produced, so on start the processor rebuilds exactly this table by reading the
//! changelog, not the input topics from the beginning:
//!
//! ```text
//! key  "order/42"  {"order":{"id":42,"customer_id":7,"status":"PAID","total":"12.30","currency":"EUR"},
//!                   "order_lsn":22910504,
//!                   "items":{"1":{"lsn":22910600,"item":{"order_id":42,"line_no":1,..}},
//!                            "2":{"lsn":22910700,"item":null}}}
//! key  "position"  {"last_commit_lsn":22911032}
//! ```
//!
//! Each row (the order, each item line) keeps the LSN of the last change applied to it, so a
//! change redelivered by the at-least-once reader is recognised (its LSN is not newer) and
//! skipped. A deleted row keeps its LSN with no value (`"item":null`, `"order":null`): a late
//! duplicate of its insert cannot bring it back. Per row the LSN grows with commit order (two
//! transactions that change one row are serialised by its row lock); per order it need not
//! (adding an item only key-share-locks the order), which is why it is kept per row.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::OrderId;
use crate::order_events::input::{Item, Order, RowChange, SourceChange};

/// One item line, as last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSlot {
    pub lsn: i64,
    /// `None` once the line is deleted.
    pub item: Option<Item>,
}

/// What the store holds for one order id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntry {
    /// The live order row; `None` before it is seen, and after it is deleted.
    pub order: Option<Order>,
    /// The LSN of the last change applied to the order row (`None`: never seen).
    pub order_lsn: Option<i64>,
    /// Item lines by `line_no`, deleted ones included (with their LSN).
    pub items: BTreeMap<i32, ItemSlot>,
}

impl OrderEntry {
    /// The live items, by line number.
    pub fn live_items(&self) -> Vec<Item> {
        self.items
            .values()
            .filter_map(|slot| slot.item.clone())
            .collect()
    }

    /// Whether `change` (of this order) is not newer than what was applied to its row.
    pub fn is_stale(&self, change: &SourceChange) -> bool {
        match &change.row {
            RowChange::Order { .. } => self.order_lsn.is_some_and(|lsn| change.lsn <= lsn),
            RowChange::Item { line_no, .. } => self
                .items
                .get(line_no)
                .is_some_and(|slot| change.lsn <= slot.lsn),
        }
    }

    /// Applies `change` unless it is stale; returns whether it was applied.
    pub fn apply(&mut self, change: &SourceChange) -> bool {
        if self.is_stale(change) {
            return false;
        }
        match &change.row {
            RowChange::Order { after, .. } => {
                self.order = after.clone();
                self.order_lsn = Some(change.lsn);
            }
            RowChange::Item { line_no, after, .. } => {
                self.items.insert(
                    *line_no,
                    ItemSlot {
                        lsn: change.lsn,
                        item: after.clone(),
                    },
                );
            }
        }
        true
    }
}

/// The in-memory store, with the keys changed since the changelog was last written.
#[derive(Debug, Clone, Default)]
pub struct StateStore {
    orders: HashMap<OrderId, OrderEntry>,
    /// The commit LSN of the last transaction emitted or dead-lettered: an END not above it
    /// is a redelivery.
    last_commit_lsn: i64,
    dirty: HashSet<OrderId>,
    position_dirty: bool,
}

/// The changelog key of an order's entry.
pub fn order_key(order_id: OrderId) -> String {
    format!("order/{order_id}")
}

/// The changelog key of the join's position.
pub const POSITION_KEY: &str = "position";

#[derive(Serialize, Deserialize)]
struct PositionValue {
    last_commit_lsn: i64,
}

impl StateStore {
    pub fn get(&self, order_id: OrderId) -> Option<&OrderEntry> {
        self.orders.get(&order_id)
    }

    /// The entry of `order_id`, created empty if new; marked for the changelog.
    pub fn entry_mut(&mut self, order_id: OrderId) -> &mut OrderEntry {
        self.dirty.insert(order_id);
        self.orders.entry(order_id).or_default()
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn last_commit_lsn(&self) -> i64 {
        self.last_commit_lsn
    }

    pub fn set_last_commit_lsn(&mut self, lsn: i64) {
        if lsn > self.last_commit_lsn {
            self.last_commit_lsn = lsn;
            self.position_dirty = true;
        }
    }

    /// The changelog records for everything changed since the last call: (key, value).
    pub fn take_changelog(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        let mut records: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(self.dirty.len() + 1);
        let mut dirty: Vec<OrderId> = self.dirty.drain().collect();
        dirty.sort_unstable();
        for order_id in dirty {
            if let Some(entry) = self.orders.get(&order_id) {
                // Serialising plain data with string keys cannot fail.
                let value = serde_json::to_vec(entry).unwrap_or_default();
                records.push((order_key(order_id), Some(value)));
            }
        }
        if std::mem::take(&mut self.position_dirty) {
            let value = serde_json::to_vec(&PositionValue {
                last_commit_lsn: self.last_commit_lsn,
            })
            .unwrap_or_default();
            records.push((POSITION_KEY.to_string(), Some(value)));
        }
        records
    }

    /// Restores one changelog record of this store; `Ok(false)` if the key is not its own.
    pub fn restore(&mut self, key: &str, value: Option<&[u8]>) -> Result<bool, serde_json::Error> {
        if key == POSITION_KEY {
            if let Some(value) = value {
                let position: PositionValue = serde_json::from_slice(value)?;
                self.last_commit_lsn = position.last_commit_lsn;
            }
            return Ok(true);
        }
        let Some(order_id) = key.strip_prefix("order/").and_then(|id| id.parse().ok()) else {
            return Ok(false);
        };
        match value {
            Some(value) => {
                self.orders.insert(order_id, serde_json::from_slice(value)?);
            }
            None => {
                self.orders.remove(&order_id);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Cents;
    use crate::order_events::input::RowOp;

    fn item_change(lsn: i64, line_no: i32, quantity: Option<i32>) -> SourceChange {
        SourceChange {
            xid: Some(1),
            lsn,
            ts_ms: 0,
            row: RowChange::Item {
                order_id: 5,
                line_no,
                op: if quantity.is_some() {
                    RowOp::Insert
                } else {
                    RowOp::Delete
                },
                after: quantity.map(|quantity| Item {
                    order_id: 5,
                    line_no,
                    sku: "A".into(),
                    quantity,
                    unit_price: Cents(100),
                }),
            },
        }
    }

    #[test]
    fn stale_changes_are_skipped_per_row() {
        let mut entry = OrderEntry::default();
        assert!(entry.apply(&item_change(200, 1, Some(1))));
        // Another line at a lower LSN is not stale: LSNs are compared per row.
        assert!(entry.apply(&item_change(100, 2, Some(2))));
        assert!(!entry.apply(&item_change(200, 1, Some(1))));
        assert!(entry.apply(&item_change(300, 1, None)));
        assert!(!entry.apply(&item_change(250, 1, Some(9))));
        assert_eq!(entry.live_items().len(), 1);
    }

    #[test]
    fn the_changelog_restores_the_same_store() {
        let mut store = StateStore::default();
        store.entry_mut(5).apply(&item_change(200, 1, Some(1)));
        store.set_last_commit_lsn(300);
        let records = store.take_changelog();
        assert_eq!(records.len(), 2);
        assert!(store.take_changelog().is_empty());
        let mut restored = StateStore::default();
        for (key, value) in &records {
            assert!(restored.restore(key, value.as_deref()).unwrap());
        }
        assert_eq!(restored.get(5), store.get(5));
        assert_eq!(restored.last_commit_lsn(), 300);
        assert!(!restored.restore("tx/1", None).unwrap());
    }
}
