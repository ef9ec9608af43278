//! The comparison for scenarios with an incremental snapshot (a signal table configured).
//!
//! An incremental snapshot's `r` records go out at each chunk's high watermark, interleaved with
//! the streamed changes at points that depend on timing: which chunk is in memory when a change
//! arrives decides whether that key also gets an `r` record, on either side. So the record lists
//! are not compared one for one. What must agree:
//!
//! ```text
//! streamed changes (every op but incremental r)   in order, field by field (compare())
//! r records of keys no streamed change touched    per key, the same records, field by field,
//!                                                 source block included
//! the final state of every key                    the last record's `after` (None: deleted)
//! source.sequence of every incremental r           ["<lsn>","<lsn>"]: the high watermark's LSN
//!                                                 twice (checked on each side by itself)
//! ```
//!
//! The signal table's own topic is left out on both sides: Debezium writes the table's rows
//! (the signal and its `-open`/`-close` watermark rows) when the table is captured, cdc-reader
//! never writes them (see README, "Differences from Debezium").

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::record::{canonical_json, payload};
use crate::report::{Difference, RecordRef};
use crate::{compare, field_diff, CompareOptions, Record, Report};

/// Compares an incremental-snapshot scenario (see the module doc). `signal_table` is the
/// signal table as `schema.table` (`public.conformance_signal`).
pub fn compare_incremental(
    debezium: &[Record],
    ours: &[Record],
    options: &CompareOptions,
    signal_table: &str,
) -> Report {
    let dbz_prefix = options.debezium_topic_prefix.as_str();
    let our_prefix = options.our_topic_prefix.as_str();
    let dbz = Side::split(debezium, dbz_prefix, signal_table);
    let our = Side::split(ours, our_prefix, signal_table);

    let streamed = compare(&dbz.streamed, &our.streamed, options);
    let mut differences = streamed.differences;
    let mut paired = streamed.paired;

    let touched: BTreeSet<(String, String)> = dbz
        .streamed_keys(dbz_prefix)
        .chain(our.streamed_keys(our_prefix))
        .collect();

    // Reads of keys no change touched: the same records on both sides.
    let dbz_reads = dbz.reads_by_key(dbz_prefix);
    let our_reads = our.reads_by_key(our_prefix);
    let keys: BTreeSet<&(String, String)> = dbz_reads.keys().chain(our_reads.keys()).collect();
    for key in keys.into_iter().filter(|key| !touched.contains(*key)) {
        let empty = Vec::new();
        let dbz_list = dbz_reads.get(key).unwrap_or(&empty);
        let our_list = our_reads.get(key).unwrap_or(&empty);
        for (index, (d, o)) in dbz_list.iter().zip(our_list).enumerate() {
            paired += 1;
            let at = reference(key, "r", Some(index), Some(index));
            for field in field_diff::diff_records(d, o, options) {
                differences.push(Difference::Field {
                    record: at.clone(),
                    path: field.path,
                    debezium: field.debezium,
                    ours: field.ours,
                });
            }
        }
        for index in our_list.len()..dbz_list.len() {
            differences.push(Difference::OnlyInDebezium(reference(
                key,
                "r",
                Some(index),
                None,
            )));
        }
        for index in dbz_list.len()..our_list.len() {
            differences.push(Difference::OnlyInOurs(reference(
                key,
                "r",
                None,
                Some(index),
            )));
        }
    }

    // Every incremental r: source.sequence is the high watermark's LSN, twice.
    for (side, records) in [("dbz", &dbz.reads), ("ours", &our.reads)] {
        for (index, record) in records.iter().enumerate() {
            if let Some(problem) = sequence_problem(record) {
                let prefix = if side == "dbz" {
                    dbz_prefix
                } else {
                    our_prefix
                };
                let at = RecordRef {
                    table: record.table(prefix),
                    op: "r".into(),
                    key: record.key_text(),
                    debezium_index: (side == "dbz").then_some(index),
                    ours_index: (side == "ours").then_some(index),
                };
                differences.push(Difference::Field {
                    record: at,
                    path: "value.payload.source.sequence (shape)".into(),
                    debezium: (side == "dbz").then(|| Value::from(problem.clone())),
                    ours: (side == "ours").then(|| Value::from(problem)),
                });
            }
        }
    }

    // The final state of every key.
    let dbz_final = final_states(debezium, dbz_prefix, signal_table);
    let our_final = final_states(ours, our_prefix, signal_table);
    let keys: BTreeSet<&(String, String)> = dbz_final.keys().chain(our_final.keys()).collect();
    for key in keys {
        let d = dbz_final.get(key);
        let o = our_final.get(key);
        if d.map(canonical_json) != o.map(canonical_json) {
            differences.push(Difference::Field {
                record: reference(key, "final", None, None),
                path: "final state (after of the last record, null: deleted)".into(),
                debezium: d.cloned(),
                ours: o.cloned(),
            });
        }
    }

    Report {
        debezium_records: debezium.len(),
        our_records: ours.len(),
        paired,
        differences,
    }
}

/// One side's records without the signal table's topic: streamed records (in order) and the
/// incremental snapshot's reads.
struct Side {
    streamed: Vec<Record>,
    reads: Vec<Record>,
}

impl Side {
    fn split(records: &[Record], prefix: &str, signal_table: &str) -> Side {
        let (reads, streamed) = records
            .iter()
            .filter(|record| record.table(prefix) != signal_table)
            .cloned()
            .partition(is_incremental_read);
        Side { streamed, reads }
    }

    fn streamed_keys<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (String, String)> + 'a {
        self.streamed
            .iter()
            .map(move |record| (record.table(prefix), record.key_text()))
    }

    fn reads_by_key(&self, prefix: &str) -> BTreeMap<(String, String), Vec<&Record>> {
        let mut by_key: BTreeMap<(String, String), Vec<&Record>> = BTreeMap::new();
        for record in &self.reads {
            by_key
                .entry((record.table(prefix), record.key_text()))
                .or_default()
                .push(record);
        }
        by_key
    }
}

/// `op: "r"` with `source.snapshot: "incremental"`.
pub fn is_incremental_read(record: &Record) -> bool {
    let payload = payload(&record.value);
    payload.get("op").and_then(Value::as_str) == Some("r")
        && payload
            .get("source")
            .and_then(|source| source.get("snapshot"))
            .and_then(Value::as_str)
            == Some("incremental")
}

/// Why an incremental read's `source.sequence` is not `["<lsn>","<lsn>"]`, if it is not.
fn sequence_problem(record: &Record) -> Option<String> {
    let sequence = payload(&record.value)
        .get("source")
        .and_then(|source| source.get("sequence"))
        .and_then(Value::as_str)?;
    let parsed: Option<Vec<Option<String>>> = serde_json::from_str(sequence).ok();
    match parsed.as_deref() {
        Some([Some(a), Some(b)]) if a == b => None,
        _ => Some(format!("{sequence} is not [\"<lsn>\",\"<lsn>\"]")),
    }
}

/// Per (table, key): the `after` of the key's last record; `Value::Null` when it ends deleted
/// (a delete, its tombstone). Records without a key (truncates, messages) are left out.
fn final_states(
    records: &[Record],
    prefix: &str,
    signal_table: &str,
) -> BTreeMap<(String, String), Value> {
    let mut states = BTreeMap::new();
    for record in records {
        let table = record.table(prefix);
        if table == signal_table || record.key.is_null() {
            continue;
        }
        let after = payload(&record.value)
            .get("after")
            .cloned()
            .unwrap_or(Value::Null);
        states.insert((table, record.key_text()), after);
    }
    states
}

fn reference(
    key: &(String, String),
    op: &str,
    debezium_index: Option<usize>,
    ours_index: Option<usize>,
) -> RecordRef {
    RecordRef {
        table: key.0.clone(),
        op: op.into(),
        key: key.1.clone(),
        debezium_index,
        ours_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(prefix: &str, op: &str, id: i64, name: &str, sequence: &str) -> Record {
        let snapshot = if op == "r" { "incremental" } else { "false" };
        Record {
            topic: format!("{prefix}.public.items"),
            key: json!({"schema": {"type": "struct"}, "payload": {"id": id}}),
            value: json!({"schema": {"type": "struct"}, "payload": {
                "before": null, "after": {"id": id, "name": name},
                "source": {"snapshot": snapshot, "sequence": sequence, "lsn": null},
                "op": op}}),
            headers: Default::default(),
        }
    }

    fn signal(prefix: &str, id: &str) -> Record {
        Record {
            topic: format!("{prefix}.public.signal"),
            key: json!({"payload": {"id": id}}),
            value: json!({"payload": {"op": "c", "after": {"id": id}}}),
            headers: Default::default(),
        }
    }

    const HW: &str = r#"["90","90"]"#;

    #[test]
    fn reads_interleaved_elsewhere_and_signal_rows_do_not_count() {
        let dbz = [
            signal("dbz", "a-open"),
            record("dbz", "r", 1, "one", HW),
            record("dbz", "u", 2, "two!", r#"[null,"80"]"#),
            record("dbz", "r", 3, "three", HW),
            signal("dbz", "a-close"),
        ];
        // Ours: key 2 also got a read (its change came before the window), at another place.
        let ours = [
            record("ours", "r", 3, "three", HW),
            record("ours", "u", 2, "two!", r#"[null,"80"]"#),
            record("ours", "r", 1, "one", HW),
        ];
        let options = CompareOptions::against_recording("dbz", "ours");
        let report = compare_incremental(&dbz, &ours, &options, "public.signal");
        assert!(report.is_identical(), "{report}");
    }

    #[test]
    fn a_missing_read_a_wrong_sequence_and_another_final_state_are_differences() {
        let dbz = [
            record("dbz", "r", 1, "one", HW),
            record("dbz", "r", 3, "three", HW),
            record("dbz", "r", 4, "four", HW),
        ];
        let ours = [
            record("ours", "r", 1, "one", r#"[null,"90"]"#),
            record("ours", "r", 4, "FOUR", HW),
        ];
        let options = CompareOptions::against_recording("dbz", "ours");
        let text = compare_incremental(&dbz, &ours, &options, "public.signal").to_string();
        assert!(
            text.contains(r#"only in Debezium: public.items r {"id":3}"#),
            "{text}"
        );
        assert!(text.contains("source.sequence (shape)"), "{text}");
        assert!(text.contains("value.payload.after.name"), "{text}");
        assert!(text.contains(r#"public.items final {"id":4}"#), "{text}");
    }
}
