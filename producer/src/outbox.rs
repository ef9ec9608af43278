//! The outbox events the producer writes, and the JSON payload each one carries.
//!
//! An outbox row is the *event* that describes a business change, written in the same
//! transaction as the change itself ([`crate::orders`] does that). CDC then captures the
//! `outbox_events` insert, and Debezium's Outbox Event Router (or our consumer) turns each row
//! into a message on `outbox.event.<aggregatetype>`, keyed by `aggregateid`.
//!
//! ```text
//! outbox_events row
//!   id             uuid   2b0c3a6e-...           one per event; consumers deduplicate on it
//!   aggregatetype  text   order                  -> topic outbox.event.order
//!   aggregateid    text   42                     -> message key (the order id)
//!   type           text   OrderCreated | OrderStatusChanged | OrderUpdated
//!                         | OrderCancelled | OrderDeleted
//!   payload        jsonb  see below
//! ```
//!
//! Every payload is a full snapshot of the order, so a consumer can rebuild per-customer totals
//! from the outbox topic alone, without reading the database:
//!
//! ```text
//! OrderCreated        the new order (status NEW)
//!   {"order_id":42,"customer_id":7,"status":"NEW","total":"12.30","currency":"EUR",
//!    "items":[{"line_no":1,"sku":"SKU-0042","quantity":3,"unit_price":"4.10"}],
//!    "created_at":"2026-11-23T15:40:00.123456Z","updated_at":"2026-11-23T15:40:00.123456Z"}
//! OrderStatusChanged  the order after the change, plus where it came from
//!   {...same fields, "status":"PAID", "previous_status":"NEW"}
//! OrderUpdated        the order after its lines changed (new items, new total)
//! OrderCancelled      the order after cancelling: "status":"CANCELLED", "previous_status":"PAID"
//! OrderDeleted        the order as it was just before it was deleted
//! ```
//!
//! `total` and `unit_price` are decimal strings with 2 decimals (never floats); timestamps are
//! RFC 3339 in UTC with microseconds.

use serde::Serialize;
use uuid::Uuid;

use crate::domain::{Order, OrderStatus};

/// The `aggregatetype` of every event the producer writes (Debezium routes it to `outbox.event.order`).
pub const AGGREGATE_TYPE: &str = "order";

/// What happened to the order: the outbox row's `type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    OrderCreated,
    OrderStatusChanged,
    OrderUpdated,
    OrderCancelled,
    OrderDeleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "OrderCreated",
            EventType::OrderStatusChanged => "OrderStatusChanged",
            EventType::OrderUpdated => "OrderUpdated",
            EventType::OrderCancelled => "OrderCancelled",
            EventType::OrderDeleted => "OrderDeleted",
        }
    }
}

/// The JSON in `outbox_events.payload`: the order snapshot, and for status changes the status before.
#[derive(Debug, Serialize)]
struct OrderEventPayload<'a> {
    #[serde(flatten)]
    order: &'a Order,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_status: Option<OrderStatus>,
}

/// One outbox row, ready to insert (and, in direct-publish mode, to send to Kafka as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub aggregate_type: &'static str,
    /// The order id as text (the column is text so any aggregate's key fits).
    pub aggregate_id: String,
    pub event_type: EventType,
    /// The payload as JSON text (SQL casts it to jsonb).
    pub payload: String,
}

impl OutboxEvent {
    /// The event for `order` after a change of kind `event_type`.
    pub fn for_order(
        id: Uuid,
        event_type: EventType,
        order: &Order,
        previous_status: Option<OrderStatus>,
    ) -> OutboxEvent {
        let payload = OrderEventPayload {
            order,
            previous_status,
        };
        OutboxEvent {
            id,
            aggregate_type: AGGREGATE_TYPE,
            aggregate_id: order.order_id.to_string(),
            event_type,
            // Serializing plain structs of strings and integers cannot fail.
            payload: serde_json::to_string(&payload).unwrap_or_else(|_| "null".to_string()),
        }
    }
}

/// The order the unit tests of the payload (here and in [`crate::order_event_avro`]) use.
#[cfg(test)]
pub(crate) fn sample_order() -> Order {
    use crate::domain::OrderItem;
    use crate::money::Money;
    Order {
        order_id: 42,
        customer_id: 7,
        status: OrderStatus::Paid,
        total: Money::from_cents(1230),
        currency: "EUR".into(),
        items: vec![OrderItem {
            line_no: 1,
            sku: "SKU-0042".into(),
            quantity: 3,
            unit_price: Money::from_cents(410),
        }],
        created_at: "2026-11-23T15:40:00.123456Z".into(),
        updated_at: "2026-11-23T15:41:00.000001Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_the_order_snapshot_with_money_as_strings() {
        let event = OutboxEvent::for_order(
            Uuid::nil(),
            EventType::OrderStatusChanged,
            &sample_order(),
            Some(OrderStatus::New),
        );
        assert_eq!(event.aggregate_id, "42");
        assert_eq!(
            event.payload,
            r#"{"order_id":42,"customer_id":7,"status":"PAID","total":"12.30","currency":"EUR","items":[{"line_no":1,"sku":"SKU-0042","quantity":3,"unit_price":"4.10"}],"created_at":"2026-11-23T15:40:00.123456Z","updated_at":"2026-11-23T15:41:00.000001Z","previous_status":"NEW"}"#
        );
    }

    #[test]
    fn created_events_have_no_previous_status() {
        let event =
            OutboxEvent::for_order(Uuid::nil(), EventType::OrderCreated, &sample_order(), None);
        assert!(!event.payload.contains("previous_status"));
        assert_eq!(event.event_type.as_str(), "OrderCreated");
    }
}
