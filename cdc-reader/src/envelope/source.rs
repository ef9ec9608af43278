//! The `source` block: where in PostgreSQL an event came from.
//!
//! ```text
//! "source":{"version":"3.6.1.Final","connector":"postgresql","name":"dbz","ts_ms":1795448502853,
//!           "snapshot":"false","db":"playground","sequence":"[null,\"63133992\"]",
//!           "ts_us":1795448502853745,"ts_ns":1795448502853745000,"schema":"public",
//!           "table":"orders","txId":813,"lsn":63133992,"xmin":null,"origin":null,"origin_lsn":null}
//! ```
//!
//! `ts_*` is the commit time of the transaction (from pgoutput's Begin), `lsn` the WAL position
//! of the change, `sequence` a JSON array *as a string* holding the LSN of the last committed
//! transaction the connector had seen and the change's LSN (either may be null).

use super::json;
use super::schema::ConnectSchema;

/// Debezium's `SnapshotRecord`: whether (and where in) a snapshot an event was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMarker {
    True,
    First,
    FirstInDataCollection,
    LastInDataCollection,
    Last,
    /// Streaming (not a snapshot): the default.
    #[default]
    False,
    Incremental,
}

impl SnapshotMarker {
    /// The value written in `source.snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMarker::True => "true",
            SnapshotMarker::First => "first",
            SnapshotMarker::FirstInDataCollection => "first_in_data_collection",
            SnapshotMarker::LastInDataCollection => "last_in_data_collection",
            SnapshotMarker::Last => "last",
            SnapshotMarker::False => "false",
            SnapshotMarker::Incremental => "incremental",
        }
    }
}

/// Where an event came from: the per-event half of the `source` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePosition {
    /// The change's WAL position (`source.lsn`).
    pub lsn: Option<u64>,
    /// The end LSN of the last transaction committed before this one, as far as the reader
    /// knows (first element of `source.sequence`; null right after start).
    pub last_commit_lsn: Option<u64>,
    /// The transaction id (`source.txId`).
    pub tx_id: Option<u32>,
    /// Commit time of the transaction, microseconds since the Unix epoch (`source.ts_*`).
    pub commit_time_us: i64,
    pub snapshot: SnapshotMarker,
    /// The slot's xmin, when the reader tracks it (Debezium: `xmin.fetch.interval.ms` > 0).
    pub xmin: Option<i64>,
    /// Replication origin of the transaction, if it had one.
    pub origin: Option<String>,
    pub origin_lsn: Option<u64>,
    /// The event's `transaction` block, when transaction metadata is on (Debezium's
    /// `provide.transaction.metadata`); None writes `"transaction":null`.
    pub transaction: Option<TransactionBlock>,
}

/// The optional `transaction` block (Debezium's `provide.transaction.metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionBlock {
    /// `"<txId>:<lsn>"`.
    pub id: String,
    /// Position of the event among all events of the transaction (from 1).
    pub total_order: i64,
    /// Position of the event among the transaction's events for this table (from 1).
    pub data_collection_order: i64,
}

/// The snapshot field's allowed values, in Debezium's order.
const SNAPSHOT_ALLOWED: &str =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

/// `io.debezium.connector.postgresql.Source`.
pub(crate) fn source_schema() -> ConnectSchema {
    let string = || ConnectSchema::primitive("string");
    let int64 = || ConnectSchema::primitive("int64");
    let mut snapshot = ConnectSchema::logical("string", "io.debezium.data.Enum")
        .with_parameter("allowed", SNAPSHOT_ALLOWED.to_string())
        .optional();
    snapshot.default_json = Some("\"false\"".to_string());
    let fields = vec![
        ("version", string()),
        ("connector", string()),
        ("name", string()),
        ("ts_ms", int64()),
        ("snapshot", snapshot),
        ("db", string()),
        ("sequence", string().optional()),
        ("ts_us", int64().optional()),
        ("ts_ns", int64().optional()),
        ("schema", string()),
        ("table", string()),
        ("txId", int64().optional()),
        ("lsn", int64().optional()),
        ("xmin", int64().optional()),
        ("origin", string().optional()),
        ("origin_lsn", int64().optional()),
    ];
    ConnectSchema::structure(
        Some("io.debezium.connector.postgresql.Source".into()),
        fields
            .into_iter()
            .map(|(name, schema)| (name.to_string(), schema))
            .collect(),
    )
    .with_version(1)
}

/// `event.block`, the schema of the `transaction` field.
pub(crate) fn transaction_schema() -> ConnectSchema {
    ConnectSchema::structure(
        Some("event.block".into()),
        vec![
            ("id".into(), ConnectSchema::primitive("string")),
            ("total_order".into(), ConnectSchema::primitive("int64")),
            (
                "data_collection_order".into(),
                ConnectSchema::primitive("int64"),
            ),
        ],
    )
    .optional()
    .with_version(1)
}

/// The constant parts of a table's `source` block, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct SourceTemplate {
    /// `{"version":"..","connector":"postgresql","name":"..","ts_ms":`
    head: Vec<u8>,
    /// `,"db":".."`
    db: Vec<u8>,
    /// `,"schema":"..","table":".."`
    schema_table: Vec<u8>,
    replace_null_with_default: bool,
}

impl SourceTemplate {
    pub fn new(
        version: &str,
        prefix: &str,
        database: &str,
        schema: &str,
        table: &str,
        replace_null: bool,
    ) -> Self {
        let mut head = b"{\"version\":".to_vec();
        json::write_str(&mut head, version);
        head.extend_from_slice(b",\"connector\":\"postgresql\",\"name\":");
        json::write_str(&mut head, prefix);
        head.extend_from_slice(b",\"ts_ms\":");
        let mut db = b",\"db\":".to_vec();
        json::write_str(&mut db, database);
        let mut schema_table = b",\"schema\":".to_vec();
        json::write_str(&mut schema_table, schema);
        schema_table.extend_from_slice(b",\"table\":");
        json::write_str(&mut schema_table, table);
        SourceTemplate {
            head,
            db,
            schema_table,
            replace_null_with_default: replace_null,
        }
    }

    /// Appends the `source` block of one event.
    pub fn write(&self, position: &SourcePosition, out: &mut Vec<u8>) {
        let micros = position.commit_time_us;
        out.extend_from_slice(&self.head);
        json::write_i64(out, micros.div_euclid(1000));
        out.extend_from_slice(b",\"snapshot\":");
        match position.snapshot {
            // Debezium leaves the field unset when streaming; JsonConverter then writes the
            // schema default "false" (or null without replace.null.with.default).
            SnapshotMarker::False if !self.replace_null_with_default => {
                out.extend_from_slice(b"null")
            }
            marker => json::write_str(out, marker.as_str()),
        }
        out.extend_from_slice(&self.db);
        // A JSON array inside a JSON string: "[\"63135296\",\"63135464\"]".
        out.extend_from_slice(b",\"sequence\":\"[");
        for (index, lsn) in [position.last_commit_lsn, position.lsn]
            .into_iter()
            .enumerate()
        {
            if index > 0 {
                out.push(b',');
            }
            match lsn {
                Some(lsn) => {
                    out.extend_from_slice(b"\\\"");
                    json::write_u64(out, lsn);
                    out.extend_from_slice(b"\\\"");
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"]\"");
        out.extend_from_slice(b",\"ts_us\":");
        json::write_i64(out, micros);
        out.extend_from_slice(b",\"ts_ns\":");
        json::write_i64(out, micros.saturating_mul(1000));
        out.extend_from_slice(&self.schema_table);
        // An incremental snapshot's events carry no txId/lsn/xmin.
        let streaming = position.snapshot != SnapshotMarker::Incremental;
        out.extend_from_slice(b",\"txId\":");
        write_optional_u64(out, position.tx_id.map(u64::from).filter(|_| streaming));
        out.extend_from_slice(b",\"lsn\":");
        write_optional_u64(out, position.lsn.filter(|_| streaming));
        out.extend_from_slice(b",\"xmin\":");
        match position.xmin.filter(|_| streaming) {
            Some(xmin) => json::write_i64(out, xmin),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"origin\":");
        match &position.origin {
            Some(origin) => json::write_str(out, origin),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"origin_lsn\":");
        write_optional_u64(out, position.origin_lsn);
        out.push(b'}');
    }
}

fn write_optional_u64(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        // Debezium writes LSNs as Java longs; real LSNs are far below 2^63.
        Some(value) => json::write_i64(out, value as i64),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends the `transaction` field's value.
pub(crate) fn write_transaction(transaction: Option<&TransactionBlock>, out: &mut Vec<u8>) {
    let Some(transaction) = transaction else {
        out.extend_from_slice(b"null");
        return;
    };
    out.extend_from_slice(b"{\"id\":");
    json::write_str(out, &transaction.id);
    out.extend_from_slice(b",\"total_order\":");
    json::write_i64(out, transaction.total_order);
    out.extend_from_slice(b",\"data_collection_order\":");
    json::write_i64(out, transaction.data_collection_order);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_block_matches_recorded_debezium_output() {
        let template = SourceTemplate::new(
            "3.6.1.Final",
            "dbz",
            "test_debezium_reference",
            "public",
            "orders",
            true,
        );
        let position = SourcePosition {
            lsn: Some(63_133_992),
            tx_id: Some(813),
            commit_time_us: 1_795_448_502_853_745,
            ..SourcePosition::default()
        };
        let mut out = Vec::new();
        template.write(&position, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"version":"3.6.1.Final","connector":"postgresql","name":"dbz","ts_ms":1795448502853,"snapshot":"false","db":"test_debezium_reference","sequence":"[null,\"63133992\"]","ts_us":1795448502853745,"ts_ns":1795448502853745000,"schema":"public","table":"orders","txId":813,"lsn":63133992,"xmin":null,"origin":null,"origin_lsn":null}"#
        );
    }

    #[test]
    fn source_schema_matches_recorded_debezium_output() {
        assert_eq!(
            source_schema().to_json(),
            r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1}"#
        );
        assert_eq!(
            transaction_schema().to_json(),
            r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1}"#
        );
    }
}
