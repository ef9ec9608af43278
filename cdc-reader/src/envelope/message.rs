//! Logical decoding messages (`pg_logical_emit_message`) as Debezium message events (`op: "m"`).
//!
//! They go to `<prefix>.message`, keyed by the message prefix, with the content as bytes:
//!
//! ```text
//! key    {"prefix":"audit"}
//! value  {"op":"m","ts_ms":1559033904961,"source":{.."schema":"","table":""..},"transaction":null,
//!         "message":{"prefix":"audit","content":"Ymfy"}}
//! ```
//!
//! (shown without the schema halves). Unlike row events there is no `before`/`after`, and no
//! `ts_us`/`ts_ns`. A non-transactional message has no `txId`; pgoutput gives it no commit time
//! either, and Debezium leaves `source.ts_ms` at the last transaction's commit time (pass that
//! in `commit_time_us`).

use std::sync::Arc;

use super::builder::{EnvelopeRecord, ProcessingTime};
use super::config::EnvelopeConfig;
use super::error::EnvelopeError;
use super::json;
use super::schema::ConnectSchema;
use super::source::{
    source_schema, transaction_schema, write_transaction, SourcePosition, SourceTemplate,
};

/// One message event (builds the schemas each time: messages are rare; keep a
/// [`LogicalMessageEnvelopeBuilder`] when they are not).
pub fn logical_message(
    config: &EnvelopeConfig,
    transactional: bool,
    prefix: &str,
    content: &[u8],
    source: &SourcePosition,
    processed: ProcessingTime,
) -> Result<EnvelopeRecord, EnvelopeError> {
    Ok(LogicalMessageEnvelopeBuilder::new(config).message(
        transactional,
        prefix,
        content,
        source,
        processed,
    ))
}

/// Builds message events; one per connector.
#[derive(Debug, Clone)]
pub struct LogicalMessageEnvelopeBuilder {
    topic: Arc<str>,
    key_schema_json: String,
    value_schema_json: String,
    source: SourceTemplate,
    schemas_enabled: bool,
}

impl LogicalMessageEnvelopeBuilder {
    pub fn new(config: &EnvelopeConfig) -> Self {
        let optional_string = || ConnectSchema::primitive("string").optional();
        let key = ConnectSchema::structure(
            Some("io.debezium.connector.postgresql.MessageKey".into()),
            vec![("prefix".into(), optional_string())],
        )
        .with_version(1);
        let block = ConnectSchema::structure(
            Some("io.debezium.connector.postgresql.Message".into()),
            vec![
                ("prefix".into(), optional_string()),
                (
                    "content".into(),
                    ConnectSchema::primitive("bytes").optional(),
                ),
            ],
        )
        .with_version(1);
        let value = ConnectSchema::structure(
            Some("io.debezium.connector.postgresql.MessageValue".into()),
            vec![
                ("op".into(), ConnectSchema::primitive("string")),
                ("ts_ms".into(), ConnectSchema::primitive("int64").optional()),
                ("source".into(), source_schema()),
                ("transaction".into(), transaction_schema()),
                ("message".into(), block),
            ],
        )
        .with_version(1);
        LogicalMessageEnvelopeBuilder {
            topic: Arc::from(format!("{}.message", config.topic_prefix)),
            key_schema_json: key.to_json(),
            value_schema_json: value.to_json(),
            source: SourceTemplate::new(
                &config.source_version,
                &config.topic_prefix,
                &config.database,
                "",
                "",
                config.replace_null_with_default,
            ),
            schemas_enabled: config.schemas_enabled,
        }
    }

    /// The topic, `<prefix>.message`.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// One message event.
    pub fn message(
        &self,
        transactional: bool,
        prefix: &str,
        content: &[u8],
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> EnvelopeRecord {
        let mut key = Vec::with_capacity(self.key_schema_json.len() + prefix.len() + 40);
        self.open(&mut key, &self.key_schema_json);
        key.extend_from_slice(b"{\"prefix\":");
        json::write_str(&mut key, prefix);
        key.push(b'}');
        self.close(&mut key);

        let mut value = Vec::with_capacity(self.value_schema_json.len() + content.len() * 2 + 600);
        self.open(&mut value, &self.value_schema_json);
        value.extend_from_slice(b"{\"op\":\"m\",\"ts_ms\":");
        json::write_i64(&mut value, processed.unix_nanos().div_euclid(1_000_000));
        value.extend_from_slice(b",\"source\":");
        if transactional {
            self.source.write(source, &mut value);
        } else {
            self.source.write(
                &SourcePosition {
                    tx_id: None,
                    ..source.clone()
                },
                &mut value,
            );
        }
        value.extend_from_slice(b",\"transaction\":");
        write_transaction(source.transaction.as_ref(), &mut value);
        value.extend_from_slice(b",\"message\":{\"prefix\":");
        json::write_str(&mut value, prefix);
        value.extend_from_slice(b",\"content\":");
        json::write_base64(&mut value, content);
        value.extend_from_slice(b"}}");
        self.close(&mut value);
        EnvelopeRecord {
            topic: self.topic.clone(),
            key: Some(key),
            value: Some(value),
            unconvertible: Vec::new(),
        }
    }

    fn open(&self, out: &mut Vec<u8>, schema: &str) {
        if self.schemas_enabled {
            out.extend_from_slice(b"{\"schema\":");
            out.extend_from_slice(schema.as_bytes());
            out.extend_from_slice(b",\"payload\":");
        }
    }

    fn close(&self, out: &mut Vec<u8>) {
        if self.schemas_enabled {
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_event_payload() {
        let config = EnvelopeConfig {
            schemas_enabled: false,
            topic_prefix: "dbz".into(),
            ..EnvelopeConfig::default()
        };
        let builder = LogicalMessageEnvelopeBuilder::new(&config);
        let source = SourcePosition {
            lsn: Some(46_523_128),
            tx_id: Some(556),
            commit_time_us: 1_559_033_904_863_000,
            ..Default::default()
        };
        let processed = ProcessingTime::from_unix_nanos(1_559_033_904_961_000_000);
        let record = builder.message(true, "foo", b"bar", &source, processed);
        assert_eq!(&*record.topic, "dbz.message");
        assert_eq!(
            String::from_utf8(record.key.unwrap()).unwrap(),
            r#"{"prefix":"foo"}"#
        );
        let value = String::from_utf8(record.value.unwrap()).unwrap();
        assert!(
            value.starts_with(r#"{"op":"m","ts_ms":1559033904961,"source":{"version":"#),
            "{value}"
        );
        assert!(
            value.contains(r#""schema":"","table":"","txId":556"#),
            "{value}"
        );
        assert!(
            value.ends_with(r#""transaction":null,"message":{"prefix":"foo","content":"YmFy"}}"#),
            "{value}"
        );
    }
}
