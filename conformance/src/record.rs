//! One Kafka record as the conformance comparison sees it, and the recording format
//! (conformance/debezium/<scenario>.jsonl) it is read from.
//!
//! A recording holds one record a line; `partition` and `offset` are there for people and are
//! not compared. `key` and `value` are the JsonConverter's output parsed (`{"schema": ...,
//! "payload": ...}`), `null` for a null key (a table without primary key, a truncate) or a
//! tombstone's value:
//!
//! ```text
//! {"topic":"dbz.public.orders","partition":0,"offset":4,"headers":{"__debezium.context.taskId":"0"},
//!  "key":{"schema":{...},"payload":{"id":1001}},"value":{"schema":{...},"payload":{"op":"d",...}}}
//! {"topic":"dbz.public.orders","partition":0,"offset":5,"headers":{...},"key":{...},"value":null}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One Kafka record: where it went, and its key, value and headers as JSON.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// The full topic name, prefix included (`dbz.public.orders`, `dbz.message`).
    pub topic: String,
    /// The key as JSON; `Value::Null` for a null key.
    #[serde(default)]
    pub key: Value,
    /// The value as JSON; `Value::Null` for a tombstone.
    #[serde(default)]
    pub value: Value,
    /// Kafka headers, values as text.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What the comparison calls an operation: the envelope's `op` (`c`, `u`, `d`, `r`, `t`, `m`),
/// or `tombstone` for a record with a null value.
pub const TOMBSTONE: &str = "tombstone";

impl Record {
    /// The topic without `<prefix>.`: `public.orders`, or `message` for logical messages. A
    /// topic without that prefix stays whole (and so never pairs with the other side's).
    pub fn table(&self, prefix: &str) -> String {
        self.topic
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&self.topic)
            .to_owned()
    }

    /// The envelope's `op`, or [`TOMBSTONE`]; `?` when the value has no `op` at all.
    pub fn op(&self) -> String {
        if self.value.is_null() {
            return TOMBSTONE.to_owned();
        }
        payload(&self.value)
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    }

    /// The key's payload (the key columns) written canonically (object keys sorted), so two
    /// keys compare equal as text exactly when they are equal as JSON. `null` for a null key.
    pub fn key_text(&self) -> String {
        canonical_json(payload(&self.key))
    }

    /// [`Record::key_text`] with the topic prefix in the router's key field replaced by
    /// `<prefix>` (see [`without_prefix_in_key_field`]), so that routed keys of two connectors
    /// with different prefixes pair.
    pub fn key_text_without_prefix(&self, prefix: &str) -> String {
        canonical_json(payload(&without_prefix_in_key_field(&self.key, prefix)))
    }

    /// `source.lsn` of the change, when the value carries one (tombstones do not).
    pub fn source_lsn(&self) -> Option<i64> {
        payload(&self.value)
            .get("source")
            .and_then(|source| source.get("lsn"))
            .and_then(Value::as_i64)
    }
}

/// The `payload` of a JsonConverter envelope (`{"schema":..., "payload":...}`), or the value
/// itself when it has none (schemas.enable=false).
pub fn payload(value: &Value) -> &Value {
    match value.get("payload") {
        Some(payload) if value.get("schema").is_some() => payload,
        _ => value,
    }
}

/// JSON text with object keys sorted at every level, whatever order the map kept them in.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(name, value)| {
                    format!("{}:{}", Value::from(name.as_str()), canonical_json(value))
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// A recording that could not be read, with the line to look at.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error(
        "line {line} of the recording is not a record ({source}); each line must be one JSON \
         object with at least \"topic\" (re-record it with conformance/record)"
    )]
    BadLine {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a recording: one JSON record a line, blank lines skipped.
pub fn parse_recording(text: &str) -> Result<Vec<Record>, RecordingError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| RecordingError::BadLine {
                line: index + 1,
                source,
            })
        })
        .collect()
}

/// The key field ByLogicalTableRouter adds (`key.field.name`'s default): the original topic.
const PHYSICAL_TABLE_KEY_FIELD: &str = "__dbz__physicalTableIdentifier";

/// A copy of a key whose [`PHYSICAL_TABLE_KEY_FIELD`] (the topic before routing) no longer
/// carries the topic prefix: `dbz.public.orders` becomes `<prefix>.public.orders`.
pub(crate) fn without_prefix_in_key_field(key: &Value, prefix: &str) -> Value {
    let mut copy = key.clone();
    let payload = if copy.get("schema").is_some() {
        copy.get_mut("payload")
    } else {
        Some(&mut copy)
    };
    if let Some(Value::String(text)) =
        payload.and_then(|payload| payload.get_mut(PHYSICAL_TABLE_KEY_FIELD))
    {
        if let Some(rest) = text.strip_prefix(&format!("{prefix}.")) {
            *text = format!("<prefix>.{rest}");
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RECORDING: &str = r#"{"topic":"dbz.public.orders","partition":0,"offset":4,"headers":{"a":"b"},"key":{"schema":{"type":"struct"},"payload":{"id":1001}},"value":{"schema":{"type":"struct"},"payload":{"op":"d","source":{"lsn":58666952}}}}

{"topic":"dbz.public.orders","partition":0,"offset":5,"headers":{},"key":{"schema":{"type":"struct"},"payload":{"id":1001}},"value":null}
"#;

    #[test]
    fn reads_a_recording_with_its_tombstone() {
        let records = parse_recording(RECORDING).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].table("dbz"), "public.orders");
        assert_eq!(records[0].op(), "d");
        assert_eq!(records[0].key_text(), r#"{"id":1001}"#);
        assert_eq!(records[0].source_lsn(), Some(58666952));
        assert_eq!(records[0].headers.get("a").map(String::as_str), Some("b"));
        assert_eq!(records[1].op(), TOMBSTONE);
        assert_eq!(records[1].source_lsn(), None);
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = parse_recording("\n{\"topic\": 1}\n").unwrap_err();
        assert!(error.to_string().starts_with("line 2 "), "{error}");
    }

    #[test]
    fn table_strips_only_the_given_prefix() {
        let record = Record {
            topic: "dbz.message".into(),
            key: Value::Null,
            value: Value::Null,
            headers: BTreeMap::new(),
        };
        assert_eq!(record.table("dbz"), "message");
        assert_eq!(record.table("db"), "dbz.message");
        assert_eq!(record.key_text(), "null");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "é"}], "c": null}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":null,"d":[1,{"y":"é","z":0}]},"b":1}"#
        );
    }
}
