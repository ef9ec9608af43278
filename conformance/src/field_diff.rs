//! Field by field: where two paired records differ, minus what legitimately differs.
//!
//! Both JSON documents are walked side by side; every path where they differ becomes one
//! [`FieldDifference`], named like `value.payload.after.total` or
//! `value.schema.fields[after].fields[total].default`. Arrays whose elements are all named by
//! a `"field"` (Connect struct fields in a schema) are matched by that name, so one missing
//! column is one difference rather than a shift of every column after it; a different order of
//! the same fields is reported once at the array. Numbers compare by value (`0` equals `0.0`).
//!
//! What may differ without counting, always:
//!
//! ```text
//! topic prefix           dbz.public.orders              vs dbserver1.public.orders
//! schema names           dbz.public.orders.Value        vs dbserver1.public.orders.Value
//! processing time        payload.ts_ms / ts_us / ts_ns  (when each connector handled it)
//! connector identity     payload.source.version, payload.source.name
//! per-run headers        __debezium.context.*           (runId, taskId, connector names)
//! ```
//!
//! and against a recording ([`Baseline::Recorded`]) also what a second run of the same scenario
//! cannot reproduce: `payload.source.lsn`, `txId`, `sequence`, `ts_ms` / `ts_us` / `ts_ns`
//! (commit time), `db`, and `payload.transaction.id` (made of txId and LSN). Ignored values
//! must still be present on both sides: a missing field is a difference.
//!
//! The same values, where ExtractNewRecordState copied them into the flattened row
//! (`add.fields`, `payload.__lsn`, `payload.__source_ts_ms`, ...) or into headers (`add.headers`,
//! `__db`, ...), are ignored in the same cases; so is the topic prefix inside the key field
//! ByLogicalTableRouter adds (`__dbz__physicalTableIdentifier`: `dbz.public.orders`). Both with
//! Debezium's default names (prefix `__`, key field `__dbz__physicalTableIdentifier`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::record::{without_prefix_in_key_field, Record};
use crate::CompareOptions;

/// Which run-specific values may differ: is Debezium's side live or recorded?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Debezium and cdc-reader read the same WAL at the same time: LSNs, transaction ids and
    /// commit timestamps must match too.
    SideBySide,
    /// Debezium's records come from an earlier run of the scenario (conformance/debezium/):
    /// LSNs, transaction ids, commit timestamps and the database name are ignored.
    Recorded,
}

/// Paths inside a value (relative to the envelope, `payload.` included) ignored in every mode.
const ALWAYS_IGNORED: &[&str] = &[
    "payload.ts_ms",
    "payload.ts_us",
    "payload.ts_ns",
    "payload.source.version",
    "payload.source.name",
];

/// Paths ignored only when comparing against a recording.
const IGNORED_AGAINST_RECORDING: &[&str] = &[
    "payload.source.lsn",
    "payload.source.txId",
    "payload.source.sequence",
    "payload.source.ts_ms",
    "payload.source.ts_us",
    "payload.source.ts_ns",
    "payload.source.db",
    "payload.transaction.id",
];

/// Headers Debezium adds that name the run and the connector instance, not the change.
const PER_RUN_HEADER_PREFIX: &str = "__debezium.context.";

/// The prefix ExtractNewRecordState puts before the fields and headers it adds (`add.fields`,
/// `add.headers`; Debezium's default `__`).
const ADDED_PREFIX: &str = "__";

/// Added fields/headers (after [`ADDED_PREFIX`]) ignored in every mode: the envelope's
/// processing times and the connector's identity (as [`ALWAYS_IGNORED`]).
const ADDED_ALWAYS_IGNORED: &[&str] = &["ts_ms", "ts_us", "ts_ns", "source_version", "source_name"];

/// Added fields/headers ignored against a recording (as [`IGNORED_AGAINST_RECORDING`]): `lsn`
/// and friends are looked up in `source` when the envelope has no such field.
const ADDED_IGNORED_AGAINST_RECORDING: &[&str] = &[
    "lsn",
    "txId",
    "sequence",
    "db",
    "source_lsn",
    "source_txId",
    "source_sequence",
    "source_ts_ms",
    "source_ts_us",
    "source_ts_ns",
    "source_db",
];

/// One path where the two sides differ; `None` where the field is missing on that side.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDifference {
    pub path: String,
    pub debezium: Option<Value>,
    pub ours: Option<Value>,
}

/// Every difference between two paired records: key, value and (if asked) headers.
pub fn diff_records(
    debezium: &Record,
    ours: &Record,
    options: &CompareOptions,
) -> Vec<FieldDifference> {
    let dbz_prefix = options.debezium_topic_prefix.as_str();
    let our_prefix = options.our_topic_prefix.as_str();
    let mut differences = Vec::new();

    let dbz_key = without_prefix_in_key_field(
        &without_prefix_in_schema_names(&debezium.key, dbz_prefix),
        dbz_prefix,
    );
    let our_key = without_prefix_in_key_field(
        &without_prefix_in_schema_names(&ours.key, our_prefix),
        our_prefix,
    );
    diff_values("key", Some(&dbz_key), Some(&our_key), &mut differences);

    let ignored = ignored_paths(options.baseline);
    let ignored_added = ignored_added(options.baseline);
    let dbz_value = masked(
        &without_prefix_in_schema_names(&debezium.value, dbz_prefix),
        &ignored,
    );
    let our_value = masked(
        &without_prefix_in_schema_names(&ours.value, our_prefix),
        &ignored,
    );
    diff_values(
        "value",
        Some(&dbz_value),
        Some(&our_value),
        &mut differences,
    );

    if options.compare_headers {
        let names: BTreeSet<&String> = debezium
            .headers
            .keys()
            .chain(ours.headers.keys())
            .filter(|name| !name.starts_with(PER_RUN_HEADER_PREFIX))
            .collect();
        for name in names {
            let dbz = debezium.headers.get(name);
            let our = ours.headers.get(name);
            let run_specific = name
                .strip_prefix(ADDED_PREFIX)
                .is_some_and(|added| ignored_added.contains(&added));
            if dbz != our && !(run_specific && dbz.is_some() && our.is_some()) {
                differences.push(FieldDifference {
                    path: format!("headers.{name}"),
                    debezium: dbz.map(|text| Value::from(text.as_str())),
                    ours: our.map(|text| Value::from(text.as_str())),
                });
            }
        }
    }
    differences
}

fn ignored_paths(baseline: Baseline) -> Vec<String> {
    let mut paths: Vec<String> = ALWAYS_IGNORED.iter().map(|p| p.to_string()).collect();
    if baseline == Baseline::Recorded {
        paths.extend(IGNORED_AGAINST_RECORDING.iter().map(|p| p.to_string()));
    }
    // The same values as fields of a flattened row (ExtractNewRecordState's add.fields).
    paths.extend(
        ignored_added(baseline)
            .iter()
            .map(|added| format!("payload.{ADDED_PREFIX}{added}")),
    );
    paths
}

/// The names (after [`ADDED_PREFIX`]) of added fields and headers ignored in this mode.
fn ignored_added(baseline: Baseline) -> Vec<&'static str> {
    let mut names = ADDED_ALWAYS_IGNORED.to_vec();
    if baseline == Baseline::Recorded {
        names.extend_from_slice(ADDED_IGNORED_AGAINST_RECORDING);
    }
    names
}

/// The placeholder an ignored value is replaced with (on both sides, so it compares equal while
/// a field missing on one side still shows).
const IGNORED: &str = "(ignored)";

/// A copy of `value` with each ignored path that is present replaced by [`IGNORED`].
fn masked(value: &Value, ignored: &[String]) -> Value {
    let mut copy = value.clone();
    for path in ignored {
        let mut segments: Vec<&str> = path.split('.').collect();
        let Some(last) = segments.pop() else {
            continue;
        };
        let mut parent = Some(&mut copy);
        for segment in segments {
            parent = parent.and_then(|node| node.get_mut(segment));
        }
        if let Some(slot) = parent.and_then(|node| node.get_mut(last)) {
            *slot = Value::from(IGNORED);
        }
    }
    copy
}

/// A copy of a JsonConverter document whose schema names no longer carry the topic prefix:
/// `dbz.public.orders.Value` becomes `<prefix>.public.orders.Value`. Only under `schema`, so
/// data that happens to start with the prefix is left alone.
fn without_prefix_in_schema_names(document: &Value, prefix: &str) -> Value {
    let mut copy = document.clone();
    if let Some(schema) = copy.get_mut("schema") {
        rename_in_schema(schema, &format!("{prefix}."));
    }
    copy
}

fn rename_in_schema(schema: &mut Value, dotted_prefix: &str) {
    match schema {
        Value::Object(map) => {
            for (name, child) in map.iter_mut() {
                match child {
                    Value::String(text) if name == "name" => {
                        if let Some(rest) = text.strip_prefix(dotted_prefix) {
                            *text = format!("<prefix>.{rest}");
                        }
                    }
                    _ => rename_in_schema(child, dotted_prefix),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rename_in_schema(item, dotted_prefix)),
        _ => {}
    }
}

/// Walks both values; pushes one difference per path where they disagree.
fn diff_values(
    path: &str,
    debezium: Option<&Value>,
    ours: Option<&Value>,
    differences: &mut Vec<FieldDifference>,
) {
    match (debezium, ours) {
        (Some(Value::Object(dbz)), Some(Value::Object(our))) => {
            diff_objects(path, dbz, our, differences)
        }
        (Some(Value::Array(dbz)), Some(Value::Array(our))) => {
            diff_arrays(path, dbz, our, differences)
        }
        (Some(Value::Number(dbz)), Some(Value::Number(our))) if same_number(dbz, our) => {}
        (dbz, our) if dbz == our => {}
        (dbz, our) => differences.push(FieldDifference {
            path: path.to_owned(),
            debezium: dbz.cloned(),
            ours: our.cloned(),
        }),
    }
}

fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

fn diff_objects(
    path: &str,
    debezium: &Map<String, Value>,
    ours: &Map<String, Value>,
    differences: &mut Vec<FieldDifference>,
) {
    let names: BTreeSet<&String> = debezium.keys().chain(ours.keys()).collect();
    for name in names {
        diff_values(
            &format!("{path}.{name}"),
            debezium.get(name),
            ours.get(name),
            differences,
        );
    }
}

/// The `"field"` names of an array of Connect struct fields; `None` unless every element has
/// one and they are unique.
fn field_names(items: &[Value]) -> Option<Vec<&str>> {
    let names: Vec<&str> = items
        .iter()
        .map(|item| item.get("field").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let unique: BTreeSet<&&str> = names.iter().collect();
    (unique.len() == names.len()).then_some(names)
}

fn diff_arrays(
    path: &str,
    debezium: &[Value],
    ours: &[Value],
    differences: &mut Vec<FieldDifference>,
) {
    if let (Some(dbz_names), Some(our_names)) = (field_names(debezium), field_names(ours)) {
        if !debezium.is_empty() || !ours.is_empty() {
            diff_named_fields(path, debezium, ours, &dbz_names, &our_names, differences);
            return;
        }
    }
    for index in 0..debezium.len().max(ours.len()) {
        diff_values(
            &format!("{path}[{index}]"),
            debezium.get(index),
            ours.get(index),
            differences,
        );
    }
}

fn diff_named_fields(
    path: &str,
    debezium: &[Value],
    ours: &[Value],
    dbz_names: &[&str],
    our_names: &[&str],
    differences: &mut Vec<FieldDifference>,
) {
    let position = |names: &[&str], wanted: &str| names.iter().position(|name| *name == wanted);
    for (dbz_index, name) in dbz_names.iter().enumerate() {
        let our = position(our_names, name).and_then(|index| ours.get(index));
        diff_values(
            &format!("{path}[{name}]"),
            debezium.get(dbz_index),
            our,
            differences,
        );
    }
    for (our_index, name) in our_names.iter().enumerate() {
        if position(dbz_names, name).is_none() {
            diff_values(
                &format!("{path}[{name}]"),
                None,
                ours.get(our_index),
                differences,
            );
        }
    }
    let common_in_dbz: Vec<&str> = dbz_names
        .iter()
        .copied()
        .filter(|name| our_names.contains(name))
        .collect();
    let common_in_ours: Vec<&str> = our_names
        .iter()
        .copied()
        .filter(|name| dbz_names.contains(name))
        .collect();
    if common_in_dbz != common_in_ours {
        differences.push(FieldDifference {
            path: format!("{path} (field order)"),
            debezium: Some(Value::from(common_in_dbz)),
            ours: Some(Value::from(common_in_ours)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(topic: &str, key: Value, value: Value) -> Record {
        Record {
            topic: topic.into(),
            key,
            value,
            headers: Default::default(),
        }
    }

    fn paths(differences: &[FieldDifference]) -> Vec<&str> {
        differences.iter().map(|d| d.path.as_str()).collect()
    }

    fn live() -> CompareOptions {
        CompareOptions::side_by_side("dbz", "dbserver1")
    }

    #[test]
    fn schema_names_differ_only_by_prefix() {
        let dbz = record(
            "dbz.public.t",
            json!({"schema": {"name": "dbz.public.t.Key"}, "payload": {"id": 1}}),
            json!({"schema": {"fields": [{"field": "after", "name": "dbz.public.t.Value"}]},
                   "payload": {"op": "c", "after": {"name": "dbz.x"}}}),
        );
        let ours = record(
            "dbserver1.public.t",
            json!({"schema": {"name": "dbserver1.public.t.Key"}, "payload": {"id": 1}}),
            json!({"schema": {"fields": [{"field": "after", "name": "dbserver1.public.t.Value"}]},
                   "payload": {"op": "c", "after": {"name": "dbserver1.x"}}}),
        );
        // The payload's own `name` column is data, not a schema name: it still differs.
        let differences = diff_records(&dbz, &ours, &live());
        assert_eq!(paths(&differences), ["value.payload.after.name"]);
    }

    #[test]
    fn processing_times_and_connector_identity_are_ignored_but_must_exist() {
        let dbz = record(
            "dbz.t",
            Value::Null,
            json!({"payload": {"ts_ms": 1, "ts_us": 2, "ts_ns": 3,
                               "source": {"version": "3.6.1.Final", "name": "dbz", "lsn": 5}}}),
        );
        let ours = record(
            "dbserver1.t",
            Value::Null,
            json!({"payload": {"ts_ms": 9, "ts_us": 9,
                               "source": {"version": "0.1.0", "name": "dbserver1", "lsn": 5}}}),
        );
        let differences = diff_records(&dbz, &ours, &live());
        assert_eq!(paths(&differences), ["value.payload.ts_ns"]);
        assert_eq!(differences[0].ours, None);
        assert_eq!(differences[0].debezium, Some(json!(IGNORED)));
    }

    #[test]
    fn run_specific_source_fields_count_only_side_by_side() {
        let source = |lsn: i64, tx: i64, db: &str| {
            json!({"payload": {"source": {"lsn": lsn, "txId": tx, "sequence": format!("[null,\"{lsn}\"]"),
                   "ts_ms": lsn, "ts_us": lsn, "ts_ns": lsn, "db": db, "table": "t"},
                   "transaction": {"id": format!("{tx}:{lsn}"), "total_order": 1}}})
        };
        let dbz = record("dbz.t", Value::Null, source(10, 700, "test_a"));
        let ours = record("dbserver1.t", Value::Null, source(20, 800, "test_b"));
        let recorded = CompareOptions::against_recording("dbz", "dbserver1");
        assert!(diff_records(&dbz, &ours, &recorded).is_empty());
        let live_paths = diff_records(&dbz, &ours, &live());
        assert_eq!(
            paths(&live_paths),
            [
                "value.payload.source.db",
                "value.payload.source.lsn",
                "value.payload.source.sequence",
                "value.payload.source.ts_ms",
                "value.payload.source.ts_ns",
                "value.payload.source.ts_us",
                "value.payload.source.txId",
                "value.payload.transaction.id",
            ]
        );
    }

    #[test]
    fn struct_fields_match_by_name_and_order_is_reported_once() {
        let schema = |fields: Value| json!({"schema": {"fields": fields}, "payload": {}});
        let dbz = record(
            "dbz.t",
            Value::Null,
            schema(json!([
                {"field": "id", "type": "int32"},
                {"field": "total", "type": "bytes", "default": "AA=="},
                {"field": "note", "type": "string"}
            ])),
        );
        let ours = record(
            "dbserver1.t",
            Value::Null,
            schema(json!([
                {"field": "total", "type": "bytes"},
                {"field": "id", "type": "int32"},
                {"field": "extra", "type": "string"}
            ])),
        );
        let differences = diff_records(&dbz, &ours, &live());
        assert_eq!(
            paths(&differences),
            [
                "value.schema.fields[total].default",
                "value.schema.fields[note]",
                "value.schema.fields[extra]",
                "value.schema.fields (field order)",
            ]
        );
    }

    #[test]
    fn plain_arrays_compare_by_index_and_numbers_by_value() {
        let dbz = record(
            "dbz.t",
            Value::Null,
            json!({"payload": {"a": [1, null, 3], "r": 0}}),
        );
        let ours = record(
            "dbserver1.t",
            Value::Null,
            json!({"payload": {"a": [1, 2], "r": 0.0}}),
        );
        let differences = diff_records(&dbz, &ours, &live());
        assert_eq!(
            paths(&differences),
            ["value.payload.a[1]", "value.payload.a[2]"]
        );
        assert_eq!(differences[1].ours, None);
    }

    #[test]
    fn headers_compare_except_per_run_context() {
        let mut dbz = record("dbz.t", Value::Null, Value::Null);
        dbz.headers
            .insert("__debezium.context.runId".into(), "r1".into());
        dbz.headers
            .insert("__debezium.newkey".into(), r#"{"id":10}"#.into());
        let ours = record("dbserver1.t", Value::Null, Value::Null);
        let differences = diff_records(&dbz, &ours, &live());
        assert_eq!(paths(&differences), ["headers.__debezium.newkey"]);
        let without_headers = CompareOptions {
            compare_headers: false,
            ..live()
        };
        assert!(diff_records(&dbz, &ours, &without_headers).is_empty());
    }

    #[test]
    fn fields_and_headers_added_by_unwrap_are_ignored_like_the_envelope_fields() {
        let flat = |lsn: i64, ts: i64, op: &str| json!({"payload": {"id": 1, "__op": op, "__lsn": lsn, "__source_ts_ms": ts}});
        let mut dbz = record("dbz.public.t", Value::Null, flat(100, 1, "c"));
        dbz.headers.insert("__db".into(), "\"reference\"".into());
        dbz.headers.insert("__op".into(), "\"c\"".into());
        let mut ours = record("dbserver1.public.t", Value::Null, flat(200, 2, "u"));
        ours.headers.insert("__db".into(), "\"test_x\"".into());
        ours.headers.insert("__op".into(), "\"u\"".into());
        let recorded = CompareOptions::against_recording("dbz", "dbserver1");
        assert_eq!(
            paths(&diff_records(&dbz, &ours, &recorded)),
            ["value.payload.__op", "headers.__op"]
        );
        // Side by side, LSN, commit time and database must agree.
        assert_eq!(
            paths(&diff_records(&dbz, &ours, &live())),
            [
                "value.payload.__lsn",
                "value.payload.__op",
                "value.payload.__source_ts_ms",
                "headers.__db",
                "headers.__op"
            ]
        );
        // Ignored is not optional: a header missing on one side still counts.
        ours.headers.remove("__db");
        assert_eq!(
            paths(&diff_records(&dbz, &ours, &recorded)),
            ["value.payload.__op", "headers.__db", "headers.__op"]
        );
    }

    #[test]
    fn the_routers_key_field_differs_only_by_prefix() {
        let key = |topic: &str| {
            json!({"schema": {"name": "x.Key"},
                   "payload": {"id": 1, "__dbz__physicalTableIdentifier": topic}})
        };
        let dbz = record("dbz.public.merged", key("dbz.public.orders"), Value::Null);
        let ours = record(
            "dbserver1.public.merged",
            key("dbserver1.public.orders"),
            Value::Null,
        );
        assert!(diff_records(&dbz, &ours, &live()).is_empty());
        let other = record(
            "dbserver1.public.merged",
            key("dbserver1.public.order_items"),
            Value::Null,
        );
        assert_eq!(
            paths(&diff_records(&dbz, &other, &live())),
            ["key.payload.__dbz__physicalTableIdentifier"]
        );
    }

    #[test]
    fn a_tombstone_against_an_envelope_is_one_difference() {
        let dbz = record("dbz.t", Value::Null, Value::Null);
        let ours = record("dbserver1.t", Value::Null, json!({"payload": {"op": "d"}}));
        let differences = diff_records(&dbz, &ours, &live());
        assert_eq!(paths(&differences), ["value"]);
    }
}
