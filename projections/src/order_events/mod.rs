//! # order_events: orders joined with their items into domain events (pure logic, no I/O)
//!
//! The logic of the `order-events` stream processor, which sits beside the consumer:
//!
//! ```text
//! dbserver1.public.orders ──┐
//! dbserver1.public.order_items ──┼─> OrderEventsJoin ──> orders.events.v1 (one event per order per source transaction)
//! dbserver1.transaction (END) ──┘         │ state store + transaction buffer
//!                                         └─> order-events-state-changelog (compacted)
//! ```
//!
//! - [`input`]: the typed input: [`SourceChange`] (a row of either table, with its xid, LSN and
//!   commit time) and [`TransactionEnd`] (how many rows of each table a transaction had).
//! - [`transaction_buffer`]: rows waiting for the rest of their transaction.
//! - [`state_store`]: per order, the current row and items (what an event carries).
//! - [`event`]: [`OrderEvent`], its type and its deterministic id.
//! - [`join`]: [`OrderEventsJoin`], the processor: what is emitted when, and the defined
//!   outcomes for what does not join (incomplete transactions, items without their order).

pub mod event;
pub mod input;
pub mod join;
pub mod state_store;
pub mod transaction_buffer;

#[cfg(test)]
mod tests;

pub use event::{
    connect_schema, decode_domain_event, event_id, EventSource, EventType, OrderEvent,
};
pub use input::{
    decode_item_change, decode_order_change, decode_transaction_end, Item, JoinedTables, Order,
    RowChange, RowOp, SourceChange, TransactionEnd, Xid,
};
pub use join::{DeadLetter, JoinOutput, JoinSettings, OrderEventsJoin, RestoreError};
