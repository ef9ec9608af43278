//! The Outbox Event Router: rows inserted into the outbox table become domain events.
//!
//! The producer writes its business rows and an `outbox_events` row in one transaction. Instead
//! of a change envelope for that row, the router emits the event the row describes, as
//! Debezium's `io.debezium.transforms.outbox.EventRouter` does with its default settings plus
//! `table.expand.json.payload=true` and `table.fields.additional.placement=type:header:eventType`:
//!
//! ```text
//! outbox_events row                                    Kafka record
//! id            7c9e...-uuid                       ->  header  id = 7c9e...-uuid
//! aggregatetype order                              ->  topic   outbox.event.order  (route.topic.replacement)
//! aggregateid   42                                 ->  key     "42"
//! type          OrderCreated                       ->  header  eventType = OrderCreated
//! payload       {"order_id": 42, ...} (jsonb)      ->  value   {"order_id": 42, ...}
//! ```
//!
//! Deletes of outbox rows are ignored (so a producer may insert and delete the row in the same
//! transaction, keeping the table empty while CDC still sees the insert); updates are logged
//! and ignored, as Debezium does. Key and value are written as plain JSON without the
//! JsonConverter schema wrapper (a documented difference, see the README).

use crate::pgoutput::{ColumnValue, Relation, TupleData};

/// How outbox rows are routed; defaults follow Debezium's EventRouter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// The outbox table, `schema.table`.
    pub table: String,
    /// `route.topic.replacement`: `${routedByValue}` is replaced by the routing column's value.
    pub topic_replacement: String,
    /// `route.by.field`.
    pub route_by_field: String,
    /// `table.field.event.id`.
    pub id_field: String,
    /// `table.field.event.key`.
    pub key_field: String,
    /// `table.field.event.payload`.
    pub payload_field: String,
    /// The column placed in the `eventType` header.
    pub type_field: String,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            table: "public.outbox_events".into(),
            topic_replacement: "outbox.event.${routedByValue}".into(),
            route_by_field: "aggregatetype".into(),
            id_field: "id".into(),
            key_field: "aggregateid".into(),
            payload_field: "payload".into(),
            type_field: "type".into(),
        }
    }
}

/// One routed event, ready for the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub topic: String,
    pub key: Vec<u8>,
    /// None when the payload column is NULL (a tombstone for that aggregate).
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why an outbox row could not be routed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboxError {
    #[error("outbox table {table} has no column {column} (set by the outbox router's settings)")]
    MissingColumn { table: String, column: String },
    #[error(
        "outbox row in {table}: column {column} is NULL or unavailable, but the router needs it"
    )]
    EmptyColumn { table: String, column: String },
    #[error("outbox row in {table}: payload is not valid JSON: {reason}")]
    BadPayload { table: String, reason: String },
}

impl OutboxConfig {
    /// Is `relation` the outbox table?
    pub fn matches(&self, relation: &Relation) -> bool {
        match self.table.split_once('.') {
            Some((schema, table)) => relation.schema() == schema && relation.name == table,
            None => relation.schema() == "public" && relation.name == self.table,
        }
    }

    /// Routes an inserted outbox row.
    pub fn route(&self, relation: &Relation, row: &TupleData) -> Result<OutboxEvent, OutboxError> {
        let table = format!("{}.{}", relation.schema(), relation.name);
        let column = |name: &str| -> Result<Option<&str>, OutboxError> {
            let index = relation
                .columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| OutboxError::MissingColumn {
                    table: table.clone(),
                    column: name.to_string(),
                })?;
            Ok(match row.columns.get(index) {
                Some(ColumnValue::Text(text)) => Some(text.as_str()),
                _ => None,
            })
        };
        let required = |name: &str| -> Result<&str, OutboxError> {
            column(name)?.ok_or_else(|| OutboxError::EmptyColumn {
                table: table.clone(),
                column: name.to_string(),
            })
        };
        let routed_by = required(&self.route_by_field)?;
        let key = required(&self.key_field)?;
        let id = required(&self.id_field)?;
        let event_type = required(&self.type_field)?;
        let value = match column(&self.payload_field)? {
            None => None,
            Some(payload) => {
                // jsonb arrives as its text form; check it and write it compactly.
                let parsed: serde_json::Value =
                    serde_json::from_str(payload).map_err(|e| OutboxError::BadPayload {
                        table: table.clone(),
                        reason: e.to_string(),
                    })?;
                Some(serde_json::to_vec(&parsed).unwrap_or_else(|_| payload.as_bytes().to_vec()))
            }
        };
        Ok(OutboxEvent {
            topic: self
                .topic_replacement
                .replace("${routedByValue}", routed_by),
            key: serde_json::to_vec(key).unwrap_or_default(),
            value,
            headers: vec![
                ("id".into(), id.as_bytes().to_vec()),
                ("eventType".into(), event_type.as_bytes().to_vec()),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::{Column, PgText, ReplicaIdentity};

    fn outbox_relation() -> Relation {
        let column = |name: &str, type_oid: u32| Column {
            flags: u8::from(name == "id"),
            name: name.into(),
            type_oid,
            type_modifier: -1,
        };
        Relation {
            id: 16400,
            namespace: "public".into(),
            name: "outbox_events".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                column("id", 2950),
                column("aggregatetype", 25),
                column("aggregateid", 25),
                column("type", 25),
                column("payload", 3802),
                column("created_at", 1184),
            ],
        }
    }

    fn text(value: &str) -> ColumnValue {
        ColumnValue::Text(PgText::new(bytes::Bytes::copy_from_slice(value.as_bytes())).unwrap())
    }

    fn row(payload: ColumnValue) -> TupleData {
        TupleData {
            columns: vec![
                text("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
                text("order"),
                text("42"),
                text("OrderCreated"),
                payload,
                text("2026-11-23 10:00:00+00"),
            ],
        }
    }

    #[test]
    fn an_inserted_row_becomes_an_event_on_the_aggregate_topic() {
        let config = OutboxConfig::default();
        let relation = outbox_relation();
        assert!(config.matches(&relation));
        let event = config
            .route(
                &relation,
                &row(text(r#"{"order_id": 42, "total": "12.30"}"#)),
            )
            .unwrap();
        assert_eq!(event.topic, "outbox.event.order");
        assert_eq!(event.key, br#""42""#);
        assert_eq!(
            event.value.as_deref(),
            Some(br#"{"order_id":42,"total":"12.30"}"#.as_slice())
        );
        assert_eq!(
            event.headers,
            vec![
                (
                    "id".to_string(),
                    b"7c9e6679-7425-40de-944b-e07fc1f90ae7".to_vec()
                ),
                ("eventType".to_string(), b"OrderCreated".to_vec())
            ]
        );
    }

    #[test]
    fn topic_replacement_is_configurable_and_bad_rows_are_errors() {
        let config = OutboxConfig {
            topic_replacement: "events.${routedByValue}.v1".into(),
            ..OutboxConfig::default()
        };
        let relation = outbox_relation();
        assert_eq!(
            config
                .route(&relation, &row(ColumnValue::Null))
                .unwrap()
                .topic,
            "events.order.v1"
        );
        assert_eq!(
            config
                .route(&relation, &row(ColumnValue::Null))
                .unwrap()
                .value,
            None
        );
        assert!(matches!(
            config.route(&relation, &row(text("{oops"))),
            Err(OutboxError::BadPayload { .. })
        ));
        let missing = OutboxConfig {
            key_field: "nope".into(),
            ..OutboxConfig::default()
        };
        assert!(matches!(
            missing.route(&relation, &row(ColumnValue::Null)),
            Err(OutboxError::MissingColumn { .. })
        ));
    }
}
