//! `order_status_totals`: per status, how many orders and their sum.
//!
//! The second projection, to show the pattern generalises: only the group key differs from
//! [`crate::OrderTotals`]. A status change moves an order between two groups, exactly as a
//! customer change does there. The oracle:
//!
//! ```text
//! SELECT status, count(*), sum(total) FROM orders GROUP BY status
//! ```

use crate::event::OrderRow;
use crate::projection::Projection;

/// Groups orders by `status` (table `order_status_totals`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusTotals;

impl Projection for StatusTotals {
    type Key = String;

    fn group_of(&self, row: &OrderRow) -> String {
        row.status.clone()
    }
}
