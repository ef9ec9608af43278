//! Decoding an outbox event (topic `outbox.event.order`) into a [`ChangeEvent`].
//!
//! The producer writes, in the same transaction as the order, a row to `outbox_events`;
//! cdc-reader routes it like Debezium's Outbox Event Router: key = `aggregateid`, value =
//! `payload`, the event id and type in headers.
//!
//! ```text
//! key:     "42"
//! headers: id = 5f0c...-...  eventType = OrderStatusChanged
//! value:   {"id":42,"customer_id":7,"status":"PAID","total":"12.30","currency":"EUR",
//!           "items":[...],"created_at":"...","updated_at":"..."}
//! ```
//!
//! Every event carries the order's full state after the change, so it maps to the same
//! "order N now looks like this" as a CDC record; `OrderDeleted` maps to "order N is gone".
//! The value may also arrive as a JSON string holding the JSON (a `jsonb` payload without
//! `table.expand.json.payload`), or wrapped as `{"schema":...,"payload":...}`; header values
//! may be raw text or JSON strings. All are accepted, so adapting to the reader's exact shape
//! is a matter of this one file.
//!
//! Idempotency rests on the event id ([`Position::EventId`]): there is no LSN in the event.

use serde::Deserialize;
use serde_json::Value;

use crate::debezium::DecodeError;
use crate::event::{ChangeEvent, Decoded, Op, OrderRow, Position};
use crate::money::Cents;

/// The header holding the event's unique id (the `outbox_events.id` uuid).
pub const EVENT_ID_HEADER: &str = "id";
/// The header holding the event type (`outbox_events.type`).
pub const EVENT_TYPE_HEADER: &str = "eventType";

/// The event types the producer writes, and what each means for the order's row.
pub fn op_for_event_type(event_type: &str) -> Option<Op> {
    match event_type {
        "OrderCreated" => Some(Op::Create),
        "OrderStatusChanged" | "OrderUpdated" | "OrderCancelled" | "OrderPaid" | "OrderShipped" => {
            Some(Op::Update)
        }
        "OrderDeleted" => Some(Op::Delete),
        _ => None,
    }
}

/// Decodes one outbox record. `headers` are the record's headers as (name, value) pairs.
pub fn decode_outbox(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> Result<Decoded, DecodeError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(Decoded::Tombstone);
    };
    let event_id = header_text(headers, EVENT_ID_HEADER)
        .ok_or(DecodeError::Missing("header `id` (the event id)"))?;
    let event_type = header_text(headers, EVENT_TYPE_HEADER)
        .ok_or(DecodeError::Missing("header `eventType`"))?;
    let op = op_for_event_type(&event_type)
        .ok_or_else(|| DecodeError::Invalid(format!("unknown outbox event type `{event_type}`")))?;

    let payload = unwrap_payload(serde_json::from_slice(value)?)?;
    let payload: OrderPayload = serde_json::from_value(payload)?;
    let order_id = match payload.id.or(payload.order_id) {
        Some(id) => id.as_i64().ok_or(DecodeError::Invalid(format!(
            "order id `{id}` is not an integer"
        )))?,
        None => key_order_id(key)?,
    };
    let position = Position::EventId(event_id);
    if op == Op::Delete {
        return Ok(Decoded::Change(ChangeEvent {
            order_id,
            op,
            after: None,
            position,
        }));
    }
    let customer_id = payload
        .customer_id
        .ok_or(DecodeError::Missing("customer_id"))?;
    let customer_id = customer_id.as_i64().ok_or_else(|| {
        DecodeError::Invalid(format!("customer_id `{customer_id}` is not an integer"))
    })?;
    let total = match payload.total.ok_or(DecodeError::Missing("total"))? {
        Value::String(text) => Cents::parse(&text),
        Value::Number(n) => Cents::from_f64(n.as_f64().unwrap_or(f64::NAN)),
        other => {
            return Err(DecodeError::Invalid(format!(
                "total `{other}` is not a decimal"
            )))
        }
    }
    .map_err(|source| DecodeError::Money {
        field: "total",
        source,
    })?;
    let status = payload.status.ok_or(DecodeError::Missing("status"))?;
    let row = OrderRow {
        customer_id,
        status,
        total,
    };
    Ok(Decoded::Change(ChangeEvent {
        order_id,
        op,
        after: Some(row),
        position,
    }))
}

/// `{"schema":..,"payload":X}` -> X; a JSON string holding JSON -> that JSON.
fn unwrap_payload(value: Value) -> Result<Value, DecodeError> {
    let value = match value {
        Value::Object(mut map) if map.contains_key("schema") && map.contains_key("payload") => {
            map.remove("payload").unwrap_or(Value::Null)
        }
        other => other,
    };
    match value {
        Value::String(text) => Ok(serde_json::from_str(&text)?),
        other => Ok(other),
    }
}

/// The order id from the key: `"42"`, `42`, or raw text `42`.
fn key_order_id(key: Option<&[u8]>) -> Result<i64, DecodeError> {
    let key = key.ok_or(DecodeError::Missing(
        "order id (neither in the payload nor in the key)",
    ))?;
    let text = std::str::from_utf8(key)
        .map_err(|_| DecodeError::Invalid("the key is not UTF-8".into()))?;
    let text = text.trim().trim_matches('"');
    text.parse()
        .map_err(|_| DecodeError::Invalid(format!("the key `{text}` is not an order id")))
}

/// A header's value as text, with the quotes of a JSON string removed.
fn header_text(headers: &[(&str, Option<&[u8]>)], name: &str) -> Option<String> {
    let (_, value) = headers.iter().rev().find(|(n, _)| *n == name)?;
    let text = std::str::from_utf8((*value)?).ok()?;
    let text = match serde_json::from_str::<String>(text) {
        Ok(unquoted) => unquoted,
        Err(_) => text.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

#[derive(Deserialize)]
struct OrderPayload {
    id: Option<Value>,
    order_id: Option<Value>,
    customer_id: Option<Value>,
    status: Option<String>,
    total: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"id":42,"customer_id":7,"status":"PAID","total":"12.30","currency":"EUR",
        "items":[{"sku":"A-1","quantity":2,"unit_price":"6.15"}],
        "created_at":"2026-11-23T15:40:00Z","updated_at":"2026-11-23T15:41:00Z"}"#;

    fn headers<'a>(id: &'a [u8], event_type: &'a [u8]) -> Vec<(&'a str, Option<&'a [u8]>)> {
        vec![("id", Some(id)), ("eventType", Some(event_type))]
    }

    #[test]
    fn a_status_change() {
        let decoded = decode_outbox(
            Some(b"\"42\""),
            Some(PAYLOAD.as_bytes()),
            &headers(b"e-1", b"OrderStatusChanged"),
        );
        let Ok(Decoded::Change(event)) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(event.order_id, 42);
        assert_eq!(event.op, Op::Update);
        assert_eq!(event.position, Position::EventId("e-1".into()));
        assert_eq!(
            event.after,
            Some(OrderRow {
                customer_id: 7,
                status: "PAID".into(),
                total: Cents(1230)
            })
        );
    }

    #[test]
    fn a_payload_as_a_json_string_with_json_headers() {
        let wrapped = serde_json::to_string(
            &serde_json::json!({"schema": {"type": "string"}, "payload": PAYLOAD}),
        )
        .expect("json");
        let decoded = decode_outbox(
            Some(b"\"42\""),
            Some(wrapped.as_bytes()),
            &headers(b"\"e-2\"", b"\"OrderCreated\""),
        );
        let Ok(Decoded::Change(event)) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(
            (event.op, event.position),
            (Op::Create, Position::EventId("e-2".into()))
        );
    }

    #[test]
    fn a_delete_takes_the_id_from_the_key_if_needed() {
        let decoded = decode_outbox(
            Some(b"\"42\""),
            Some(br#"{"customer_id":7}"#),
            &headers(b"e-3", b"OrderDeleted"),
        );
        let Ok(Decoded::Change(event)) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(
            (event.order_id, event.op, event.after),
            (42, Op::Delete, None)
        );
    }

    #[test]
    fn poison_outbox_records() {
        assert!(decode_outbox(None, Some(PAYLOAD.as_bytes()), &[]).is_err());
        assert!(decode_outbox(
            None,
            Some(PAYLOAD.as_bytes()),
            &headers(b"e", b"OrderExploded")
        )
        .is_err());
        assert!(decode_outbox(None, Some(b"{"), &headers(b"e", b"OrderCreated")).is_err());
        assert!(decode_outbox(
            None,
            Some(br#"{"id":1,"status":"NEW","total":"1"}"#),
            &headers(b"e", b"OrderCreated")
        )
        .is_err());
        assert!(matches!(
            decode_outbox(None, None, &[]),
            Ok(Decoded::Tombstone)
        ));
    }
}
