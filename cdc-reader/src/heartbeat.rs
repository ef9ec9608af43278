//! Heartbeat records: proof of life on `__debezium-heartbeat.<prefix>`.
//!
//! With `--heartbeat-interval`, the reader writes a record every interval, as Debezium does
//! with `heartbeat.interval.ms`, so consumers (and lag dashboards) can tell "no changes" from
//! "reader down". Key and value, in the JsonConverter form:
//!
//! ```text
//! key   {"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"serverName"}],
//!        "optional":false,"name":"io.debezium.connector.common.ServerNameKey"},"payload":{"serverName":"dbserver1"}}
//! value {"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],
//!        "optional":false,"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1732370000000}}
//! ```
//!
//! Keeping the slot from pinning WAL on an idle database is done elsewhere (the stream loop
//! confirms the server's WAL end from keepalives when nothing is in flight); heartbeats add the
//! record, and `--heartbeat-action-query` writes to the database for setups where the captured
//! database itself is idle while others are busy.

use serde_json::json;

/// The heartbeat topic for a topic prefix (Debezium's default `topic.heartbeat.prefix`).
pub fn heartbeat_topic(prefix: &str) -> String {
    format!("__debezium-heartbeat.{prefix}")
}

/// The heartbeat record's key and value as JSON bytes.
pub fn heartbeat_record(prefix: &str, ts_ms: i64, schemas_enabled: bool) -> (Vec<u8>, Vec<u8>) {
    let key_payload = json!({ "serverName": prefix });
    let value_payload = json!({ "ts_ms": ts_ms });
    if !schemas_enabled {
        return (
            key_payload.to_string().into_bytes(),
            value_payload.to_string().into_bytes(),
        );
    }
    let key = json!({
        "schema": {
            "type": "struct",
            "fields": [{"type": "string", "optional": false, "field": "serverName"}],
            "optional": false,
            "name": "io.debezium.connector.common.ServerNameKey"
        },
        "payload": key_payload
    });
    let value = json!({
        "schema": {
            "type": "struct",
            "fields": [{"type": "int64", "optional": false, "field": "ts_ms"}],
            "optional": false,
            "name": "io.debezium.connector.common.Heartbeat"
        },
        "payload": value_payload
    });
    (key.to_string().into_bytes(), value.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_matches_debeziums_shape() {
        assert_eq!(
            heartbeat_topic("dbserver1"),
            "__debezium-heartbeat.dbserver1"
        );
        let (key, value) = heartbeat_record("dbserver1", 1_732_370_000_000, true);
        let key: serde_json::Value = serde_json::from_slice(&key).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&value).unwrap();
        assert_eq!(key["payload"], json!({"serverName": "dbserver1"}));
        assert_eq!(
            key["schema"]["name"],
            json!("io.debezium.connector.common.ServerNameKey")
        );
        assert_eq!(value["payload"], json!({"ts_ms": 1_732_370_000_000_i64}));
        assert_eq!(
            value["schema"]["name"],
            json!("io.debezium.connector.common.Heartbeat")
        );
        let (key, value) = heartbeat_record("p", 5, false);
        assert_eq!(key, br#"{"serverName":"p"}"#);
        assert_eq!(value, br#"{"ts_ms":5}"#);
    }
}
