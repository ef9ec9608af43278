//! The initial snapshot: the rows that were there before the slot, as `op: "r"` records.
//!
//! A new slot only sees changes committed after it was created. To start consumers with the
//! whole table, the reader creates the slot with an *exported snapshot* and reads every captured
//! table inside that very snapshot:
//!
//! ```text
//! replication connection: CREATE_REPLICATION_SLOT s LOGICAL pgoutput EXPORT_SNAPSHOT
//!                         -> consistent_point 0/1A2B3C8, snapshot_name 00000003-00000002-1
//! SQL connection:         BEGIN ISOLATION LEVEL REPEATABLE READ;
//!                         SET TRANSACTION SNAPSHOT '00000003-00000002-1';
//!                         DECLARE c CURSOR FOR SELECT ... FROM orders;  FETCH 2000 FROM c; ...
//!                         COMMIT;
//! replication connection: START_REPLICATION SLOT s LOGICAL 0/1A2B3C8
//! ```
//!
//! The snapshot shows exactly the transactions committed before the consistent point, and the
//! slot streams exactly those committed after it: no change missed, none doubled. Rows are read
//! with a cursor in batches, so memory stays flat on a table of any size.
//!
//! Whether a slot's snapshot finished is kept in a small table in the captured database,
//! `cdc_reader_snapshots`: a restart in the middle of a snapshot finds the row unfinished, drops
//! the slot it created itself and starts over (the records already sent come again).

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::catalog::{Catalog, CatalogError, TableFacts};
use crate::pgoutput::{Column, Relation, ReplicaIdentity};
use crate::replication::slot::{quote_ident, quote_literal, quote_table};

/// Rows fetched per round trip.
pub const FETCH_SIZE: usize = 2000;

/// `--snapshot-mode`, as Debezium names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SnapshotMode {
    /// Snapshot when the slot is new, then stream.
    Initial,
    /// Never snapshot: stream only.
    NoData,
    /// Snapshot at every start, then stream.
    Always,
    /// Snapshot when the slot is new, then exit.
    InitialOnly,
}

/// Errors while snapshotting.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot query failed ({context}): {source}")]
    Query {
        context: String,
        source: tokio_postgres::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("table {0} does not exist")]
    MissingTable(String),
    /// The incremental snapshot's setup cannot go on (the signal table is missing, ...).
    #[error("{0}")]
    Incremental(String),
}

fn query_error(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SnapshotError {
    let context = context.into();
    move |source| SnapshotError::Query { context, source }
}

/// `CREATE TABLE IF NOT EXISTS` for one of the reader's bookkeeping tables, safe when two
/// readers of the same database start at once.
///
/// Two sessions running `CREATE TABLE IF NOT EXISTS t` at the same moment can both see no `t`
/// and the second then fails on the catalog's unique index (`pg_type_typname_nsp_index`): the
/// "IF NOT EXISTS" check is not atomic. A transaction-scoped advisory lock on the table's name
/// makes the second reader wait for the first one's commit, then find the table.
pub(crate) async fn create_bookkeeping_table(
    client: &Client,
    table: &str,
    columns: &str,
) -> Result<(), SnapshotError> {
    let sql = format!(
        "BEGIN;
         SELECT pg_advisory_xact_lock(hashtext({lock}));
         CREATE TABLE IF NOT EXISTS {table} ({columns});
         COMMIT;",
        lock = quote_literal(&format!("pgcdc-playground:{table}")),
    );
    if let Err(source) = client.batch_execute(&sql).await {
        // Leave the connection usable: the explicit transaction may still be open (aborted).
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(SnapshotError::Query {
            context: format!("creating {table}"),
            source,
        });
    }
    Ok(())
}

/// The bookkeeping table: which slot's snapshot is finished.
pub async fn ensure_state_table(client: &Client) -> Result<(), SnapshotError> {
    create_bookkeeping_table(
        client,
        "cdc_reader_snapshots",
        "slot_name     text PRIMARY KEY,
         started_at    timestamptz NOT NULL DEFAULT now(),
         completed_at  timestamptz",
    )
    .await
}

/// Did this reader start a snapshot for `slot` that never finished?
pub async fn unfinished(client: &Client, slot: &str) -> Result<bool, SnapshotError> {
    let row = client
        .query_opt(
            "SELECT completed_at IS NULL FROM cdc_reader_snapshots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(query_error("reading cdc_reader_snapshots"))?;
    Ok(row.map(|r| r.get::<_, bool>(0)).unwrap_or(false))
}

/// Records that a snapshot for `slot` starts (or starts again).
pub async fn mark_started(client: &Client, slot: &str) -> Result<(), SnapshotError> {
    client
        .execute(
            "INSERT INTO cdc_reader_snapshots (slot_name) VALUES ($1)
             ON CONFLICT (slot_name) DO UPDATE SET started_at = now(), completed_at = NULL",
            &[&slot],
        )
        .await
        .map_err(query_error("writing cdc_reader_snapshots"))?;
    Ok(())
}

/// Records that the snapshot for `slot` is delivered.
pub async fn mark_completed(client: &Client, slot: &str) -> Result<(), SnapshotError> {
    client
        .execute(
            "UPDATE cdc_reader_snapshots SET completed_at = now() WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(query_error("writing cdc_reader_snapshots"))?;
    Ok(())
}

/// Opens the snapshot transaction (importing `snapshot_name` when given) and returns its xid.
pub async fn begin(client: &Client, snapshot_name: Option<&str>) -> Result<i64, SnapshotError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(query_error("BEGIN"))?;
    if let Some(name) = snapshot_name {
        client
            .batch_execute(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(name)))
            .await
            .map_err(query_error("SET TRANSACTION SNAPSHOT"))?;
    }
    let row = client
        .query_one(
            "SELECT txid_current_if_assigned(), txid_snapshot_xmin(txid_current_snapshot())",
            &[],
        )
        .await
        .map_err(query_error("reading the snapshot's xid"))?;
    Ok(row
        .get::<_, Option<i64>>(0)
        .unwrap_or_else(|| row.get::<_, i64>(1)))
}

/// Exports the open snapshot transaction's snapshot, for parallel readers to import.
pub async fn export(client: &Client) -> Result<String, SnapshotError> {
    let row = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(query_error("pg_export_snapshot()"))?;
    Ok(row.get(0))
}

/// Ends the snapshot transaction.
pub async fn finish(client: &Client) -> Result<(), SnapshotError> {
    client
        .batch_execute("COMMIT")
        .await
        .map_err(query_error("COMMIT"))
}

/// A captured table described as a pgoutput Relation (the columns pgoutput would send: no
/// dropped or generated columns), with its catalog facts and a row estimate.
pub struct SnapshotTable {
    pub relation: Relation,
    pub facts: TableFacts,
    pub estimated_rows: u64,
}

/// Describes `table` (`schema.table`) inside the snapshot transaction.
pub async fn describe(catalog: &Catalog, table: &str) -> Result<SnapshotTable, SnapshotError> {
    let client = catalog.client();
    let row = client
        .query_opt(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relreplident::text, GREATEST(c.reltuples, 0)::bigint
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = to_regclass($1)",
            &[&quote_table(table)],
        )
        .await
        .map_err(query_error(format!("describing {table}")))?
        .ok_or_else(|| SnapshotError::MissingTable(table.to_string()))?;
    let id: u32 = row.get(0);
    let identity: String = row.get(3);
    let key_flags = catalog.table(id, table).await?;
    let columns = client
        .query(
            "SELECT attname::text, atttypid, atttypmod FROM pg_attribute
              WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
              ORDER BY attnum",
            &[&id],
        )
        .await
        .map_err(query_error(format!("columns of {table}")))?
        .into_iter()
        .map(|r| {
            let name: String = r.get(0);
            let is_key = key_flags.key_columns.contains(&name);
            Column {
                flags: u8::from(is_key),
                name,
                type_oid: r.get(1),
                type_modifier: r.get(2),
            }
        })
        .collect();
    let relation = Relation {
        id,
        namespace: row.get(1),
        name: row.get(2),
        replica_identity: ReplicaIdentity::from_byte(
            identity.as_bytes().first().copied().unwrap_or(b'd'),
        )
        .unwrap_or(ReplicaIdentity::Default),
        columns,
    };
    Ok(SnapshotTable {
        relation,
        facts: key_flags,
        estimated_rows: row.get::<_, i64>(4) as u64,
    })
}

/// Reads a table in batches through a cursor, inside the snapshot transaction.
/// (It holds no connection: each call is given the snapshot transaction's client.)
pub struct TableReader {
    cursor: String,
    done: bool,
}

impl TableReader {
    /// Declares the cursor over the relation's columns.
    pub async fn open(
        client: &Client,
        relation: &Relation,
        index: usize,
    ) -> Result<Self, SnapshotError> {
        let cursor = format!("cdc_snapshot_{index}");
        let columns: Vec<String> = relation
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let table = format!(
            "{}.{}",
            quote_ident(relation.schema()),
            quote_ident(&relation.name)
        );
        client
            .batch_execute(&format!(
                "DECLARE {cursor} NO SCROLL CURSOR FOR SELECT {} FROM {table}",
                columns.join(", ")
            ))
            .await
            .map_err(query_error(format!("DECLARE cursor on {table}")))?;
        Ok(TableReader {
            cursor,
            done: false,
        })
    }

    /// The next batch of rows as text values (empty when the table is exhausted).
    pub async fn next_batch(
        &mut self,
        client: &Client,
    ) -> Result<Vec<Vec<Option<String>>>, SnapshotError> {
        if self.done {
            return Ok(Vec::new());
        }
        let messages = client
            .simple_query(&format!("FETCH {FETCH_SIZE} FROM {}", self.cursor))
            .await
            .map_err(query_error(format!("FETCH from {}", self.cursor)))?;
        let rows = text_rows(messages);
        if rows.len() < FETCH_SIZE {
            self.done = true;
            client
                .batch_execute(&format!("CLOSE {}", self.cursor))
                .await
                .map_err(query_error("CLOSE cursor"))?;
        }
        Ok(rows)
    }
}

/// The rows of a simple-query answer as text values, column by column (`None`: NULL). Every
/// snapshot path reads this way (the cursor above, the parallel workers, the incremental
/// chunks): text is what the envelope builder takes, as pgoutput sends it when streaming.
pub fn text_rows(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
