//! The domain event on `orders.events.v1`: one per order per committed source transaction.
//!
//! ```text
//! key   "42"
//! value {"event_id":"5b1e0c6e-...","order_id":42,"type":"OrderChanged",
//!        "order":{"id":42,"customer_id":7,"status":"PAID","total":"12.30","currency":"EUR"},
//!        "items":[{"order_id":42,"line_no":1,"sku":"A-1","quantity":2,"unit_price":"6.15"}],
//!        "source":{"tx_id":771,"lsn":22911032,"ts_ms":1732370000000}}
//! ```
//!
//! `type`, from what the transaction did to the order (the state before and after it):
//!
//! | before | after | type |
//! |---|---|---|
//! | no order row known | order row | `OrderPlaced` (its insert, or the first change seen of an order older than the processor) |
//! | order row | no order row (deleted) | `OrderDeleted` (`order`: the row as last seen, `items`: `[]`) |
//! | status not `CANCELLED` | status `CANCELLED` | `OrderCancelled` |
//! | order row | order row | `OrderChanged` (status, total, items: anything else) |
//! | no order row | no order row, but the order row was inserted and deleted in it | `OrderDeleted` (`order`: null) |
//! | no order row | no order row, only items changed | no event: the items are held (see [`crate::order_events`]) |
//!
//! `source.lsn` is the LSN of the transaction's COMMIT: per order it grows with every event, so
//! a consumer can drop a redelivered event by comparing it with the last one it applied.
//! `event_id` is a UUIDv5 of the transaction (xid and commit LSN) and the order id: the same
//! source transaction always gives the same id, however often it is processed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::debezium::DecodeError;
use crate::event::{ChangeEvent, Decoded, Op, OrderId, OrderRow, Position};
use crate::order_events::input::{Item, Order, Xid};

/// The four event types (see the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    OrderPlaced,
    OrderChanged,
    OrderCancelled,
    OrderDeleted,
}

impl EventType {
    /// The name in the event's `type` field (and in metric labels).
    pub fn name(self) -> &'static str {
        match self {
            EventType::OrderPlaced => "OrderPlaced",
            EventType::OrderChanged => "OrderChanged",
            EventType::OrderCancelled => "OrderCancelled",
            EventType::OrderDeleted => "OrderDeleted",
        }
    }
}

/// Where the event came from in the source database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSource {
    pub tx_id: Xid,
    /// The LSN of the transaction's COMMIT.
    pub lsn: i64,
    /// The commit time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
}

/// One domain event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: Uuid,
    /// The key: also in the value, since a deleted order's event may have no `order`.
    pub order_id: OrderId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub order: Option<Order>,
    pub items: Vec<Item>,
    pub source: EventSource,
}

/// The namespace of the event ids (a fixed, random UUID: `uuidgen` once, for this topic).
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c1d_0f3e_8a2b_4c55_9e71_3b0a_d4f2_9c18);

/// The deterministic id of the event for `order_id` from the transaction `xid` committed at
/// `commit_lsn` (the xid alone would repeat after xid wraparound).
pub fn event_id(xid: Xid, commit_lsn: i64, order_id: OrderId) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{xid}:{commit_lsn}/{order_id}").as_bytes(),
    )
}

impl OrderEvent {
    /// The record key: the order id as text.
    pub fn key(&self) -> String {
        self.order_id().to_string()
    }

    pub fn order_id(&self) -> OrderId {
        self.order_id
    }

    /// The record value: JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<OrderEvent, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Decodes a record of `orders.events.v1` into what the projections fold (`consumer --from
/// domain`): the order's row after the transaction, or "gone" for `OrderDeleted`, at the
/// position of the transaction's COMMIT (per order it grows, so a redelivery is dropped).
pub fn decode_domain_event(value: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let Some(bytes) = value.filter(|b| !b.is_empty()) else {
        return Ok(Decoded::Tombstone);
    };
    let event = OrderEvent::from_json(bytes)?;
    let position = Position::Lsn(event.source.lsn);
    let (op, after) = match (event.event_type, event.order) {
        (EventType::OrderDeleted, _) => (Op::Delete, None),
        (event_type, Some(order)) => (
            if event_type == EventType::OrderPlaced {
                Op::Create
            } else {
                Op::Update
            },
            Some(OrderRow {
                customer_id: order.customer_id,
                status: order.status,
                total: order.total,
            }),
        ),
        (_, None) => {
            return Err(DecodeError::Missing(
                "order (of an event that is not OrderDeleted)",
            ))
        }
    };
    Ok(Decoded::Change(ChangeEvent {
        order_id: event.order_id,
        op,
        after,
        position,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_deterministic_and_distinct() {
        assert_eq!(event_id(771, 1000, 42), event_id(771, 1000, 42));
        assert_ne!(event_id(771, 1000, 42), event_id(771, 1000, 43));
        assert_ne!(event_id(771, 1000, 42), event_id(771, 2000, 42));
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let event = OrderEvent {
            event_id: event_id(1, 2, 3),
            order_id: 3,
            event_type: EventType::OrderCancelled,
            order: Some(Order {
                id: 3,
                customer_id: 7,
                status: "CANCELLED".into(),
                total: crate::money::Cents(1230),
                currency: "EUR".into(),
            }),
            items: vec![],
            source: EventSource {
                tx_id: 1,
                lsn: 2,
                ts_ms: 5,
            },
        };
        let value: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(value["type"], "OrderCancelled");
        assert_eq!(value["order"]["total"], "12.30");
        assert_eq!(value["source"]["tx_id"], 1);
        assert_eq!(OrderEvent::from_json(&event.to_json()).unwrap(), event);
        assert_eq!(event.key(), "3");
    }
}
