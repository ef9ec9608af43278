//! `order_totals`: per customer, how many orders and their sum.
//!
//! Every existing order counts, whatever its status: a CANCELLED order is still a row of
//! `orders`, so it counts until it is deleted. The projection therefore equals
//!
//! ```text
//! SELECT customer_id, count(*), sum(total) FROM orders GROUP BY customer_id
//! ```
//!
//! which is the oracle every test compares against. Moving an order to another customer
//! moves its count and amount between the two groups.

use crate::event::OrderRow;
use crate::projection::Projection;

/// Groups orders by `customer_id` (table `order_totals`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderTotals;

impl Projection for OrderTotals {
    type Key = i64;

    fn group_of(&self, row: &OrderRow) -> i64 {
        row.customer_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Cents;
    use crate::order_state::Transition;
    use crate::projection::{Delta, DeltaSum, GroupTotals};

    fn row(customer_id: i64, cents: i64, status: &str) -> OrderRow {
        OrderRow {
            customer_id,
            status: status.into(),
            total: Cents(cents),
        }
    }

    #[test]
    fn a_customer_change_moves_the_order() {
        let transition = Transition {
            order_id: 1,
            before: Some(row(7, 1230, "NEW")),
            after: Some(row(8, 2000, "NEW")),
        };
        let [leave, join] = OrderTotals.deltas(&transition);
        assert_eq!(
            leave,
            Some(Delta {
                key: 7,
                order_count: -1,
                amount: Cents(-1230)
            })
        );
        assert_eq!(
            join,
            Some(Delta {
                key: 8,
                order_count: 1,
                amount: Cents(2000)
            })
        );
    }

    #[test]
    fn a_cancelled_order_still_counts() {
        let mut sum = DeltaSum::new();
        let cancel = Transition {
            order_id: 1,
            before: Some(row(7, 1230, "NEW")),
            after: Some(row(7, 1230, "CANCELLED")),
        };
        sum.add_transition(&OrderTotals, &cancel)
            .expect("no overflow");
        assert!(sum.is_empty());
        let mut sum = DeltaSum::new();
        let create = Transition {
            order_id: 1,
            before: None,
            after: Some(row(7, 1230, "CANCELLED")),
        };
        sum.add_transition(&OrderTotals, &create)
            .expect("no overflow");
        assert_eq!(
            sum.into_sorted(),
            vec![(
                7,
                GroupTotals {
                    order_count: 1,
                    amount: Cents(1230)
                }
            )]
        );
    }
}
