//! # projections: change events in, exact read models out (pure logic, no I/O)
//!
//! The last step of the pipeline:
//!
//! ```text
//! Kafka record ──decode──> ChangeEvent ──OrderStates──> Transition ──Projection──> Delta ──> order_totals
//! ```
//!
//! - [`debezium`] and [`outbox`]: decode a record of the CDC topic (`dbserver1.public.orders`,
//!   a Debezium envelope) or of the outbox topic (`outbox.event.order`) into a [`ChangeEvent`]:
//!   "order N now looks like this row" or "order N is gone", with its [`Position`].
//! - [`order_state`]: the per-order state table (a KTable). It drops duplicates (by LSN, or by
//!   outbox event id) and remembers each order's row, so an update without a before-image can
//!   subtract what the order counted for before. Out comes an exactly-once [`Transition`].
//! - [`projection`]: the [`Projection`] trait: a group key per row; a transition becomes "leave
//!   the old group, join the new one" deltas, which sum ([`DeltaSum`]) over a batch.
//! - [`order_totals`] (per customer) and [`status_totals`] (per status): the two projections.
//! - [`fold`]: [`BatchFold`], all of the above for one batch: what one transaction writes.
//! - [`order_events`]: the stream join of orders and items by source transaction into domain
//!   events (`orders.events.v1`), the logic of the `order-events` processor.
//! - [`money`]: exact amounts ([`Cents`]); [`synthetic`]: generated histories for tests and
//!   the benchmark.
//!
//! The consumer crate does the I/O: it reads Kafka, loads and stores the states and totals in
//! PostgreSQL, and commits the offsets in the same transaction.

pub mod debezium;
pub mod event;
pub mod fold;
pub mod money;
pub mod order_events;
pub mod order_state;
pub mod order_totals;
pub mod outbox;
pub mod projection;
pub mod status_totals;
pub mod synthetic;

pub use debezium::{decode_change, ChangeDecoder, DecodeError};
pub use event::{ChangeEvent, Decoded, Op, OrderId, OrderRow, Position};
pub use fold::BatchFold;
pub use money::Cents;
pub use order_state::{Applied, OrderState, OrderStates, Transition};
pub use order_totals::OrderTotals;
pub use outbox::decode_outbox;
pub use projection::{Delta, DeltaSum, GroupTotals, Projection, ProjectionError, Totals};
pub use status_totals::StatusTotals;
