//! The SQL text of each planned [`super::plan::Step`] (pure).
//!
//! Every statement takes one `text[]` parameter per column and casts in SQL to the column's
//! real type (read from the catalog), so one statement writes a whole batch:
//!
//! ```text
//! INSERT INTO "public"."orders" ("id", "status", "total")
//! SELECT u.c0::bigint, u.c1::text, u.c2::numeric(12,2)
//!   FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c0, c1, c2)
//! ON CONFLICT ("id") DO UPDATE SET "status" = EXCLUDED."status", "total" = EXCLUDED."total"
//!
//! DELETE FROM "public"."orders" WHERE ("id") IN
//!   (SELECT u.c0::bigint FROM unnest($1::text[]) AS u(c0))
//! ```

use crate::change::TableId;

/// `"name"`, with `"` doubled.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// `"schema"."table"`, or `"table"` (the search path's first schema).
pub fn table_name(table: &TableId) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(&table.table)),
        None => quote(&table.table),
    }
}

fn unnest(columns: &[(&str, &str)]) -> (String, String) {
    let casts: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("u.c{i}::{ty}"))
        .collect();
    let params: Vec<String> = (1..=columns.len())
        .map(|i| format!("${i}::text[]"))
        .collect();
    let aliases: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
    (
        casts.join(", "),
        format!("unnest({}) AS u({})", params.join(", "), aliases.join(", ")),
    )
}

/// `INSERT ... SELECT ... FROM unnest(...)`, with `ON CONFLICT (key) DO UPDATE` when `upsert`.
/// `columns` are (name, column type) in parameter order.
pub fn insert(table: &TableId, columns: &[(&str, &str)], key: &[String], upsert: bool) -> String {
    let names: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
    let (casts, from) = unnest(columns);
    let mut sql = format!(
        "INSERT INTO {} ({}) SELECT {casts} FROM {from}",
        table_name(table),
        names.join(", ")
    );
    if upsert && !key.is_empty() {
        let keys: Vec<String> = key.iter().map(|k| quote(k)).collect();
        let updates: Vec<String> = columns
            .iter()
            .filter(|(n, _)| !key.iter().any(|k| k == n))
            .map(|(n, _)| format!("{0} = EXCLUDED.{0}", quote(n)))
            .collect();
        if updates.is_empty() {
            sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", ")));
        } else {
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                keys.join(", "),
                updates.join(", ")
            ));
        }
    }
    sql
}

/// `DELETE ... WHERE (key) IN (SELECT ... FROM unnest(...))`.
pub fn delete(table: &TableId, key: &[(&str, &str)]) -> String {
    let names: Vec<String> = key.iter().map(|(n, _)| quote(n)).collect();
    let (casts, from) = unnest(key);
    format!(
        "DELETE FROM {} WHERE ({}) IN (SELECT {casts} FROM {from})",
        table_name(table),
        names.join(", ")
    )
}

pub fn truncate(table: &TableId) -> String {
    format!("TRUNCATE TABLE {}", table_name(table))
}

/// `CREATE TABLE IF NOT EXISTS` with the fields' types; NOT NULL where the schema says the
/// field is not optional; the key as PRIMARY KEY.
pub fn create_table(table: &TableId, columns: &[(&str, String, bool)], key: &[String]) -> String {
    let mut parts: Vec<String> = columns
        .iter()
        .map(|(name, ty, optional)| {
            let not_null = if *optional && !key.iter().any(|k| k == name) {
                ""
            } else {
                " NOT NULL"
            };
            format!("{} {ty}{not_null}", quote(name))
        })
        .collect();
    if !key.is_empty() {
        let keys: Vec<String> = key.iter().map(|k| quote(k)).collect();
        parts.push(format!("PRIMARY KEY ({})", keys.join(", ")));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        table_name(table),
        parts.join(", ")
    )
}

/// `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` (always nullable: rows already there have none).
pub fn add_column(table: &TableId, name: &str, ty: &str) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {ty}",
        table_name(table),
        quote(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let orders = TableId::new(Some("public"), "orders");
        assert_eq!(
            insert(&orders, &[("id", "bigint"), ("total", "numeric(12,2)")], &["id".into()], true),
            "INSERT INTO \"public\".\"orders\" (\"id\", \"total\") SELECT u.c0::bigint, u.c1::numeric(12,2) \
             FROM unnest($1::text[], $2::text[]) AS u(c0, c1) ON CONFLICT (\"id\") DO UPDATE SET \"total\" = EXCLUDED.\"total\""
        );
        assert!(insert(&orders, &[("id", "bigint")], &["id".into()], true).ends_with("DO NOTHING"));
        assert_eq!(
            delete(&orders, &[("id", "bigint")]),
            "DELETE FROM \"public\".\"orders\" WHERE (\"id\") IN (SELECT u.c0::bigint FROM unnest($1::text[]) AS u(c0))"
        );
        assert_eq!(
            create_table(
                &TableId::new(None, "we\"ird"),
                &[("id", "bigint".into(), false), ("note", "text".into(), true)],
                &["id".into()]
            ),
            "CREATE TABLE IF NOT EXISTS \"we\"\"ird\" (\"id\" bigint NOT NULL, \"note\" text, PRIMARY KEY (\"id\"))"
        );
    }
}
