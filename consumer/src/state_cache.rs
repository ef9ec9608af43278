//! A read cache of `projection_order_state`, so a batch does not have to select the states
//! of its orders from PostgreSQL every time.
//!
//! Sound because this process is the only writer (every batch checks its claim,
//! [`crate::projection_writer`]) and the cache only ever holds committed rows: states enter it
//! after their batch's COMMIT. A cache lives for one session of the consume loop: when a batch
//! fails or the claim is lost, it is dropped with the session, and the next one starts empty.
//! After a replay (or on an empty table) the cache is complete: an order it does not know has
//! no state at all, so nothing is selected. Otherwise misses are selected, once. Over
//! [`StateCache::MAX_ORDERS`] it forgets everything and goes back to selecting misses.

use std::collections::HashMap;

use projections::{OrderId, OrderState, OrderStates};

#[derive(Debug, Default)]
pub struct StateCache {
    states: HashMap<OrderId, OrderState>,
    /// Whether every stored state is in `states`.
    complete: bool,
}

impl StateCache {
    /// Most orders kept (about 100 bytes each).
    pub const MAX_ORDERS: usize = 2_000_000;

    /// An empty cache; `complete` when the state table is known to be empty.
    pub fn new(complete: bool) -> Self {
        Self {
            states: HashMap::new(),
            complete,
        }
    }

    /// Takes the cached states of `order_ids` out (they come back with [`Self::remember`]
    /// after the commit, or the cache is [`Self::forget_all`]ed), and the ids to select.
    pub fn take(&mut self, order_ids: &[OrderId]) -> (OrderStates, Vec<OrderId>) {
        let mut found = OrderStates::new();
        let mut missing = Vec::new();
        for id in order_ids {
            match self.states.remove(id) {
                Some(state) => found.insert(*id, state),
                None if self.complete => {}
                None => missing.push(*id),
            }
        }
        (found, missing)
    }

    /// Remembers states that are now committed.
    pub fn remember(&mut self, states: OrderStates) {
        if self.states.len() > Self::MAX_ORDERS {
            self.states.clear();
            self.complete = false;
        }
        self.states.extend(states.into_states());
    }

    /// Forgets everything (a batch failed: what it took out is no longer known).
    pub fn forget_all(&mut self) {
        self.states.clear();
        self.complete = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_cache_never_misses() {
        let mut cache = StateCache::new(true);
        let (found, missing) = cache.take(&[1, 2]);
        assert!(missing.is_empty());
        assert!(found.get(1).is_none());
    }

    #[test]
    fn an_incomplete_cache_misses_what_it_does_not_hold() {
        let mut cache = StateCache::new(false);
        let mut states = OrderStates::new();
        states.insert(1, OrderState::default());
        cache.remember(states);
        let (found, missing) = cache.take(&[1, 2]);
        assert!(found.get(1).is_some());
        assert_eq!(missing, vec![2]);
    }
}
