//! # conformance: does cdc-reader write what Debezium writes?
//!
//! Not part of the change pipeline: the yardstick beside it, in its own crate so that
//! cdc-reader's library is the reader alone. The real Debezium PostgreSQL connector
//! (scripts/debezium) runs the same scenarios (`scenarios/*.sql`, next to this crate's
//! `Cargo.toml`) and its Kafka records are recorded in `debezium/<scenario>.jsonl`. This library
//! compares two lists of Kafka records, Debezium's and ours, and says field by field where they
//! differ. It is pure: records in, a report out; reading files and topics is the caller's
//! (`tests/conformance.rs` runs every scenario through cdc-reader; `scripts/conformance` runs
//! both connectors live).
//!
//! ```text
//!  Debezium's records ─┐
//!                      ├─ pairing ── (dbz record, our record) pairs ── field_diff ──┐
//!  our records ────────┘     └─ records without a partner ─────────────────────────┴─ Report
//! ```
//!
//! - [`record`]: one Kafka record (topic, key, value, headers) and the recording format.
//! - [`pairing`]: which of our records answers which of Debezium's: same table, same operation,
//!   same key, the same `source.lsn` where both sides have one, otherwise in order.
//! - [`field_diff`]: walks two JSON values side by side and lists every path where they differ,
//!   minus what legitimately differs between two runs (see [`Baseline`]).
//! - [`incremental`]: the comparison for incremental snapshots, whose `r` records interleave
//!   with the stream by timing: streamed changes in order, reads per key, final state per key.
//! - [`report`]: the differences, readable (`value.payload.after.total: dbz="AJw=" ours="AJ0="`).
//!
//! Usage:
//!
//! ```text
//! let debezium = conformance::parse_recording(&std::fs::read_to_string("conformance/debezium/types.jsonl")?)?;
//! let report = conformance::compare(&debezium, &ours, &CompareOptions::against_recording("dbz", "dbserver1"));
//! if !report.is_identical() { println!("{report}"); }
//! ```

pub mod field_diff;
pub mod incremental;
pub mod pairing;
pub mod record;
pub mod report;

pub use field_diff::Baseline;
pub use incremental::compare_incremental;
pub use record::{parse_recording, Record, RecordingError};
pub use report::{Difference, RecordRef, Report};

/// How to compare: each side's topic prefix (Debezium's `topic.prefix`, ours `dbserver1`), and
/// whether the Debezium side ran at the same time on the same WAL or was recorded earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareOptions {
    /// Debezium's `topic.prefix` (`dbz` in scripts/debezium), without the trailing dot.
    pub debezium_topic_prefix: String,
    /// cdc-reader's topic prefix (`dbserver1` by default), without the trailing dot.
    pub our_topic_prefix: String,
    /// Live side by side, or against a recording: decides which run-specific values count.
    pub baseline: Baseline,
    /// Compare Kafka headers too (Debezium's `__debezium.oldkey` / `__debezium.newkey` on
    /// primary-key changes), except its per-run `__debezium.context.*` ones.
    pub compare_headers: bool,
}

impl CompareOptions {
    /// Both connectors read the same WAL at the same time: LSNs, txIds and commit times agree.
    pub fn side_by_side(debezium_topic_prefix: &str, our_topic_prefix: &str) -> Self {
        Self::new(
            debezium_topic_prefix,
            our_topic_prefix,
            Baseline::SideBySide,
        )
    }

    /// Debezium's side is a recording (conformance/debezium/*.jsonl) of another run of the same
    /// scenario: its LSNs, txIds, commit times and database name are not ours to match.
    pub fn against_recording(debezium_topic_prefix: &str, our_topic_prefix: &str) -> Self {
        Self::new(debezium_topic_prefix, our_topic_prefix, Baseline::Recorded)
    }

    fn new(debezium_topic_prefix: &str, our_topic_prefix: &str, baseline: Baseline) -> Self {
        Self {
            debezium_topic_prefix: debezium_topic_prefix.to_owned(),
            our_topic_prefix: our_topic_prefix.to_owned(),
            baseline,
            compare_headers: true,
        }
    }
}

/// Compares Debezium's records with ours: pairs them, diffs each pair field by field, and
/// reports records without a partner and pairs whose order within a topic differs.
pub fn compare(debezium: &[Record], ours: &[Record], options: &CompareOptions) -> Report {
    let pairing = pairing::pair(debezium, ours, options);
    let mut differences = Vec::new();
    for pair in &pairing.pairs {
        let dbz = &debezium[pair.debezium];
        let our = &ours[pair.ours];
        let at = RecordRef::of_pair(dbz, pair, options);
        for field in field_diff::diff_records(dbz, our, options) {
            differences.push(Difference::Field {
                record: at.clone(),
                path: field.path,
                debezium: field.debezium,
                ours: field.ours,
            });
        }
    }
    for &index in &pairing.only_debezium {
        differences.push(Difference::OnlyInDebezium(RecordRef::of_debezium(
            &debezium[index],
            index,
            options,
        )));
    }
    for &index in &pairing.only_ours {
        differences.push(Difference::OnlyInOurs(RecordRef::of_ours(
            &ours[index],
            index,
            options,
        )));
    }
    for inversion in pairing::order_inversions(debezium, &pairing.pairs, options) {
        differences.push(Difference::OrderDiffers {
            table: inversion.table,
            debezium_index: inversion.debezium_index,
            ours_index: inversion.ours_index,
        });
    }
    Report {
        debezium_records: debezium.len(),
        our_records: ours.len(),
        paired: pairing.pairs.len(),
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn order_record(prefix: &str, op: &str, total: &str, lsn: i64, version: &str) -> Record {
        Record {
            topic: format!("{prefix}.public.orders"),
            key: json!({"schema": {"type": "struct", "name": format!("{prefix}.public.orders.Key")},
                        "payload": {"id": 1}}),
            value: json!({
                "schema": {"type": "struct", "name": format!("{prefix}.public.orders.Envelope")},
                "payload": {
                    "before": null,
                    "after": {"id": 1, "total": total},
                    "source": {"version": version, "name": prefix, "lsn": lsn, "txId": 7,
                               "sequence": format!("[null,\"{lsn}\"]"), "db": "playground"},
                    "op": op, "ts_ms": lsn * 3, "ts_us": lsn * 3000, "ts_ns": lsn * 3_000_000
                }
            }),
            headers: Default::default(),
        }
    }

    #[test]
    fn the_same_change_under_other_prefixes_and_versions_is_identical() {
        let dbz = [order_record("dbz", "c", "AJw=", 100, "3.6.1.Final")];
        let ours = [order_record("dbserver1", "c", "AJw=", 100, "0.1.0")];
        let report = compare(
            &dbz,
            &ours,
            &CompareOptions::side_by_side("dbz", "dbserver1"),
        );
        assert!(report.is_identical(), "{report}");
        assert_eq!(report.paired, 1);
    }

    #[test]
    fn a_different_value_is_reported_with_its_path() {
        let dbz = [order_record("dbz", "c", "AJw=", 100, "3.6.1.Final")];
        let ours = [order_record("dbserver1", "c", "AJ0=", 100, "0.1.0")];
        let report = compare(
            &dbz,
            &ours,
            &CompareOptions::side_by_side("dbz", "dbserver1"),
        );
        assert!(!report.is_identical());
        let text = report.to_string();
        assert!(
            text.contains(r#"value.payload.after.total: dbz="AJw=" ours="AJ0=""#),
            "{text}"
        );
    }

    #[test]
    fn lsns_differ_legitimately_only_against_a_recording() {
        let dbz = [order_record("dbz", "c", "AJw=", 100, "3.6.1.Final")];
        let ours = [order_record("dbserver1", "c", "AJw=", 555, "0.1.0")];
        let recorded = compare(
            &dbz,
            &ours,
            &CompareOptions::against_recording("dbz", "dbserver1"),
        );
        assert!(recorded.is_identical(), "{recorded}");
        let live = compare(
            &dbz,
            &ours,
            &CompareOptions::side_by_side("dbz", "dbserver1"),
        );
        let text = live.to_string();
        assert!(
            text.contains("value.payload.source.lsn: dbz=100 ours=555"),
            "{text}"
        );
        assert!(text.contains("value.payload.source.sequence"), "{text}");
    }

    #[test]
    fn records_without_a_partner_are_differences() {
        let dbz = [
            order_record("dbz", "c", "AJw=", 100, "x"),
            order_record("dbz", "u", "AJ0=", 200, "x"),
        ];
        let ours = [order_record("dbserver1", "c", "AJw=", 100, "y")];
        let report = compare(
            &dbz,
            &ours,
            &CompareOptions::side_by_side("dbz", "dbserver1"),
        );
        assert_eq!(report.paired, 1);
        assert_eq!(report.differences.len(), 1);
        assert!(report.to_string().contains("only in Debezium"), "{report}");
    }

    /// The recordings Debezium wrote for the scenarios (conformance/debezium/), compiled in.
    const RECORDINGS: &[(&str, &str)] = &[
        (
            "types",
            include_str!("../../conformance/debezium/types.jsonl"),
        ),
        (
            "orders_lifecycle",
            include_str!("../../conformance/debezium/orders_lifecycle.jsonl"),
        ),
        (
            "replica_identity_full",
            include_str!("../../conformance/debezium/replica_identity_full.jsonl"),
        ),
        (
            "key_change",
            include_str!("../../conformance/debezium/key_change.jsonl"),
        ),
        (
            "toast",
            include_str!("../../conformance/debezium/toast.jsonl"),
        ),
        (
            "truncate",
            include_str!("../../conformance/debezium/truncate.jsonl"),
        ),
        (
            "messages",
            include_str!("../../conformance/debezium/messages.jsonl"),
        ),
        (
            "multi_table_tx",
            include_str!("../../conformance/debezium/multi_table_tx.jsonl"),
        ),
        (
            "no_primary_key",
            include_str!("../../conformance/debezium/no_primary_key.jsonl"),
        ),
    ];

    /// A record as a second run under another prefix would write it: other topic, schema names
    /// and connector name, LSNs, txIds, commit and processing times, database, per-run headers.
    fn as_another_run(record: &Record) -> Record {
        let renamed = |text: String| text.replace("\"dbz.", "\"dbserver1.");
        let mut value: Value = serde_json::from_str(&renamed(record.value.to_string())).unwrap();
        let key: Value = serde_json::from_str(&renamed(record.key.to_string())).unwrap();
        if let Some(payload) = value.get_mut("payload") {
            for field in ["ts_ms", "ts_us", "ts_ns"] {
                // Logical messages carry ts_ms only.
                if payload.get(field).is_some() {
                    payload[field] = json!(1);
                }
            }
            if let Some(source) = payload.get_mut("source") {
                for field in ["lsn", "txId", "ts_ms", "ts_us", "ts_ns"] {
                    if source[field].is_i64() {
                        source[field] = json!(source[field].as_i64().unwrap() + 1000);
                    }
                }
                source["sequence"] = json!("[\"1\",\"2\"]");
                source["db"] = json!("another_database");
                source["name"] = json!("dbserver1");
                source["version"] = json!("0.1.0");
            }
        }
        let mut headers = record.headers.clone();
        headers.insert("__debezium.context.runId".into(), "another-run".into());
        Record {
            topic: record.topic.replacen("dbz.", "dbserver1.", 1),
            key,
            value,
            headers,
        }
    }

    #[test]
    fn every_recording_matches_another_run_of_itself() {
        for (name, text) in RECORDINGS {
            let debezium = parse_recording(text).unwrap();
            assert!(!debezium.is_empty(), "{name} is empty");
            let ours: Vec<Record> = debezium.iter().map(as_another_run).collect();
            let options = CompareOptions::against_recording("dbz", "dbserver1");
            let report = compare(&debezium, &ours, &options);
            assert!(report.is_identical(), "{name}: {report}");
            assert_eq!(report.paired, debezium.len(), "{name}");

            let live = compare(
                &debezium,
                &ours,
                &CompareOptions::side_by_side("dbz", "dbserver1"),
            );
            assert!(!live.is_identical(), "{name}: LSNs differ side by side");
        }
    }

    #[test]
    fn nulls_written_as_defaults_show_up_against_nulls_kept() {
        // The same scenario with JsonConverter's replace.null.with.default=false: a NULL column
        // that has a schema default is null there and the default in the default setting. So is
        // source.snapshot: null while streaming, written as its default "false".
        let replaced = parse_recording(RECORDINGS[0].1).unwrap();
        let kept = parse_recording(include_str!(
            "../../conformance/debezium/replace_null_with_default_false/types.jsonl"
        ))
        .unwrap();
        let report = compare(
            &replaced,
            &kept,
            &CompareOptions::against_recording("dbz", "dbz"),
        );
        let text = report.to_string();
        assert_eq!(report.paired, 8, "{text}");
        // 6 columns in the insert of row 3, the same 6 in its delete's "before", and
        // source.snapshot in the 7 records that are not tombstones.
        assert_eq!(report.differences.len(), 19, "{text}");
        assert!(
            text.contains(r#"value.payload.source.snapshot: dbz="false" ours=null"#),
            "{text}"
        );
        assert!(
            text.contains(r#"public.conformance_types c {"id":3} (dbz #2, ours #2): value.payload.after.c_bigint: dbz=-1 ours=null"#),
            "{text}"
        );
        assert!(!text.contains("value.schema"), "{text}");
    }
}
