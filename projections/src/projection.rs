//! The [`Projection`] seam: turning exactly-once row transitions into additive deltas.
//!
//! The state table ([`crate::order_state`]) turns an at-least-once stream of change events
//! into exactly-once [`Transition`]s (row before -> row after). A projection says which group
//! a row counts in; from that, a transition becomes at most two deltas: the old row leaves
//! its group, the new row joins its group.
//!
//! ```text
//! Transition 42: (customer 7, 12.30) -> (customer 8, 20.00)
//!   OrderTotals deltas:  customer 7: -1 order, -12.30   customer 8: +1 order, +20.00
//! ```
//!
//! Deltas add up ([`DeltaSum`]), so a batch of thousands of events becomes one small write:
//! one row per group touched, applied with one multi-row upsert.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;

use crate::event::OrderRow;
use crate::money::Cents;
use crate::order_state::Transition;

/// A "count and sum per group" view of the orders.
pub trait Projection {
    /// The group key (a customer id, a status, a day, ...).
    type Key: Clone + Eq + Hash + Ord + Debug;

    /// The group a live row counts in.
    fn group_of(&self, row: &OrderRow) -> Self::Key;

    /// The deltas of one transition: the old row leaves, the new row joins.
    fn deltas(&self, transition: &Transition) -> [Option<Delta<Self::Key>>; 2] {
        let leave = transition.before.as_ref().map(|row| Delta {
            key: self.group_of(row),
            order_count: -1,
            amount: Cents(-row.total.0),
        });
        let join = transition.after.as_ref().map(|row| Delta {
            key: self.group_of(row),
            order_count: 1,
            amount: row.total,
        });
        [leave, join]
    }
}

/// A change to one group's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta<K> {
    pub key: K,
    pub order_count: i64,
    pub amount: Cents,
}

/// A group's count and sum (or a change to them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupTotals {
    pub order_count: i64,
    pub amount: Cents,
}

impl GroupTotals {
    fn add(&mut self, order_count: i64, amount: Cents) -> Result<(), ProjectionError> {
        self.order_count = self
            .order_count
            .checked_add(order_count)
            .ok_or(ProjectionError::Overflow)?;
        self.amount = self
            .amount
            .checked_add(amount)
            .ok_or(ProjectionError::Overflow)?;
        Ok(())
    }

    pub fn is_zero(&self) -> bool {
        self.order_count == 0 && self.amount == Cents::ZERO
    }
}

/// Why deltas could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error("a total overflowed 64 bits")]
    Overflow,
}

/// The summed deltas of a batch, per group.
#[derive(Debug, Clone)]
pub struct DeltaSum<K> {
    groups: HashMap<K, GroupTotals>,
}

impl<K: Clone + Eq + Hash + Ord> Default for DeltaSum<K> {
    fn default() -> Self {
        Self {
            groups: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> DeltaSum<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the deltas of `transition` under `projection`.
    pub fn add_transition<P: Projection<Key = K>>(
        &mut self,
        projection: &P,
        transition: &Transition,
    ) -> Result<(), ProjectionError> {
        for delta in projection.deltas(transition).into_iter().flatten() {
            self.groups
                .entry(delta.key)
                .or_default()
                .add(delta.order_count, delta.amount)?;
        }
        Ok(())
    }

    /// The non-zero deltas, by key (a deterministic order, so writes lock rows in one order).
    pub fn into_sorted(self) -> Vec<(K, GroupTotals)> {
        let mut entries: Vec<_> = self
            .groups
            .into_iter()
            .filter(|(_, d)| !d.is_zero())
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    pub fn is_empty(&self) -> bool {
        self.groups.values().all(GroupTotals::is_zero)
    }
}

/// A projection's result held in memory (the tests' stand-in for its PostgreSQL table):
/// groups whose count drops to zero disappear, as they do from a `GROUP BY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals<K: Ord> {
    pub groups: BTreeMap<K, GroupTotals>,
}

impl<K: Ord> Default for Totals<K> {
    fn default() -> Self {
        Self {
            groups: BTreeMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Totals<K> {
    pub fn apply(&mut self, deltas: DeltaSum<K>) -> Result<(), ProjectionError> {
        for (key, delta) in deltas.into_sorted() {
            let group = self.groups.entry(key.clone()).or_default();
            group.add(delta.order_count, delta.amount)?;
            if group.order_count == 0 {
                self.groups.remove(&key);
            }
        }
        Ok(())
    }

    /// The same view computed directly from live rows: `SELECT key, count(*), sum(total) ... GROUP BY key`.
    pub fn of_rows<'a, P: Projection<Key = K>>(
        projection: &P,
        rows: impl IntoIterator<Item = &'a OrderRow>,
    ) -> Totals<K> {
        let mut totals = Totals::default();
        for row in rows {
            let group = totals.groups.entry(projection.group_of(row)).or_default();
            group.order_count += 1;
            group.amount = Cents(group.amount.0 + row.total.0);
        }
        totals
    }
}
