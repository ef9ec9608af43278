//! A batch of changes -> the few set-based statements that have the same effect (pure).
//!
//! With `--insert-mode upsert` only the LAST change of each key in a batch matters (an
//! upsert replaces the row, a delete removes it), so a batch of 5000 changes becomes, per
//! table, at most: one TRUNCATE (when the batch has one; what came before it is dropped), one
//! DELETE of the keys whose last change is a delete, and one INSERT ... ON CONFLICT of the
//! rows whose last change is an upsert (one per column set, when a column was added in the
//! middle of the batch). Each key appears once, so their order does not matter.
//!
//! ```text
//! c id=1, u id=1, c id=2, d id=1, u id=2      ->   DELETE id IN (1); UPSERT (id=2 as of `u`)
//! ```
//!
//! With `--insert-mode insert` (or rows without key) nothing may be folded: consecutive
//! inserts into the same table become one multi-row INSERT, in Kafka order.
//!
//! Each planned row keeps the index of the change it came from, so an error can be traced
//! back to its record.

use std::collections::HashMap;

use crate::change::{Field, Position, Row, RowChange, TableId};
use crate::config::InsertMode;

use super::types::sql_text;

/// Rows as text, one entry per field, and the index of the change each came from.
pub type TextRows = Vec<(usize, Vec<Option<String>>)>;

/// One statement of a planned batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Truncate {
        table: TableId,
        index: usize,
    },
    Delete {
        table: TableId,
        /// The key fields, in key order.
        key: Vec<Field>,
        rows: TextRows,
    },
    Insert {
        table: TableId,
        fields: Vec<Field>,
        /// The key columns; `upsert` = ON CONFLICT (key) DO UPDATE.
        key: Vec<String>,
        upsert: bool,
        rows: TextRows,
    },
}

impl Step {
    pub fn table(&self) -> &TableId {
        match self {
            Step::Truncate { table, .. }
            | Step::Delete { table, .. }
            | Step::Insert { table, .. } => table,
        }
    }

    /// The change index of the step's first row.
    pub fn first_index(&self) -> usize {
        match self {
            Step::Truncate { index, .. } => *index,
            Step::Delete { rows, .. } | Step::Insert { rows, .. } => {
                rows.first().map_or(0, |r| r.0)
            }
        }
    }

    /// How many rows the step writes or deletes (a truncate counts one).
    pub fn len(&self) -> usize {
        match self {
            Step::Truncate { .. } => 1,
            Step::Delete { rows, .. } | Step::Insert { rows, .. } => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn row_text(row: &Row) -> Vec<Option<String>> {
    row.fields
        .iter()
        .zip(&row.values)
        .map(|(f, v)| sql_text(&f.ty, v))
        .collect()
}

/// The identity of a key: its values as text, in key order.
fn key_text(row: &Row) -> String {
    let mut text = String::new();
    for (field, value) in row.key_values() {
        match sql_text(&field.ty, value) {
            Some(t) => text.push_str(&t),
            None => text.push('\u{1}'),
        }
        text.push('\u{0}');
    }
    text
}

fn names(fields: &[Field]) -> Vec<&str> {
    fields.iter().map(|f| f.name.as_str()).collect()
}

/// Plans a batch (see the module comment).
pub fn plan(changes: &[(Position, RowChange)], mode: InsertMode) -> Vec<Step> {
    match mode {
        InsertMode::Upsert => plan_folded(changes),
        InsertMode::Insert => plan_in_order(changes, false),
    }
}

#[derive(Default)]
struct TablePlan {
    truncate: Option<usize>,
    /// key text -> index of the key's last change.
    last: HashMap<String, usize>,
    /// Upserts of rows without key, in order.
    unkeyed: Vec<usize>,
}

fn plan_folded(changes: &[(Position, RowChange)]) -> Vec<Step> {
    let mut order: Vec<TableId> = Vec::new();
    let mut tables: HashMap<TableId, TablePlan> = HashMap::new();
    for (i, (_, change)) in changes.iter().enumerate() {
        let table = change.table();
        let plan = tables.entry(table.clone()).or_insert_with(|| {
            order.push(table.clone());
            TablePlan::default()
        });
        match change {
            RowChange::Truncate { .. } => {
                plan.truncate = Some(i);
                plan.last.clear();
                plan.unkeyed.clear();
            }
            RowChange::Upsert { row, .. } if row.key.is_empty() => plan.unkeyed.push(i),
            RowChange::Upsert { row, .. } => {
                plan.last.insert(key_text(row), i);
            }
            RowChange::Delete { key, .. } => {
                plan.last.insert(key_text(key), i);
            }
        }
    }
    let mut steps = Vec::new();
    for table in order {
        let plan = &tables[&table];
        if let Some(index) = plan.truncate {
            steps.push(Step::Truncate {
                table: table.clone(),
                index,
            });
        }
        let mut last: Vec<usize> = plan.last.values().copied().collect();
        last.sort_unstable();
        let mut table_steps: Vec<Step> = Vec::new();
        for i in last {
            match &changes[i].1 {
                RowChange::Delete { key, .. } => {
                    let existing = table_steps.iter_mut().find(|s| {
                        matches!(s, Step::Delete { key: k, .. } if names(k) == names(&key.fields))
                    });
                    match existing {
                        Some(Step::Delete { rows, .. }) => rows.push((i, row_text(key))),
                        _ => table_steps.push(Step::Delete {
                            table: table.clone(),
                            key: key.fields.clone(),
                            rows: vec![(i, row_text(key))],
                        }),
                    }
                }
                RowChange::Upsert { row, .. } => {
                    push_insert(&mut table_steps, &table, i, row, true, false)
                }
                RowChange::Truncate { .. } => {}
            }
        }
        for &i in &plan.unkeyed {
            if let RowChange::Upsert { row, .. } = &changes[i].1 {
                push_insert(&mut table_steps, &table, i, row, false, false);
            }
        }
        // Deletes first, then the inserts (each key appears in one of them only).
        table_steps.sort_by_key(|s| !matches!(s, Step::Delete { .. }));
        steps.extend(table_steps);
    }
    steps
}

/// Adds `row` to a matching insert step (same columns, same key; with `only_last`, only to the
/// last step), or starts a new one.
fn push_insert(
    steps: &mut Vec<Step>,
    table: &TableId,
    i: usize,
    row: &Row,
    upsert: bool,
    only_last: bool,
) {
    let fits = |s: &Step| {
        matches!(s, Step::Insert { table: t, fields, key, upsert: u, .. }
            if t == table && *u == upsert && *key == row.key && names(fields) == names(&row.fields))
    };
    let existing = if only_last {
        steps.last_mut().filter(|s| fits(s))
    } else {
        steps.iter_mut().find(|s| fits(s))
    };
    match existing {
        Some(Step::Insert { rows, .. }) => rows.push((i, row_text(row))),
        _ => steps.push(Step::Insert {
            table: table.clone(),
            fields: row.fields.clone(),
            key: row.key.clone(),
            upsert: upsert && !row.key.is_empty(),
            rows: vec![(i, row_text(row))],
        }),
    }
}

/// Kafka order, runs of like statements merged; `upsert` says whether inserts are upserts
/// (the one-change-at-a-time replay of [`super`] uses it with upserts).
pub fn plan_in_order(changes: &[(Position, RowChange)], upsert: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, (_, change)) in changes.iter().enumerate() {
        match change {
            RowChange::Truncate { table } => steps.push(Step::Truncate {
                table: table.clone(),
                index: i,
            }),
            RowChange::Upsert { table, row } => {
                push_insert(&mut steps, table, i, row, upsert, true)
            }
            RowChange::Delete { table, key } => match steps.last_mut() {
                Some(Step::Delete {
                    table: t,
                    key: k,
                    rows,
                }) if t == table && names(k) == names(&key.fields) => rows.push((i, row_text(key))),
                _ => steps.push(Step::Delete {
                    table: table.clone(),
                    key: key.fields.clone(),
                    rows: vec![(i, row_text(key))],
                }),
            },
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{FieldType, Value};

    fn pos(offset: i64) -> Position {
        Position {
            topic: "t".into(),
            partition: 0,
            offset,
        }
    }

    fn orders() -> TableId {
        TableId::new(Some("public"), "orders")
    }

    fn upsert(id: i64, status: &str) -> RowChange {
        RowChange::Upsert {
            table: orders(),
            row: Row {
                fields: vec![
                    Field::new("id", FieldType::Int64, false),
                    Field::new("status", FieldType::Text, false),
                ],
                values: vec![Value::Int(id), Value::Text(status.into())],
                key: vec!["id".into()],
            },
        }
    }

    fn delete(id: i64) -> RowChange {
        RowChange::Delete {
            table: orders(),
            key: Row {
                fields: vec![Field::new("id", FieldType::Int64, false)],
                values: vec![Value::Int(id)],
                key: vec!["id".into()],
            },
        }
    }

    fn batch(changes: Vec<RowChange>) -> Vec<(Position, RowChange)> {
        changes
            .into_iter()
            .enumerate()
            .map(|(i, c)| (pos(i as i64), c))
            .collect()
    }

    #[test]
    fn upserts_fold_to_the_last_change_per_key() {
        let changes = batch(vec![
            upsert(1, "NEW"),
            upsert(1, "PAID"),
            upsert(2, "NEW"),
            delete(1),
            upsert(2, "SHIPPED"),
        ]);
        let steps = plan(&changes, InsertMode::Upsert);
        assert_eq!(steps.len(), 2, "{steps:#?}");
        let Step::Delete { rows, .. } = &steps[0] else {
            panic!("{steps:#?}")
        };
        assert_eq!(rows, &vec![(3, vec![Some("1".to_string())])]);
        let Step::Insert { rows, upsert, .. } = &steps[1] else {
            panic!()
        };
        assert!(upsert);
        assert_eq!(
            rows,
            &vec![(4, vec![Some("2".to_string()), Some("SHIPPED".to_string())])]
        );
    }

    #[test]
    fn a_truncate_drops_what_came_before_it() {
        let changes = batch(vec![
            upsert(1, "NEW"),
            RowChange::Truncate { table: orders() },
            upsert(2, "NEW"),
        ]);
        let steps = plan(&changes, InsertMode::Upsert);
        assert!(matches!(steps[0], Step::Truncate { index: 1, .. }));
        assert_eq!(steps[1].first_index(), 2);
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn insert_mode_keeps_kafka_order() {
        let changes = batch(vec![
            upsert(1, "NEW"),
            upsert(2, "NEW"),
            delete(1),
            upsert(1, "PAID"),
        ]);
        let steps = plan(&changes, InsertMode::Insert);
        let kinds: Vec<(usize, usize)> = steps.iter().map(|s| (s.first_index(), s.len())).collect();
        assert_eq!(kinds, vec![(0, 2), (2, 1), (3, 1)]);
        assert!(matches!(&steps[0], Step::Insert { upsert: false, .. }));
    }

    #[test]
    fn a_new_column_starts_a_second_insert() {
        let mut wider = upsert(2, "NEW");
        if let RowChange::Upsert { row, .. } = &mut wider {
            row.fields.push(Field::new("note", FieldType::Text, true));
            row.values.push(Value::Null);
        }
        let steps = plan(&batch(vec![upsert(1, "NEW"), wider]), InsertMode::Upsert);
        assert_eq!(steps.len(), 2);
        let Step::Insert { rows, .. } = &steps[1] else {
            panic!()
        };
        assert_eq!(rows[0].1[2], None);
    }
}
