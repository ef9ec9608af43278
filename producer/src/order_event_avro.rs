//! `--direct-publish --format avro`: the application's own event schema, `OrderEvent`, and each
//! event as an Avro datum (pure: values in, bytes out; the registry call is in
//! [`crate::direct_publish`]).
//!
//! This is the other way Avro reaches Kafka. cdc-reader derives its schemas from the tables
//! (Kafka Connect's `AvroData` rules, one schema per table version); an application that
//! publishes its own events writes its schema by hand, registers it once when it starts
//! (subject `<topic>-value`, TopicNameStrategy) and puts the 5-byte header in front of each datum:
//!
//! ```text
//! start:  POST <registry>/subjects/outbox.events-value/versions  {"schema": SCHEMA}  -> id 7
//! event:  key "42" (text, as in JSON mode)   headers id=<uuid>, eventType=OrderCreated
//!         value 00 00000007 <datum: order_id, customer_id, status, total, ..., previous_status>
//! ```
//!
//! The fields are the outbox payload's, name for name (see [`crate::outbox`]), so a reader that
//! knows the JSON event reads the decoded datum unchanged (`consumer --from outbox` does). Two
//! choices, on purpose:
//! - **Timestamps are plain `long`s: microseconds since 1970-01-01 UTC** (the `doc` says so), no
//!   `timestamp-millis`/`timestamp-micros` logical type. PostgreSQL keeps microseconds, which
//!   `timestamp-millis` would cut; and sinks that map a field to a `bigint` column (a JDBC sink,
//!   our table-sink) get a number, not a logical timestamp they must convert or trip over.
//!   Debezium writes its `MicroTimestamp` the same way (a `long` with only a `connect.name`).
//! - **Money stays decimal text** (`"12.30"`), as in the JSON payload: Avro's `decimal` is bytes
//!   that a reader without the logical type sees as opaque, and the text is exact either way.
//!
//! `status` is a string, not an Avro enum: a new status would otherwise be a schema change that
//! old readers cannot read.

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde::Deserialize;

/// The Avro schema of the events `--direct-publish --format avro` writes.
pub const SCHEMA: &str = r#"{
  "type": "record",
  "name": "OrderEvent",
  "namespace": "io.pgcdc.playground.producer",
  "doc": "An order after a change, published by the producer after its commit (--direct-publish). The fields of the outbox payload; the event id and type are in the record headers.",
  "fields": [
    {"name": "order_id", "type": "long"},
    {"name": "customer_id", "type": "long"},
    {"name": "status", "type": "string", "doc": "NEW, PAID, SHIPPED or CANCELLED"},
    {"name": "total", "type": "string", "doc": "decimal text with two decimals, e.g. 12.30"},
    {"name": "currency", "type": "string"},
    {"name": "items", "type": {"type": "array", "items": {
      "type": "record",
      "name": "OrderItem",
      "fields": [
        {"name": "line_no", "type": "int"},
        {"name": "sku", "type": "string"},
        {"name": "quantity", "type": "int"},
        {"name": "unit_price", "type": "string", "doc": "decimal text with two decimals"}
      ]
    }}},
    {"name": "created_at", "type": "long", "doc": "microseconds since 1970-01-01T00:00:00Z"},
    {"name": "updated_at", "type": "long", "doc": "microseconds since 1970-01-01T00:00:00Z"},
    {"name": "previous_status", "type": ["null", "string"], "default": null, "doc": "the status before a status change"}
  ]
}"#;

/// Why an event did not become a datum (the payload is the producer's own JSON: a bug, not input).
#[derive(Debug, thiserror::Error)]
pub enum AvroEventError {
    #[error("the OrderEvent schema does not parse: {0}")]
    Schema(String),
    #[error("the event payload is not an order event: {0}")]
    Payload(String),
    #[error("`{field}` = `{text}` is not an RFC 3339 timestamp: {reason}")]
    Timestamp {
        field: &'static str,
        text: String,
        reason: String,
    },
    #[error("the datum does not fit the OrderEvent schema: {0}")]
    Encode(String),
}

/// [`SCHEMA`], parsed.
pub fn schema() -> Result<Schema, AvroEventError> {
    Schema::parse_str(SCHEMA).map_err(|e| AvroEventError::Schema(e.to_string()))
}

/// The outbox payload, as [`crate::outbox`] writes it.
#[derive(Deserialize)]
struct Payload {
    order_id: i64,
    customer_id: i64,
    status: String,
    total: String,
    currency: String,
    items: Vec<Item>,
    created_at: String,
    updated_at: String,
    previous_status: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    line_no: i32,
    sku: String,
    quantity: i32,
    unit_price: String,
}

/// The Avro datum (no header) of an event's JSON payload, under `schema` (= [`schema()`]).
pub fn datum(schema: &Schema, payload_json: &str) -> Result<Vec<u8>, AvroEventError> {
    let payload: Payload =
        serde_json::from_str(payload_json).map_err(|e| AvroEventError::Payload(e.to_string()))?;
    let items = payload
        .items
        .into_iter()
        .map(|item| {
            Avro::Record(vec![
                ("line_no".into(), Avro::Int(item.line_no)),
                ("sku".into(), Avro::String(item.sku)),
                ("quantity".into(), Avro::Int(item.quantity)),
                ("unit_price".into(), Avro::String(item.unit_price)),
            ])
        })
        .collect();
    let previous_status = match payload.previous_status {
        None => Avro::Union(0, Box::new(Avro::Null)),
        Some(status) => Avro::Union(1, Box::new(Avro::String(status))),
    };
    let value = Avro::Record(vec![
        ("order_id".into(), Avro::Long(payload.order_id)),
        ("customer_id".into(), Avro::Long(payload.customer_id)),
        ("status".into(), Avro::String(payload.status)),
        ("total".into(), Avro::String(payload.total)),
        ("currency".into(), Avro::String(payload.currency)),
        ("items".into(), Avro::Array(items)),
        (
            "created_at".into(),
            Avro::Long(epoch_micros("created_at", &payload.created_at)?),
        ),
        (
            "updated_at".into(),
            Avro::Long(epoch_micros("updated_at", &payload.updated_at)?),
        ),
        ("previous_status".into(), previous_status),
    ]);
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value_to_vec(value))
        .map_err(|e| AvroEventError::Encode(e.to_string()))
}

/// `2026-11-23T15:40:00.123456Z` -> microseconds since the epoch.
fn epoch_micros(field: &'static str, text: &str) -> Result<i64, AvroEventError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|e| AvroEventError::Timestamp {
            field,
            text: text.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;
    use crate::outbox::{EventType, OutboxEvent};
    use schema_registry::client::WriterSchema;
    use serde_json::json;

    fn event(previous: Option<OrderStatus>) -> OutboxEvent {
        OutboxEvent::for_order(
            uuid::Uuid::nil(),
            EventType::OrderStatusChanged,
            &crate::outbox::sample_order(),
            previous,
        )
    }

    fn read_back(bytes: &[u8]) -> serde_json::Value {
        let writer = WriterSchema::new(1, SCHEMA.to_string(), schema().unwrap());
        schema_registry::decoder::decode_datum(&writer, bytes).unwrap()
    }

    #[test]
    fn the_datum_reads_back_as_the_json_payload_with_timestamps_in_microseconds() {
        let schema = schema().unwrap();
        let bytes = datum(&schema, &event(Some(OrderStatus::New)).payload).unwrap();
        assert_eq!(
            read_back(&bytes),
            json!({"order_id":42,"customer_id":7,"status":"PAID","total":"12.30","currency":"EUR",
                   "items":[{"line_no":1,"sku":"SKU-0042","quantity":3,"unit_price":"4.10"}],
                   "created_at":1_795_448_400_123_456_i64,"updated_at":1_795_448_460_000_001_i64,
                   "previous_status":"NEW"})
        );
    }

    #[test]
    fn the_datum_is_the_56_bytes_the_readme_shows() {
        let schema = schema().unwrap();
        let bytes = datum(&schema, &event(Some(OrderStatus::New)).payload).unwrap();
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "54 0e 08 50 41 49 44 0a 31 32 2e 33 30 06 45 55 52 02 02 10 53 4b 55 2d 30 30 34 32 \
             06 08 34 2e 31 30 00 80 d9 d0 81 ed bc b0 06 82 ec dd ba ed bc b0 06 02 06 4e 45 57"
        );
    }

    #[test]
    fn an_event_without_a_previous_status_has_null_there() {
        let schema = schema().unwrap();
        let bytes = datum(&schema, &event(None).payload).unwrap();
        assert_eq!(read_back(&bytes)["previous_status"], json!(null));
    }

    #[test]
    fn the_schema_uses_plain_longs_for_time_and_no_logical_types() {
        let text: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let fields = text["fields"].as_array().unwrap();
        let created = fields.iter().find(|f| f["name"] == "created_at").unwrap();
        assert_eq!(created["type"], json!("long"));
        assert!(!SCHEMA.contains("logicalType"));
    }

    #[test]
    fn a_payload_that_is_not_an_order_event_is_an_error_not_a_panic() {
        let schema = schema().unwrap();
        assert!(matches!(
            datum(&schema, r#"{"order_id":"x"}"#),
            Err(AvroEventError::Payload(_))
        ));
    }
}
