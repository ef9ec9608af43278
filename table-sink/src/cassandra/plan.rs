//! From a batch of [`RowChange`]s to the CQL the Cassandra target runs: pure, no I/O.
//!
//! ```text
//! changes (Kafka order)  ──> segments split at each TRUNCATE (a barrier, run alone)
//!                        ──> in a segment: the LAST change per primary key wins
//!                            (one statement per row: an unlogged batch gives all its
//!                            statements one timestamp, where a delete would beat an upsert)
//!                        ──> grouped by partition key, at most MAX_BATCH statements each:
//!                            one unlogged batch per group (one partition: atomic, one round trip)
//!                        ──> (the target, which knows the ring) partitions on the same replicas
//!                            merged, up to PARTITIONS_PER_BATCH per batch: merge_by_replicas
//! ```
//!
//! Groups touch disjoint rows, so the target may send them concurrently. The CQL text builders
//! are here too (`CREATE TABLE`, `ALTER TABLE ... ADD`, `INSERT ... USING TTL`, `DELETE`,
//! `TRUNCATE`); every identifier is double-quoted, so names keep their case.

use std::collections::{BTreeMap, HashMap};

use scylla::value::CqlValue;

use super::types::{cql_type_for, to_cql, CqlType};
use crate::change::{Position, Row, RowChange};

/// Most statements in one unlogged batch (Cassandra warns at 5 KiB of batch, refuses at 50).
pub const MAX_BATCH: usize = 32;

/// Most partitions in one unlogged batch of partitions that live on the same replicas:
/// Cassandra's `unlogged_batch_across_partitions_warn_threshold` is 10.
pub const PARTITIONS_PER_BATCH: usize = 10;

/// Merges partition groups whose partitions live on the same replicas (`replicas[i]` for
/// `groups[i]`; `None`: not known, the group stays alone) into unlogged batches of at most
/// [`PARTITIONS_PER_BATCH`] partitions and [`MAX_BATCH`] statements: DSBulk's `REPLICA_SET`
/// batch mode. The coordinator that gets such a batch (the driver sends it to one of those
/// replicas) writes it locally instead of forwarding each row, and one request carries ten
/// rows: on a single node, every partition. Rows stay distinct (one statement per row), so a
/// batch's single timestamp decides nothing between them.
pub fn merge_by_replicas<T, K: Eq + std::hash::Hash>(
    groups: Vec<Vec<T>>,
    replicas: Vec<Option<K>>,
) -> Vec<Vec<T>> {
    let mut merged: Vec<(Vec<T>, usize)> = Vec::new(); // (statements, partitions)
    let mut open: HashMap<K, usize> = HashMap::new(); // replica set -> its batch being filled
    for (group, replica_set) in groups.into_iter().zip(replicas) {
        let Some(replica_set) = replica_set else {
            merged.push((group, 1));
            continue;
        };
        match open.get(&replica_set).copied() {
            Some(at)
                if merged[at].1 < PARTITIONS_PER_BATCH
                    && merged[at].0.len() + group.len() <= MAX_BATCH =>
            {
                merged[at].0.extend(group);
                merged[at].1 += 1;
            }
            _ => {
                open.insert(replica_set, merged.len());
                merged.push((group, 1));
            }
        }
    }
    merged.into_iter().map(|(group, _)| group).collect()
}

/// Double-quotes a CQL identifier (`"` doubled).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `cassandra://host:port[,host:port...]/keyspace`: the contact points and the keyspace.
pub fn parse_url(url: &str) -> Result<(Vec<String>, String), String> {
    let rest = url
        .trim()
        .strip_prefix("cassandra://")
        .ok_or_else(|| format!("--to `{url}`: expected cassandra://host:port/keyspace"))?;
    let (hosts, keyspace) = rest.split_once('/').ok_or_else(|| {
        format!("--to `{url}`: no keyspace; expected cassandra://host:port/keyspace")
    })?;
    let keyspace = keyspace.trim_end_matches('/');
    let valid_keyspace = !keyspace.is_empty()
        && keyspace.len() <= 48
        && keyspace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_keyspace {
        return Err(format!(
            "--to `{url}`: keyspace `{keyspace}` is not a Cassandra name (letters, digits, _; at most 48)"
        ));
    }
    let hosts: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:9042")
            }
        })
        .collect();
    if hosts.is_empty() {
        return Err(format!(
            "--to `{url}`: no host; expected cassandra://host:port/keyspace"
        ));
    }
    Ok((hosts, keyspace.to_string()))
}

/// The columns of a table as Cassandra has them (from `system_schema`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableSchema {
    pub columns: BTreeMap<String, CqlType>,
    pub partition_key: Vec<String>,
    pub clustering_key: Vec<String>,
}

impl TableSchema {
    pub fn primary_key(&self) -> impl Iterator<Item = &String> {
        self.partition_key.iter().chain(&self.clustering_key)
    }
}

/// Which columns form a new table's primary key: `--partition-key` / `--clustering-key`, or
/// (when not given) the record's key as the partition key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLayout {
    pub partition_key: Vec<String>,
    pub clustering_key: Vec<String>,
}

impl KeyLayout {
    /// The layout for a table made from `row`.
    pub fn for_row(&self, row: &Row) -> KeyLayout {
        if self.partition_key.is_empty() {
            KeyLayout {
                partition_key: row.key.clone(),
                clustering_key: self.clustering_key.clone(),
            }
        } else {
            self.clone()
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` from a row's schema: every field a column of its mapped type.
pub fn create_table(
    keyspace: &str,
    table: &str,
    row: &Row,
    layout: &KeyLayout,
) -> Result<String, String> {
    let layout = layout.for_row(row);
    if layout.partition_key.is_empty() {
        return Err(format!(
            "cannot create {keyspace}.{table}: the record has no key; give --partition-key \
             (or --primary-key-mode record_value --primary-key-fields ...)"
        ));
    }
    let mut columns = Vec::new();
    for field in &row.fields {
        columns.push(format!(
            "{} {}",
            quote(&field.name),
            cql_type_for(&field.ty).cql()
        ));
    }
    for name in layout.partition_key.iter().chain(&layout.clustering_key) {
        let field = row.field(name).ok_or_else(|| {
            format!("cannot create {keyspace}.{table}: key column `{name}` is not a field of the record")
        })?;
        if !cql_type_for(&field.ty).can_be_key() {
            return Err(format!(
                "cannot create {keyspace}.{table}: `{name}` ({}) cannot be part of a primary key",
                cql_type_for(&field.ty).cql()
            ));
        }
    }
    let partition: Vec<String> = layout.partition_key.iter().map(|n| quote(n)).collect();
    let mut key = format!("({})", partition.join(", "));
    for name in &layout.clustering_key {
        key.push_str(", ");
        key.push_str(&quote(name));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({key}))",
        quote(keyspace),
        quote(table),
        columns.join(", ")
    ))
}

/// `CREATE KEYSPACE IF NOT EXISTS` for one node (SimpleStrategy, replication factor 1).
pub fn create_keyspace(keyspace: &str) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
        quote(keyspace)
    )
}

/// `ALTER TABLE ... ADD` for a field the table lacks.
pub fn add_column(keyspace: &str, table: &str, name: &str, ty: &CqlType) -> String {
    format!(
        "ALTER TABLE {}.{} ADD {} {}",
        quote(keyspace),
        quote(table),
        quote(name),
        ty.cql()
    )
}

/// `INSERT INTO ks.t ("a", "b") VALUES (?, ?) [USING TTL n]`: an upsert in CQL.
pub fn insert(keyspace: &str, table: &str, columns: &[String], ttl: Option<u32>) -> String {
    let names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let marks = vec!["?"; columns.len()].join(", ");
    let ttl = ttl.map(|s| format!(" USING TTL {s}")).unwrap_or_default();
    format!(
        "INSERT INTO {}.{} ({}) VALUES ({marks}){ttl}",
        quote(keyspace),
        quote(table),
        names.join(", ")
    )
}

/// `DELETE FROM ks.t WHERE "a" = ? AND "b" = ?` (the whole primary key).
pub fn delete(keyspace: &str, table: &str, key: &[String]) -> String {
    let conditions: Vec<String> = key.iter().map(|c| format!("{} = ?", quote(c))).collect();
    format!(
        "DELETE FROM {}.{} WHERE {}",
        quote(keyspace),
        quote(table),
        conditions.join(" AND ")
    )
}

pub fn truncate(keyspace: &str, table: &str) -> String {
    format!("TRUNCATE {}.{}", quote(keyspace), quote(table))
}

/// One statement to run: its CQL text, its values, and the batch change it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub index: usize,
    pub cql: String,
    pub values: Vec<Option<CqlValue>>,
}

/// What a batch becomes: steps run in order; the groups of a `Writes` step in any order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Groups of statements of one partition each (an unlogged batch when more than one).
    Writes(Vec<Vec<Statement>>),
    /// `TRUNCATE`, alone, after everything before it is written.
    Truncate { index: usize, cql: String },
}

/// Why change `index` cannot be planned (it goes to the dead-letter topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub index: usize,
    pub message: String,
}

/// Plans a batch against the tables' schemas (every routed table must be in `schemas`; the
/// target creates or evolves them first). The table name is the routed name's table part; the
/// keyspace is `--to`'s.
pub fn plan(
    keyspace: &str,
    changes: &[(Position, RowChange)],
    schemas: &HashMap<String, TableSchema>,
    ttl: Option<u32>,
) -> Result<Vec<Step>, PlanError> {
    let mut steps = Vec::new();
    // Per segment: (table, primary key) -> the statement of the last change; and the order in
    // which keys were first seen, so the plan is deterministic.
    let mut latest: HashMap<(String, String), Statement> = HashMap::new();
    let mut partitions: HashMap<(String, String), String> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let flush = |latest: &mut HashMap<(String, String), Statement>,
                 partitions: &mut HashMap<(String, String), String>,
                 order: &mut Vec<(String, String)>,
                 steps: &mut Vec<Step>| {
        if order.is_empty() {
            return;
        }
        let mut groups: Vec<Vec<Statement>> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for row_key in order.drain(..) {
            let Some(statement) = latest.remove(&row_key) else {
                continue;
            };
            let partition = partitions.remove(&row_key).unwrap_or_default();
            let at = match group_of.get(&partition) {
                Some(&at) if groups[at].len() < MAX_BATCH => at,
                _ => {
                    groups.push(Vec::new());
                    group_of.insert(partition, groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[at].push(statement);
        }
        for group in &mut groups {
            group.sort_by_key(|s| s.index);
        }
        steps.push(Step::Writes(groups));
    };
    for (index, (_, change)) in changes.iter().enumerate() {
        let table = &change.table().table;
        let fail = |message: String| PlanError { index, message };
        let schema = schemas.get(table).ok_or_else(|| {
            fail(format!(
                "table {keyspace}.{table} does not exist (--auto-create makes it)"
            ))
        })?;
        let (statement, key_values) = match change {
            RowChange::Truncate { .. } => {
                flush(&mut latest, &mut partitions, &mut order, &mut steps);
                steps.push(Step::Truncate {
                    index,
                    cql: truncate(keyspace, table),
                });
                continue;
            }
            RowChange::Upsert { row, .. } => {
                let mut columns = Vec::with_capacity(row.fields.len());
                let mut values = Vec::with_capacity(row.fields.len());
                for (field, value) in row.fields.iter().zip(&row.values) {
                    let ty = schema.columns.get(&field.name).ok_or_else(|| {
                        fail(format!(
                            "{keyspace}.{table} has no column `{}` (--auto-create adds missing columns)",
                            field.name
                        ))
                    })?;
                    let value = to_cql(value, ty)
                        .map_err(|e| fail(format!("column `{}`: {e}", field.name)))?;
                    columns.push(field.name.clone());
                    values.push(value);
                }
                let key_values = key_of(schema, row, keyspace, table).map_err(fail)?;
                let cql = insert(keyspace, table, &columns, ttl);
                (Statement { index, cql, values }, key_values)
            }
            RowChange::Delete { key, .. } => {
                let key_values = key_of(schema, key, keyspace, table).map_err(fail)?;
                let names: Vec<String> = schema.primary_key().cloned().collect();
                let cql = delete(keyspace, table, &names);
                let values = key_values.iter().cloned().map(Some).collect();
                (Statement { index, cql, values }, key_values)
            }
        };
        let partition_len = schema.partition_key.len();
        let row_key = (table.clone(), format!("{key_values:?}"));
        let partition = format!("{table}/{:?}", &key_values[..partition_len]);
        if latest.insert(row_key.clone(), statement).is_none() {
            order.push(row_key.clone());
        }
        partitions.insert(row_key, partition);
    }
    flush(&mut latest, &mut partitions, &mut order, &mut steps);
    Ok(steps)
}

/// The primary key values of `row` in the table's key order (partition, then clustering).
fn key_of(
    schema: &TableSchema,
    row: &Row,
    keyspace: &str,
    table: &str,
) -> Result<Vec<CqlValue>, String> {
    let mut values = Vec::new();
    for name in schema.primary_key() {
        let ty = &schema.columns[name];
        let value = row.get(name).ok_or_else(|| {
            format!(
                "the record has no `{name}`, part of {keyspace}.{table}'s primary key (a delete \
                 carries only the old key: for a key beyond the source's primary key set REPLICA \
                 IDENTITY FULL on the source table and use --primary-key-mode record_value)"
            )
        })?;
        match to_cql(value, ty).map_err(|e| format!("key column `{name}`: {e}"))? {
            Some(value) => values.push(value),
            None => {
                return Err(format!(
                    "key column `{name}` of {keyspace}.{table} is null (a delete carries only the \
                     old key: REPLICA IDENTITY FULL on the source gives the whole old row)"
                ))
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{Field, FieldType, TableId, Value};

    fn order(id: i64, customer: i64, status: &str) -> Row {
        Row {
            fields: vec![
                Field::new("id", FieldType::Int64, false),
                Field::new("customer_id", FieldType::Int64, false),
                Field::new("status", FieldType::Text, false),
            ],
            values: vec![
                Value::Int(id),
                Value::Int(customer),
                Value::Text(status.into()),
            ],
            key: vec!["customer_id".into(), "id".into()],
        }
    }

    fn by_customer() -> TableSchema {
        TableSchema {
            columns: [
                ("id".to_string(), CqlType::BigInt),
                ("customer_id".to_string(), CqlType::BigInt),
                ("status".to_string(), CqlType::Text),
            ]
            .into_iter()
            .collect(),
            partition_key: vec!["customer_id".into()],
            clustering_key: vec!["id".into()],
        }
    }

    fn at(offset: i64, change: RowChange) -> (Position, RowChange) {
        (
            Position {
                topic: "t".into(),
                partition: 0,
                offset,
            },
            change,
        )
    }

    fn upsert(row: Row) -> RowChange {
        RowChange::Upsert {
            table: TableId::new(Some("public"), "orders_by_customer"),
            row,
        }
    }

    #[test]
    fn urls_name_hosts_and_a_keyspace() {
        assert_eq!(
            parse_url("cassandra://127.0.0.1:59042/playground"),
            Ok((
                vec!["127.0.0.1:59042".to_string()],
                "playground".to_string()
            ))
        );
        assert_eq!(
            parse_url("cassandra://a,b:9043/ks/").map(|(h, _)| h),
            Ok(vec!["a:9042".to_string(), "b:9043".to_string()])
        );
        assert!(parse_url("cassandra://127.0.0.1:59042").is_err());
        assert!(parse_url("cassandra://h/bad-name").is_err());
    }

    #[test]
    fn cql_texts() {
        let layout = KeyLayout {
            partition_key: vec!["customer_id".into()],
            clustering_key: vec!["id".into()],
        };
        assert_eq!(
            create_table(
                "playground",
                "orders_by_customer",
                &order(1, 2, "NEW"),
                &layout
            )
            .unwrap(),
            "CREATE TABLE IF NOT EXISTS \"playground\".\"orders_by_customer\" (\"id\" bigint, \
             \"customer_id\" bigint, \"status\" text, PRIMARY KEY ((\"customer_id\"), \"id\"))"
        );
        let mut keyless = order(1, 2, "NEW");
        keyless.key.clear();
        assert!(create_table("ks", "t", &keyless, &KeyLayout::default()).is_err());
        assert_eq!(
            insert("ks", "t", &["a".into(), "b".into()], Some(60)),
            "INSERT INTO \"ks\".\"t\" (\"a\", \"b\") VALUES (?, ?) USING TTL 60"
        );
        assert_eq!(
            delete("ks", "t", &["a".into(), "b".into()]),
            "DELETE FROM \"ks\".\"t\" WHERE \"a\" = ? AND \"b\" = ?"
        );
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            add_column("ks", "t", "note", &CqlType::Text),
            "ALTER TABLE \"ks\".\"t\" ADD \"note\" text"
        );
    }

    #[test]
    fn the_last_change_per_row_wins_and_partitions_share_a_batch() {
        let schemas: HashMap<String, TableSchema> =
            [("orders_by_customer".to_string(), by_customer())]
                .into_iter()
                .collect();
        let changes = vec![
            at(0, upsert(order(1, 7, "NEW"))),
            at(1, upsert(order(2, 7, "NEW"))),
            at(2, upsert(order(3, 8, "NEW"))),
            at(3, upsert(order(1, 7, "PAID"))),
            at(
                4,
                RowChange::Delete {
                    table: TableId::new(None, "orders_by_customer"),
                    key: order(2, 7, "NEW").key_row(),
                },
            ),
        ];
        let steps = plan("ks", &changes, &schemas, None).unwrap();
        let [Step::Writes(groups)] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(groups.len(), 2, "customer 7 and customer 8");
        let indexes: Vec<Vec<usize>> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.index).collect())
            .collect();
        assert_eq!(indexes, vec![vec![3, 4], vec![2]]);
        assert!(groups[0][1].cql.starts_with("DELETE"));
        assert_eq!(
            groups[0][1].values,
            vec![Some(CqlValue::BigInt(7)), Some(CqlValue::BigInt(2))]
        );
    }

    #[test]
    fn truncate_is_a_barrier() {
        let schemas: HashMap<String, TableSchema> =
            [("orders_by_customer".to_string(), by_customer())]
                .into_iter()
                .collect();
        let changes = vec![
            at(0, upsert(order(1, 7, "NEW"))),
            at(
                1,
                RowChange::Truncate {
                    table: TableId::new(None, "orders_by_customer"),
                },
            ),
            at(2, upsert(order(1, 7, "PAID"))),
        ];
        let steps = plan("ks", &changes, &schemas, Some(10)).unwrap();
        assert_eq!(steps.len(), 3);
        assert!(matches!(&steps[1], Step::Truncate { index: 1, .. }));
        let Step::Writes(groups) = &steps[2] else {
            panic!()
        };
        assert!(groups[0][0].cql.ends_with("USING TTL 10"));
    }

    #[test]
    fn bad_changes_name_their_index() {
        let schemas: HashMap<String, TableSchema> =
            [("orders_by_customer".to_string(), by_customer())]
                .into_iter()
                .collect();
        // A delete that carries only the source key lacks the partition key.
        let mut only_id = order(5, 7, "NEW");
        only_id.key = vec!["id".into()];
        let changes = vec![
            at(0, upsert(order(1, 7, "NEW"))),
            at(
                1,
                RowChange::Delete {
                    table: TableId::new(None, "orders_by_customer"),
                    key: only_id.key_row(),
                },
            ),
        ];
        let error = plan("ks", &changes, &schemas, None).unwrap_err();
        assert_eq!(error.index, 1);
        assert!(
            error.message.contains("REPLICA IDENTITY FULL"),
            "{}",
            error.message
        );

        let mut extra = order(1, 7, "NEW");
        extra.fields.push(Field::new("note", FieldType::Text, true));
        extra.values.push(Value::Null);
        let error = plan("ks", &[at(0, upsert(extra))], &schemas, None).unwrap_err();
        assert!(
            error.message.contains("no column `note`"),
            "{}",
            error.message
        );

        let missing = HashMap::new();
        assert!(plan("ks", &[at(0, upsert(order(1, 7, "NEW")))], &missing, None).is_err());
    }

    #[test]
    fn a_big_partition_is_split_into_batches_of_max_batch() {
        let schemas: HashMap<String, TableSchema> =
            [("orders_by_customer".to_string(), by_customer())]
                .into_iter()
                .collect();
        let changes: Vec<_> = (0..(MAX_BATCH as i64 * 2 + 1))
            .map(|i| at(i, upsert(order(i, 7, "NEW"))))
            .collect();
        let steps = plan("ks", &changes, &schemas, None).unwrap();
        let Step::Writes(groups) = &steps[0] else {
            panic!()
        };
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![MAX_BATCH, MAX_BATCH, 1]);
    }

    #[test]
    fn partitions_on_the_same_replicas_share_batches_of_ten() {
        // 25 one-row partitions on replicas A, 3 on B, one unknown, one of 30 rows on A.
        let mut groups: Vec<Vec<u32>> = (0..25).map(|i| vec![i]).collect();
        let mut replicas: Vec<Option<&str>> = vec![Some("A"); 25];
        groups.extend((100..103).map(|i| vec![i]));
        replicas.extend([Some("B"); 3]);
        groups.push(vec![200]);
        replicas.push(None);
        groups.push((300..330).collect());
        replicas.push(Some("A"));
        let merged = merge_by_replicas(groups, replicas);
        let sizes: Vec<usize> = merged.iter().map(Vec::len).collect();
        // A: 10, 10, then 5 + (30 rows do not fit in 32) -> alone; B: 3; the unknown alone.
        assert_eq!(sizes, vec![10, 10, 5, 3, 1, 30]);
        let mut all: Vec<u32> = merged.concat();
        all.sort();
        assert_eq!(all.len(), 25 + 3 + 1 + 30, "every statement once");
        all.dedup();
        assert_eq!(all.len(), 59);
    }
}
