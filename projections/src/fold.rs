//! Folding a batch of change events: the whole pure core of the consumer in one place.
//!
//! The consumer reads a batch of records, loads the state of the orders they touch, and
//! hands everything to a [`BatchFold`]:
//!
//! ```text
//! events ──> drop seen outbox ids ──> OrderStates::apply ──> Transition ──> OrderTotals  ──> DeltaSum<i64>
//!                                                                     └──> StatusTotals ──> DeltaSum<String>
//! ```
//!
//! What comes out is what one PostgreSQL transaction writes: the changed order states, the
//! summed deltas per projection, the newly applied outbox event ids. The tests fold the same
//! way in memory, so they exercise exactly the logic the consumer runs.

use std::collections::{BTreeSet, HashSet};

use crate::event::{ChangeEvent, OrderId, Position};
use crate::order_state::{Applied, OrderState, OrderStates};
use crate::order_totals::OrderTotals;
use crate::projection::{DeltaSum, ProjectionError};
use crate::status_totals::StatusTotals;

/// One batch being folded.
#[derive(Debug, Default)]
pub struct BatchFold {
    states: OrderStates,
    seen_event_ids: HashSet<String>,
    changed_orders: BTreeSet<OrderId>,
    new_event_ids: Vec<String>,
    pub order_totals: DeltaSum<i64>,
    pub status_totals: DeltaSum<String>,
    /// Events applied (each moved its order's row).
    pub applied: u64,
    /// Events dropped as duplicates.
    pub duplicates: u64,
}

impl BatchFold {
    /// A fold over the given current states (every order the batch touches that has one) and
    /// the outbox event ids among the batch's that were applied before.
    pub fn new(states: OrderStates, seen_event_ids: HashSet<String>) -> Self {
        Self {
            states,
            seen_event_ids,
            ..Self::default()
        }
    }

    /// Applies one event to the states and the projections' deltas.
    ///
    /// An error (a total overflowing 64 bits) leaves the fold half-applied: the caller must
    /// drop the whole batch (roll back), never write it.
    pub fn apply(&mut self, event: &ChangeEvent) -> Result<Applied, ProjectionError> {
        if let Position::EventId(id) = &event.position {
            if !self.seen_event_ids.insert(id.clone()) {
                self.duplicates += 1;
                return Ok(Applied::Duplicate);
            }
            self.new_event_ids.push(id.clone());
        }
        let applied = self.states.apply(event);
        match &applied {
            Applied::Changed(transition) => {
                self.changed_orders.insert(event.order_id);
                self.order_totals.add_transition(&OrderTotals, transition)?;
                self.status_totals
                    .add_transition(&StatusTotals, transition)?;
                self.applied += 1;
            }
            Applied::Duplicate => self.duplicates += 1,
        }
        Ok(applied)
    }

    /// The states that changed, to write back (in order id order).
    pub fn changed_states(&self) -> impl Iterator<Item = (OrderId, &OrderState)> {
        self.changed_orders
            .iter()
            .filter_map(|id| self.states.get(*id).map(|state| (*id, state)))
    }

    /// The outbox event ids applied in this batch, to remember.
    pub fn new_event_ids(&self) -> &[String] {
        &self.new_event_ids
    }

    /// Hands back the states (for a caller that keeps them between batches).
    pub fn into_states(self) -> OrderStates {
        self.states
    }
}
