//! The incremental snapshot's SQL, on the reader's ordinary (catalog) connection: watermark
//! rows, a table's primary key, one chunk, and the progress kept beside the initial snapshot's
//! bookkeeping (`cdc_reader_snapshots`), in `cdc_reader_incremental_snapshots`.
//!
//! ```text
//! INSERT INTO public.debezium_signal VALUES ('8f1c..-open', 'snapshot-window-open', '{...}');
//! SELECT "id", "customer_id", ... FROM "public"."orders"
//!  WHERE ("id") > ('1024') AND ("id") <= ('200000') AND (customer_id > 10)   -- filter: optional
//!  ORDER BY "id" LIMIT 1024;
//! INSERT INTO public.debezium_signal VALUES ('8f1c..-close', 'snapshot-window-close', '{...}');
//! ```
//!
//! Key values travel as text literals: PostgreSQL casts them to the key columns' types, and the
//! text is what the stream's pgoutput values look like too (both come from the type's output
//! function), so a streamed key and a read key compare equal.

use tokio_postgres::Client;

use super::window::{ChunkRequest, Key, Progress, Row};
use crate::pgoutput::Relation;
use crate::replication::slot::{quote_ident, quote_literal, quote_table};
use crate::snapshot::SnapshotError;

fn query_error(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SnapshotError {
    let context = context.into();
    move |source| SnapshotError::Query { context, source }
}

/// What to run to create Debezium's signal table (shown when it is missing).
pub fn create_signal_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE {} (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))",
        quote_table(table)
    )
}

/// Checks that the signal table exists with Debezium's columns; returns its OID.
pub async fn signal_table_oid(client: &Client, table: &str) -> Result<u32, String> {
    let row = client
        .query_opt(
            "SELECT c.oid, array_agg(a.attname::text ORDER BY a.attnum)
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.oid = to_regclass($1) GROUP BY c.oid",
            &[&quote_table(table)],
        )
        .await
        .map_err(|e| format!("looking up the signal table {table}: {e}"))?;
    let Some(row) = row else {
        return Err(format!(
            "the signal table {table} (--signal-data-collection) does not exist: create it with `{}`",
            create_signal_table_sql(table)
        ));
    };
    let columns: Vec<String> = row.get(1);
    if columns
        .iter()
        .take(3)
        .map(String::as_str)
        .ne(["id", "type", "data"])
    {
        return Err(format!(
            "the signal table {table} has columns {columns:?}; Debezium's layout is id, type, data: `{}`",
            create_signal_table_sql(table)
        ));
    }
    Ok(row.get(0))
}

/// Writes one watermark row (`<chunk>-open` / `<chunk>-close`), committed at once.
pub async fn write_watermark(
    client: &Client,
    signal_table: &str,
    chunk_id: &str,
    kind: &str,
) -> Result<(), SnapshotError> {
    let suffix = if kind == super::signal::WINDOW_OPEN {
        "open"
    } else {
        "close"
    };
    let data = format!(
        "{{\"{}WindowTimestamp\":\"{}\"}}",
        suffix,
        crate::changes::now_micros()
    );
    client
        .execute(
            &format!(
                "INSERT INTO {} (id, type, data) VALUES ($1, $2, $3)",
                quote_table(signal_table)
            ),
            &[&format!("{chunk_id}-{suffix}"), &kind, &data],
        )
        .await
        .map_err(query_error(format!(
            "writing a watermark into {signal_table}"
        )))?;
    Ok(())
}

/// The table's primary-key columns in key order, or why it cannot be snapshotted incrementally.
pub async fn primary_key(
    client: &Client,
    table: &str,
) -> Result<Result<Vec<String>, String>, SnapshotError> {
    let rows = client
        .query(
            "SELECT a.attname::text
               FROM pg_index i
               JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = to_regclass($1) AND i.indisprimary
              ORDER BY k.position",
            &[&quote_table(table)],
        )
        .await
        .map_err(query_error(format!("primary key of {table}")))?;
    if rows.is_empty() {
        return Ok(Err(format!(
            "{table} has no primary key: an incremental snapshot reads a table in primary-key order, \
             chunk by chunk, and matches streamed changes to read rows by key. Add one \
             (ALTER TABLE {table} ADD PRIMARY KEY (...)) and send the signal again"
        )));
    }
    Ok(Ok(rows.iter().map(|r| r.get(0)).collect()))
}

/// The parts of a chunk query that depend only on the table.
pub struct ChunkQuery {
    pub table: String,
    columns: String,
    key_list: String,
    /// Positions of the key columns in the row.
    pub key_positions: Vec<usize>,
}

impl ChunkQuery {
    pub fn new(relation: &Relation, key_columns: &[String]) -> Self {
        let columns = relation
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let key_positions = key_columns
            .iter()
            .filter_map(|key| relation.columns.iter().position(|c| &c.name == key))
            .collect();
        ChunkQuery {
            table: format!(
                "{}.{}",
                quote_ident(relation.schema()),
                quote_ident(&relation.name)
            ),
            columns,
            key_list: key_columns
                .iter()
                .map(|k| quote_ident(k))
                .collect::<Vec<_>>()
                .join(", "),
            key_positions,
        }
    }

    fn key_literal(key: &Key) -> String {
        key.iter()
            .map(|v| quote_literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The SQL of one chunk (pure; the unit test shows it).
    pub fn chunk_sql(&self, request: &ChunkRequest) -> String {
        let mut conditions = Vec::new();
        if let Some(after) = &request.after {
            conditions.push(format!(
                "({}) > ({})",
                self.key_list,
                Self::key_literal(after)
            ));
        }
        if let Some(up_to) = &request.up_to {
            conditions.push(format!(
                "({}) <= ({})",
                self.key_list,
                Self::key_literal(up_to)
            ));
        }
        if let Some(filter) = &request.table.filter {
            conditions.push(format!("({filter})"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        format!(
            "SELECT {} FROM {}{filter} ORDER BY {} LIMIT {}",
            self.columns, self.table, self.key_list, request.limit
        )
    }

    /// The SQL of the largest key (with the filter, if any).
    pub fn max_key_sql(&self, filter: Option<&str>) -> String {
        let descending = self
            .key_list
            .split(", ")
            .map(|k| format!("{k} DESC"))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = filter.map(|f| format!(" WHERE ({f})")).unwrap_or_default();
        format!(
            "SELECT {} FROM {}{filter} ORDER BY {descending} LIMIT 1",
            self.key_list, self.table
        )
    }

    /// The key of a row read by [`Self::chunk_sql`].
    pub fn key_of(&self, row: &Row) -> Key {
        self.key_positions
            .iter()
            .map(|&i| row.get(i).cloned().flatten().unwrap_or_default())
            .collect()
    }

    /// Reads the largest key.
    pub async fn max_key(
        &self,
        client: &Client,
        filter: Option<&str>,
    ) -> Result<Option<Key>, SnapshotError> {
        let rows = text_rows(client, &self.max_key_sql(filter), &self.table).await?;
        Ok(rows
            .into_iter()
            .next()
            .map(|row| row.into_iter().map(Option::unwrap_or_default).collect()))
    }

    /// Reads one chunk: (key, row) in key order.
    pub async fn read(
        &self,
        client: &Client,
        request: &ChunkRequest,
    ) -> Result<Vec<(Key, Row)>, SnapshotError> {
        let rows = text_rows(client, &self.chunk_sql(request), &self.table).await?;
        Ok(rows
            .into_iter()
            .map(|row| (self.key_of(&row), row))
            .collect())
    }
}

async fn text_rows(client: &Client, sql: &str, table: &str) -> Result<Vec<Row>, SnapshotError> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(query_error(format!("reading a chunk of {table}")))?;
    Ok(crate::snapshot::text_rows(messages))
}

/// The progress table, next to `cdc_reader_snapshots`.
pub async fn ensure_progress_table(client: &Client) -> Result<(), SnapshotError> {
    crate::snapshot::create_bookkeeping_table(
        client,
        "cdc_reader_incremental_snapshots",
        "slot_name   text PRIMARY KEY,
         progress    jsonb NOT NULL,
         updated_at  timestamptz NOT NULL DEFAULT now()",
    )
    .await
}

/// The progress stored for `slot` (none yet: a fresh one).
pub async fn load_progress(client: &Client, slot: &str) -> Result<Progress, SnapshotError> {
    let row = client
        .query_opt(
            "SELECT progress::text FROM cdc_reader_incremental_snapshots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(query_error("reading cdc_reader_incremental_snapshots"))?;
    Ok(row
        .and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok())
        .unwrap_or_default())
}

/// Stores the progress for `slot`.
pub async fn save_progress(
    client: &Client,
    slot: &str,
    progress: &Progress,
    flush: bool,
) -> Result<(), SnapshotError> {
    let json = serde_json::to_string(progress).unwrap_or_else(|_| "{}".into());
    // A write that only moves the position within a table is not flushed at commit (the
    // connection's synchronous_commit=on is for the watermarks and the signals' effects): lost
    // to a PostgreSQL crash, it only means a chunk read again.
    let begin = if flush {
        "BEGIN"
    } else {
        "BEGIN; SET LOCAL synchronous_commit = off"
    };
    client
        .batch_execute(begin)
        .await
        .map_err(query_error("writing cdc_reader_incremental_snapshots"))?;
    let written = client
        .execute(
            "INSERT INTO cdc_reader_incremental_snapshots (slot_name, progress) VALUES ($1, $2::text::jsonb)
             ON CONFLICT (slot_name) DO UPDATE SET progress = EXCLUDED.progress, updated_at = now()",
            &[&slot, &json],
        )
        .await;
    let end = if written.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = client.batch_execute(end).await;
    written.map_err(query_error("writing cdc_reader_incremental_snapshots"))?;
    ended.map_err(query_error("writing cdc_reader_incremental_snapshots"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incremental::signal::RequestedTable;
    use crate::pgoutput::{Column, ReplicaIdentity};

    #[test]
    fn chunk_queries_go_in_key_order_between_the_bounds() {
        let column = |name: &str| Column {
            flags: 0,
            name: name.into(),
            type_oid: 23,
            type_modifier: -1,
        };
        let relation = Relation {
            id: 1,
            namespace: "public".into(),
            name: "order_items".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![column("sku"), column("order_id"), column("line_no")],
        };
        let query = ChunkQuery::new(&relation, &["order_id".into(), "line_no".into()]);
        assert_eq!(query.key_positions, [1, 2]);
        let request = ChunkRequest {
            table: RequestedTable {
                name: "public.order_items".into(),
                filter: Some("sku <> 'x'".into()),
            },
            after: Some(vec!["5".into(), "1".into()]),
            up_to: Some(vec!["9".into(), "2".into()]),
            needs_max_key: false,
            limit: 3,
        };
        assert_eq!(
            query.chunk_sql(&request),
            "SELECT \"sku\", \"order_id\", \"line_no\" FROM \"public\".\"order_items\" \
             WHERE (\"order_id\", \"line_no\") > ('5', '1') AND (\"order_id\", \"line_no\") <= ('9', '2') \
             AND (sku <> 'x') ORDER BY \"order_id\", \"line_no\" LIMIT 3"
        );
        assert_eq!(
            query.max_key_sql(None),
            "SELECT \"order_id\", \"line_no\" FROM \"public\".\"order_items\" ORDER BY \"order_id\" DESC, \"line_no\" DESC LIMIT 1"
        );
        let row = vec![Some("a".into()), Some("5".into()), Some("2".into())];
        assert_eq!(query.key_of(&row), ["5", "2"]);
    }
}
