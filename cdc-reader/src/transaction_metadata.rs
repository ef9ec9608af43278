//! Transaction metadata (`--provide-transaction-metadata`): BEGIN and END records on
//! `<prefix>.transaction`, and the `transaction` block in every change event.
//!
//! Debezium's `provide.transaction.metadata=true`, for consumers that want to see transaction
//! boundaries (e.g. to apply a whole transaction at once):
//!
//! ```text
//! topic dbserver1.transaction, key {"id":"771:22910216"}
//! {"status":"BEGIN","id":"771:22910216","event_count":null,"data_collections":null,"ts_ms":1732370000000}
//!   ... the transaction's change events, each with
//!       "transaction":{"id":"771:22910504","total_order":1,"data_collection_order":1}
//! {"status":"END","id":"771:22911032","event_count":2,
//!  "data_collections":[{"data_collection":"public.orders","event_count":1},
//!                      {"data_collection":"public.order_items","event_count":1}],"ts_ms":1732370000000}
//! ```
//!
//! As in Debezium's PostgresTransactionMonitor, the id is `<xid>:<LSN of the message at hand>`,
//! so BEGIN, each event and END carry different ids for one transaction; `ts_ms` is the
//! commit time. Written as JsonConverter would (field order, schemas with versions).

use crate::lsn::Lsn;

/// Counts of one transaction's events, total and per table, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionCounts {
    pub total: i64,
    pub per_table: Vec<(String, i64)>,
}

impl TransactionCounts {
    /// Counts one event of `table`; returns (total_order, data_collection_order).
    pub fn count(&mut self, table: &str) -> (i64, i64) {
        self.total += 1;
        let position = match self.per_table.iter_mut().find(|(name, _)| name == table) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                self.per_table.push((table.to_string(), 1));
                1
            }
        };
        (self.total, position)
    }
}

/// The id Debezium gives a transaction at a message: `<xid>:<lsn as a number>`.
pub fn transaction_id(xid: u32, lsn: Lsn) -> String {
    format!("{xid}:{}", lsn.0)
}

/// The topic (Debezium's default `topic.transaction`).
pub fn transaction_topic(prefix: &str) -> String {
    format!("{prefix}.transaction")
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

const KEY_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey","version":1}"#;

const VALUE_SCHEMA: &str = concat!(
    r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},"#,
    r#"{"type":"string","optional":false,"field":"id"},"#,
    r#"{"type":"int64","optional":true,"field":"event_count"},"#,
    r#"{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"data_collection"},"#,
    r#"{"type":"int64","optional":false,"field":"event_count"}],"optional":true,"name":"event.collection","version":1},"#,
    r#""optional":true,"field":"data_collections"},"#,
    r#"{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"#,
    r#""name":"io.debezium.connector.common.TransactionMetadataValue","version":1}"#
);

fn wrap(schema: &str, payload: String, schemas_enabled: bool) -> Vec<u8> {
    if schemas_enabled {
        format!(r#"{{"schema":{schema},"payload":{payload}}}"#).into_bytes()
    } else {
        payload.into_bytes()
    }
}

/// The key of a BEGIN or END record.
pub fn key(id: &str, schemas_enabled: bool) -> Vec<u8> {
    wrap(
        KEY_SCHEMA,
        format!(r#"{{"id":{}}}"#, json_string(id)),
        schemas_enabled,
    )
}

/// The value of a BEGIN record.
pub fn begin_value(id: &str, ts_ms: i64, schemas_enabled: bool) -> Vec<u8> {
    let payload = format!(
        r#"{{"status":"BEGIN","id":{},"event_count":null,"data_collections":null,"ts_ms":{ts_ms}}}"#,
        json_string(id)
    );
    wrap(VALUE_SCHEMA, payload, schemas_enabled)
}

/// The value of an END record.
pub fn end_value(
    id: &str,
    ts_ms: i64,
    counts: &TransactionCounts,
    schemas_enabled: bool,
) -> Vec<u8> {
    let collections: Vec<String> = counts
        .per_table
        .iter()
        .map(|(table, count)| {
            format!(
                r#"{{"data_collection":{},"event_count":{count}}}"#,
                json_string(table)
            )
        })
        .collect();
    let payload = format!(
        r#"{{"status":"END","id":{},"event_count":{},"data_collections":[{}],"ts_ms":{ts_ms}}}"#,
        json_string(id),
        counts.total,
        collections.join(",")
    );
    wrap(VALUE_SCHEMA, payload, schemas_enabled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_total_and_per_table_order() {
        let mut counts = TransactionCounts::default();
        assert_eq!(counts.count("public.orders"), (1, 1));
        assert_eq!(counts.count("public.order_items"), (2, 1));
        assert_eq!(counts.count("public.order_items"), (3, 2));
        assert_eq!(
            counts.per_table,
            vec![
                ("public.orders".into(), 1),
                ("public.order_items".into(), 2)
            ]
        );
    }

    #[test]
    fn begin_and_end_match_debeziums_documented_shape() {
        assert_eq!(transaction_id(571, Lsn(53_195_829)), "571:53195829");
        let begin: serde_json::Value =
            serde_json::from_slice(&begin_value("571:53195829", 1_486_500_577_125, true)).unwrap();
        assert_eq!(
            begin["payload"],
            json!({"status": "BEGIN", "id": "571:53195829", "event_count": null, "data_collections": null, "ts_ms": 1_486_500_577_125_i64})
        );
        assert_eq!(
            begin["schema"]["name"],
            json!("io.debezium.connector.common.TransactionMetadataValue")
        );
        let counts = TransactionCounts {
            total: 2,
            per_table: vec![("s1.a".into(), 1), ("s2.a".into(), 1)],
        };
        let end: serde_json::Value = serde_json::from_slice(&end_value(
            "571:53195832",
            1_486_500_577_691,
            &counts,
            false,
        ))
        .unwrap();
        assert_eq!(
            end,
            json!({"status": "END", "id": "571:53195832", "event_count": 2, "data_collections": [
                {"data_collection": "s1.a", "event_count": 1}, {"data_collection": "s2.a", "event_count": 1}
            ], "ts_ms": 1_486_500_577_691_i64})
        );
        let key: serde_json::Value = serde_json::from_slice(&key("571:53195829", true)).unwrap();
        assert_eq!(key["payload"], json!({"id": "571:53195829"}));
        assert_eq!(
            key["schema"]["name"],
            json!("io.debezium.connector.common.TransactionMetadataKey")
        );
    }
}
