//! The per-order state table (a KTable): what makes the projections exact under
//! at-least-once delivery and updates without before-images.
//!
//! Under `REPLICA IDENTITY DEFAULT` an update tells the new row but not the old one, and a
//! delete tells only the key. To subtract what an order used to count for, the projection
//! remembers each order's current row, like a Kafka Streams KTable. It also remembers the
//! position of the last change applied, so a duplicate or a stale redelivery is dropped:
//!
//! ```text
//! state(42) = {row: customer 7, 12.30, NEW; last_lsn: 1000}
//! event  u 42 lsn 1100 {customer 8, 20.00}  -> Transition {before: (7, 12.30), after: (8, 20.00)}
//! event  u 42 lsn 1100 (again, new offset)  -> Duplicate
//! event  d 42 lsn 1200                      -> Transition {before: (8, 20.00), after: None}
//! ```
//!
//! A deleted order keeps its state (row `None`, last LSN) so a late redelivery of its create
//! cannot bring it back. The consumer keeps this table in PostgreSQL
//! (`projection_order_state`) and writes it in the same transaction as the totals.

use std::collections::HashMap;

use crate::event::{ChangeEvent, OrderId, OrderRow, Position};

/// What the projection remembers about one order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderState {
    /// The live row; `None` once the order is deleted.
    pub row: Option<OrderRow>,
    /// The LSN of the last change applied (CDC); `None` if none came from CDC.
    pub last_lsn: Option<i64>,
    /// The first half of that change's `source.sequence` (see [`Position::Sequence`]), when
    /// it had one.
    pub last_commit_lsn: Option<i64>,
}

/// An exactly-once change of one order's row: what every projection derives its deltas from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub order_id: OrderId,
    pub before: Option<OrderRow>,
    pub after: Option<OrderRow>,
}

/// The result of offering an event to the state table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The event was applied; the order's row went from `before` to `after`.
    Changed(Transition),
    /// The event is not newer than the last one applied to this order (a duplicate, a
    /// redelivery after a reader restart, or a snapshot read of a row already streamed), or
    /// an outbox event whose id was applied before.
    Duplicate,
}

/// Offers `event` to the order's `state` (absent = never seen); updates it if applied.
///
/// Events with an event id ([`Position::EventId`]) are applied unconditionally: their
/// duplicates are removed by id before they get here.
pub fn apply(state: &mut OrderState, event: &ChangeEvent) -> Applied {
    if !is_newer(state, &event.position) {
        return Applied::Duplicate;
    }
    match event.position {
        Position::Lsn(lsn) => {
            state.last_lsn = Some(lsn);
            state.last_commit_lsn = None;
        }
        Position::Sequence { last_commit, lsn } => {
            state.last_lsn = Some(lsn);
            state.last_commit_lsn = last_commit;
        }
        Position::EventId(_) => {}
    }
    let before = std::mem::replace(&mut state.row, event.after.clone());
    Applied::Changed(Transition {
        order_id: event.order_id,
        before,
        after: event.after.clone(),
    })
}

/// Is a change at `position` newer than the last one applied to `state`?
///
/// ```text
/// stored (last commit, lsn)   event                     newer?
/// (None, None)                anything                  yes
/// (c, l)                      Sequence(c2, l2)          (c2, l2) > (c, l), commit order first
/// (_, l), one commit unknown  Lsn(l2) / Sequence(_, l2) l2 > l
/// ```
fn is_newer(state: &OrderState, position: &Position) -> bool {
    let Some(last_lsn) = state.last_lsn else {
        return true;
    };
    match *position {
        Position::Sequence {
            last_commit: Some(commit),
            lsn,
        } => match state.last_commit_lsn {
            Some(last_commit) => (commit, lsn) > (last_commit, last_lsn),
            None => lsn > last_lsn,
        },
        Position::Sequence { lsn, .. } | Position::Lsn(lsn) => lsn > last_lsn,
        Position::EventId(_) => true,
    }
}

/// An in-memory state table: the states of the orders a batch touches (the consumer loads
/// them from PostgreSQL), or of all orders (the tests).
#[derive(Debug, Clone, Default)]
pub struct OrderStates {
    states: HashMap<OrderId, OrderState>,
}

impl OrderStates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a state loaded from storage.
    pub fn insert(&mut self, order_id: OrderId, state: OrderState) {
        self.states.insert(order_id, state);
    }

    /// Offers `event` to its order's state; see [`apply`].
    pub fn apply(&mut self, event: &ChangeEvent) -> Applied {
        apply(self.states.entry(event.order_id).or_default(), event)
    }

    pub fn get(&self, order_id: OrderId) -> Option<&OrderState> {
        self.states.get(&order_id)
    }

    /// Every order's state.
    pub fn iter(&self) -> impl Iterator<Item = (OrderId, &OrderState)> {
        self.states.iter().map(|(id, state)| (*id, state))
    }

    /// Every order's state, by value.
    pub fn into_states(self) -> impl Iterator<Item = (OrderId, OrderState)> {
        self.states.into_iter()
    }

    /// The live rows (what `SELECT ... FROM orders` would return).
    pub fn live_rows(&self) -> impl Iterator<Item = (OrderId, &OrderRow)> {
        self.states
            .iter()
            .filter_map(|(id, state)| state.row.as_ref().map(|row| (*id, row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Op;
    use crate::money::Cents;

    fn row(customer_id: i64, cents: i64) -> OrderRow {
        OrderRow {
            customer_id,
            status: "NEW".into(),
            total: Cents(cents),
        }
    }

    fn event(op: Op, lsn: i64, after: Option<OrderRow>) -> ChangeEvent {
        ChangeEvent {
            order_id: 42,
            op,
            after,
            position: Position::Lsn(lsn),
        }
    }

    #[test]
    fn an_update_without_before_image_uses_the_remembered_row() {
        let mut state = OrderState::default();
        apply(&mut state, &event(Op::Create, 100, Some(row(7, 1230))));
        let applied = apply(&mut state, &event(Op::Update, 110, Some(row(8, 2000))));
        assert_eq!(
            applied,
            Applied::Changed(Transition {
                order_id: 42,
                before: Some(row(7, 1230)),
                after: Some(row(8, 2000))
            })
        );
    }

    #[test]
    fn duplicates_and_stale_redeliveries_are_dropped() {
        let mut state = OrderState::default();
        apply(&mut state, &event(Op::Create, 100, Some(row(7, 1230))));
        apply(&mut state, &event(Op::Update, 110, Some(row(7, 1500))));
        assert_eq!(
            apply(&mut state, &event(Op::Update, 110, Some(row(7, 1500)))),
            Applied::Duplicate
        );
        assert_eq!(
            apply(&mut state, &event(Op::Create, 100, Some(row(7, 1230)))),
            Applied::Duplicate
        );
        assert_eq!(state.row, Some(row(7, 1500)));
    }

    #[test]
    fn a_deleted_order_stays_deleted_under_redelivery() {
        let mut state = OrderState::default();
        apply(&mut state, &event(Op::Create, 100, Some(row(7, 1230))));
        apply(&mut state, &event(Op::Delete, 120, None));
        assert!(matches!(
            apply(&mut state, &event(Op::Create, 100, Some(row(7, 1230)))),
            Applied::Duplicate
        ));
        assert_eq!(
            state,
            OrderState {
                row: None,
                last_lsn: Some(120),
                last_commit_lsn: None,
            }
        );
    }

    #[test]
    fn snapshot_reads_then_streamed_changes() {
        let mut state = OrderState::default();
        apply(&mut state, &event(Op::Read, 50, Some(row(7, 100))));
        assert!(matches!(
            apply(&mut state, &event(Op::Read, 50, Some(row(7, 100)))),
            Applied::Duplicate
        ));
        assert!(matches!(
            apply(&mut state, &event(Op::Update, 60, Some(row(7, 200)))),
            Applied::Changed(_)
        ));
    }

    fn at_sequence(op: Op, last_commit: i64, lsn: i64, after: Option<OrderRow>) -> ChangeEvent {
        ChangeEvent {
            order_id: 42,
            op,
            after,
            position: Position::Sequence {
                last_commit: Some(last_commit),
                lsn,
            },
        }
    }

    /// An incremental snapshot: read at the high watermark H=500 (sequence [500,500]); a
    /// transaction that wrote the row at LSN 450, before the watermark, but committed after
    /// it (its sequence starts past the watermark's commit, 520) is newer than the read.
    #[test]
    fn an_incremental_read_orders_by_the_high_watermark_then_commit_order() {
        let mut state = OrderState::default();
        apply(
            &mut state,
            &at_sequence(Op::Create, 100, 120, Some(row(7, 100))),
        );
        // The read saw the create (committed before the chunk was read): applied, same row.
        assert!(matches!(
            apply(
                &mut state,
                &at_sequence(Op::Read, 500, 500, Some(row(7, 100)))
            ),
            Applied::Changed(_)
        ));
        assert!(matches!(
            apply(
                &mut state,
                &at_sequence(Op::Update, 520, 450, Some(row(7, 300)))
            ),
            Applied::Changed(_)
        ));
        // A redelivered suffix [create', read', update']: nothing undoes the update.
        for event in [
            at_sequence(Op::Create, 100, 120, Some(row(7, 100))),
            at_sequence(Op::Read, 500, 500, Some(row(7, 100))),
            at_sequence(Op::Update, 520, 450, Some(row(7, 300))),
        ] {
            assert_eq!(apply(&mut state, &event), Applied::Duplicate);
        }
        assert_eq!(state.row, Some(row(7, 300)));
    }

    #[test]
    fn an_unknown_last_commit_compares_lsns_alone() {
        let mut state = OrderState::default();
        apply(
            &mut state,
            &at_sequence(Op::Create, 100, 120, Some(row(7, 100))),
        );
        // The first transaction after a reader restart: sequence [null, 130].
        let restarted = ChangeEvent {
            position: Position::Sequence {
                last_commit: None,
                lsn: 130,
            },
            ..event(Op::Update, 0, Some(row(7, 200)))
        };
        assert!(matches!(apply(&mut state, &restarted), Applied::Changed(_)));
        assert_eq!(apply(&mut state, &restarted), Applied::Duplicate);
    }
}
