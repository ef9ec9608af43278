//! The initial snapshot on several connections (`--snapshot-max-threads N`): the same snapshot,
//! read in parallel, sent in one order.
//!
//! ```text
//! slot's exported snapshot '00000003-00000002-1'
//!   ├─ worker 1: BEGIN REPEATABLE READ; SET TRANSACTION SNAPSHOT '...'; orders id <  50000
//!   ├─ worker 2:   (same snapshot)                                     orders id >= 50000 AND id < 100000
//!   ├─ worker 3:                                                       orders id >= 100000 ...
//!   └─ worker 4:                                                       order_items (whole)
//!                    │ each worker turns its rows into op "r" records (the envelope JSON)
//!                    │ each part: a bounded channel of record batches
//!                    ▼
//! stream (one task): part 1, then part 2, ... in plan order -> the producer, with the markers
//! ```
//!
//! Every connection imports the one exported snapshot, so all of them see exactly the rows
//! committed before the slot's consistent point: no row missing, none doubled. A table with a
//! one-column primary key and more than [`SPLIT_ABOVE_ROWS`] rows (PostgreSQL's estimate) is
//! split into key ranges, so a big table is not one long cursor: an integer key into equal
//! spans between its min and max, any other key (text, uuid, numeric, a timestamp) at
//! boundaries sampled from the table:
//!
//! ```text
//! SELECT unnest(percentile_disc(ARRAY[0.25,0.5,0.75]) WITHIN GROUP (ORDER BY code))::text
//!   FROM public.codes TABLESAMPLE SYSTEM (8.5)          -> 3fa1.., 7c02.., bb9e..
//! parts: code < '3fa1..' | code >= '3fa1..' AND code < '7c02..' | ... | code >= 'bb9e..'
//! ```
//!
//! The sample's order and the ranges' comparisons are the same: the key type's default btree
//! ordering under the column's collation (an untyped literal takes the column's type), so the
//! ranges cover every key once whatever the sample was; a poor sample only makes parts uneven. The stream takes
//! the parts in plan order, whatever order the workers finish in, so the snapshot markers
//! (`first`, `first_in_data_collection`, ..., `last`) come out as with one connection.
//!
//! The workers also build the records (the JSON of each envelope is most of the snapshot's
//! work: with schemas a row of `orders` is ~4 KB), so N connections use N cores for it and the
//! stream's task only hands records to the producer. A worker cannot know which record ends
//! a table, so it builds every record with the marker `true` and sends each batch's first and
//! last rows as text too: the stream rebuilds the one or two records whose marker differs.
//! Memory stays flat: each part's channel holds a few batches of [`RECORDS_PER_BATCH`]
//! records, and a worker waits when it is full. Workers take parts in plan order, so the part
//! the stream reads is always being read.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::catalog::Catalog;
use crate::changes::{OutputRecord, SnapshotRowBuilder};
use crate::envelope::SnapshotMarker;
use crate::replication::slot::{quote_ident, quote_literal};
use crate::snapshot::{text_rows, SnapshotError, SnapshotTable, FETCH_SIZE};
use crate::ReaderError;

/// Tables estimated above this many rows are split into key ranges.
pub const SPLIT_ABOVE_ROWS: u64 = 4 * FETCH_SIZE as u64;
/// Batches a part may hold before its worker waits for the stream.
const BATCHES_PER_PART: usize = 4;
/// Records per batch a worker sends (a fetch of [`FETCH_SIZE`] rows goes out in several).
pub const RECORDS_PER_BATCH: usize = 250;

/// A row's values as text, in the relation's column order.
pub type Row = Vec<Option<String>>;
type Batch = Result<RecordBatch, ReaderError>;

/// Consecutive rows of one part, their records built by the worker.
#[derive(Debug)]
pub struct RecordBatch {
    /// One per row, with the marker `true`; empty when the table's rows are not written (an
    /// outbox table).
    pub records: Vec<OutputRecord>,
    /// How many rows the batch has.
    pub rows: usize,
    /// The first and the last row as text, for the stream to rebuild their records when
    /// they start or end the table.
    pub first_row: Row,
    pub last_row: Row,
}

fn query_error(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SnapshotError {
    let context = context.into();
    move |source| SnapshotError::Query { context, source }
}

/// One part of the plan: a table, or a key range of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub table: usize,
    pub select: String,
}

/// The parts of one table: its whole, or `ranges` key ranges between `min` and `max`.
pub fn plan_table(
    table_index: usize,
    select_all: &str,
    key: Option<(&str, i64, i64)>,
    ranges: usize,
) -> Vec<Part> {
    let part = |select: String| Part {
        table: table_index,
        select,
    };
    let Some((column, min, max)) = key.filter(|_| ranges > 1) else {
        return vec![part(select_all.to_string())];
    };
    // No more ranges than keys; the first and last ranges are open-ended.
    let span = (max as i128 - min as i128 + 1).max(1);
    let ranges = (ranges as i128).min(span);
    let step = span / ranges;
    let column = quote_ident(column);
    let mut parts = Vec::with_capacity(ranges as usize);
    for i in 0..ranges {
        let lower = (i > 0).then(|| min as i128 + step * i);
        let upper = (i + 1 < ranges).then(|| min as i128 + step * (i + 1));
        let condition = match (lower, upper) {
            (None, Some(upper)) => format!("{column} < {upper}"),
            (Some(lower), Some(upper)) => format!("{column} >= {lower} AND {column} < {upper}"),
            (Some(lower), None) => format!("{column} >= {lower}"),
            (None, None) => "true".into(),
        };
        parts.push(part(format!("{select_all} WHERE {condition}")));
    }
    parts
}

fn select_all(table: &SnapshotTable) -> String {
    let columns: Vec<String> = table
        .relation
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    format!(
        "SELECT {} FROM {}.{}",
        columns.join(", "),
        quote_ident(table.relation.schema()),
        quote_ident(&table.relation.name)
    )
}

/// The table's one-column primary key, and whether it is of an integer type.
fn single_key(table: &SnapshotTable) -> Option<(&str, bool)> {
    let keys: Vec<_> = table
        .relation
        .columns
        .iter()
        .filter(|c| c.flags & 1 == 1)
        .collect();
    match keys.as_slice() {
        [key] => Some((key.name.as_str(), matches!(key.type_oid, 20 | 21 | 23))),
        _ => None,
    }
}

/// The parts of one table split at `boundaries` (key values as text, in key order; repeated
/// values are taken once): below the first, between each two, from the last on.
pub fn plan_ranges(
    table_index: usize,
    select_all: &str,
    column: &str,
    boundaries: &[String],
) -> Vec<Part> {
    let mut boundaries: Vec<&String> = boundaries.iter().collect();
    boundaries.dedup();
    let part = |condition: String| Part {
        table: table_index,
        select: format!("{select_all} WHERE {condition}"),
    };
    if boundaries.is_empty() {
        return vec![Part {
            table: table_index,
            select: select_all.to_string(),
        }];
    }
    let column = quote_ident(column);
    let mut parts = vec![part(format!("{column} < {}", quote_literal(boundaries[0])))];
    for pair in boundaries.windows(2) {
        parts.push(part(format!(
            "{column} >= {} AND {column} < {}",
            quote_literal(pair[0]),
            quote_literal(pair[1])
        )));
    }
    if let Some(last) = boundaries.last() {
        parts.push(part(format!("{column} >= {}", quote_literal(last))));
    }
    parts
}

/// Rows sampled to place the boundaries of a non-integer key.
const SAMPLED_ROWS: f64 = 20_000.0;

/// `ranges - 1` boundaries of `column` that cut the table into about equal parts, sampled
/// (`TABLESAMPLE SYSTEM`, about [`SAMPLED_ROWS`] rows), as text. None when the sample is empty.
pub async fn sample_boundaries(
    client: &Client,
    table: &SnapshotTable,
    column: &str,
    ranges: usize,
) -> Result<Vec<String>, SnapshotError> {
    if ranges < 2 {
        return Ok(Vec::new());
    }
    let fractions: Vec<String> = (1..ranges)
        .map(|i| format!("{}", i as f64 / ranges as f64))
        .collect();
    let percent = (100.0 * SAMPLED_ROWS / table.estimated_rows.max(1) as f64).clamp(0.01, 100.0);
    let sql = format!(
        "SELECT unnest(percentile_disc(ARRAY[{}]::float8[]) WITHIN GROUP (ORDER BY {col}))::text \
         FROM {}.{} TABLESAMPLE SYSTEM ({percent})",
        fractions.join(","),
        quote_ident(table.relation.schema()),
        quote_ident(&table.relation.name),
        col = quote_ident(column),
    );
    let rows = client.query(&sql, &[]).await.map_err(query_error(
        "sampling key boundaries for the parallel snapshot",
    ))?;
    Ok(rows
        .iter()
        .filter_map(|row| row.get::<_, Option<String>>(0))
        .collect())
}

/// The workers' output: per table, its parts' channels in plan order.
pub struct ParallelReads {
    tables: Vec<VecDeque<mpsc::Receiver<Batch>>>,
}

/// The batches of one table, part after part.
pub struct TableBatches {
    parts: VecDeque<mpsc::Receiver<Batch>>,
}

impl TableBatches {
    /// The next batch (None when the table is done).
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, ReaderError> {
        while let Some(part) = self.parts.front_mut() {
            match part.recv().await {
                Some(batch) => return batch.map(Some),
                None => {
                    self.parts.pop_front();
                }
            }
        }
        Ok(None)
    }
}

impl ParallelReads {
    /// The batches of table `index` (of the list given to [`start`]).
    pub fn table(&mut self, index: usize) -> TableBatches {
        TableBatches {
            parts: self
                .tables
                .get_mut(index)
                .map(std::mem::take)
                .unwrap_or_default(),
        }
    }
}

/// Plans the parts (on `planner`, a connection inside the same snapshot) and starts `threads`
/// workers, each on its own connection importing `snapshot_name`; `builders` has each table's
/// record builder (None: its rows are read, not written).
pub async fn start(
    planner: &Client,
    url: &str,
    timeout: Duration,
    snapshot_name: &str,
    tables: &[SnapshotTable],
    builders: Vec<Option<SnapshotRowBuilder>>,
    threads: usize,
) -> Result<ParallelReads, SnapshotError> {
    let mut parts = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        let select = select_all(table);
        let key = single_key(table).filter(|_| table.estimated_rows > SPLIT_ABOVE_ROWS);
        let key = match key {
            Some((column, false)) => {
                let boundaries = sample_boundaries(planner, table, column, threads).await?;
                parts.extend(plan_ranges(index, &select, column, &boundaries));
                continue;
            }
            Some((column, true)) => {
                let row = planner
                    .query_one(
                        &format!(
                            "SELECT min({0})::int8, max({0})::int8 FROM {1}.{2}",
                            quote_ident(column),
                            quote_ident(table.relation.schema()),
                            quote_ident(&table.relation.name)
                        ),
                        &[],
                    )
                    .await
                    .map_err(query_error("planning the parallel snapshot"))?;
                match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
                    (Some(min), Some(max)) => Some((column, min, max)),
                    _ => None,
                }
            }
            None => None,
        };
        parts.extend(plan_table(index, &select, key, threads));
    }
    tracing::info!(threads, parts = parts.len(), "parallel snapshot plan");
    let mut per_table: Vec<VecDeque<mpsc::Receiver<Batch>>> =
        (0..tables.len()).map(|_| VecDeque::new()).collect();
    let mut queue = VecDeque::new();
    for part in parts {
        let (sender, receiver) = mpsc::channel(BATCHES_PER_PART);
        per_table[part.table].push_back(receiver);
        let builder = builders.get(part.table).cloned().flatten();
        queue.push_back((part.select, builder, sender));
    }
    let queue = Arc::new(Mutex::new(queue));
    for worker in 0..threads {
        let catalog = Catalog::connect_with_timeout(url, timeout).await?;
        let client = catalog.client();
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                quote_literal(snapshot_name)
            ))
            .await
            .map_err(query_error(
                "importing the snapshot on a parallel connection",
            ))?;
        let queue = queue.clone();
        tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some((select, builder, sender)) = next else {
                    break;
                };
                let read = read_part(catalog.client(), worker, &select, builder, &sender).await;
                if let Err(error) = read {
                    let _ = sender.send(Err(error)).await;
                    break;
                }
            }
            let _ = catalog.client().batch_execute("COMMIT").await;
        });
    }
    Ok(ParallelReads { tables: per_table })
}

/// Reads one part through a cursor, builds its records, and sends them into its channel.
async fn read_part(
    client: &Client,
    worker: usize,
    select: &str,
    builder: Option<SnapshotRowBuilder>,
    sender: &mpsc::Sender<Batch>,
) -> Result<(), ReaderError> {
    let cursor = format!("cdc_parallel_{worker}");
    client
        .batch_execute(&format!("DECLARE {cursor} NO SCROLL CURSOR FOR {select}"))
        .await
        .map_err(query_error(format!("DECLARE {select}")))?;
    loop {
        let messages = client
            .simple_query(&format!("FETCH {FETCH_SIZE} FROM {cursor}"))
            .await
            .map_err(query_error(format!("FETCH from {cursor}")))?;
        let rows = text_rows(messages);
        let done = rows.len() < FETCH_SIZE;
        for rows in rows.chunks(RECORDS_PER_BATCH) {
            let batch = build_batch(builder.as_ref(), rows)?;
            if sender.send(Ok(batch)).await.is_err() {
                return Ok(()); // the stream gave up (an error elsewhere)
            }
        }
        if done {
            break;
        }
    }
    client
        .batch_execute(&format!("CLOSE {cursor}"))
        .await
        .map_err(query_error("CLOSE cursor"))?;
    Ok(())
}

/// The records of `rows` (not empty), all with the marker `true`.
fn build_batch(
    builder: Option<&SnapshotRowBuilder>,
    rows: &[Row],
) -> Result<RecordBatch, ReaderError> {
    let records = match builder {
        Some(builder) => rows
            .iter()
            .map(|row| builder.build(row, SnapshotMarker::True))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(RecordBatch {
        records,
        rows: rows.len(),
        first_row: rows.first().cloned().unwrap_or_default(),
        last_row: rows.last().cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WHERE conditions of parts planned over `SELECT * FROM t`.
    fn conditions(parts: &[Part]) -> Vec<String> {
        parts
            .iter()
            .map(|p| {
                p.select
                    .trim_start_matches("SELECT * FROM t WHERE ")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn big_tables_split_into_key_ranges_that_cover_every_key() {
        let parts = plan_table(0, "SELECT * FROM t", Some(("id", 1, 100)), 4);
        let conditions = conditions(&parts);
        assert_eq!(
            conditions,
            [
                "\"id\" < 26",
                "\"id\" >= 26 AND \"id\" < 51",
                "\"id\" >= 51 AND \"id\" < 76",
                "\"id\" >= 76"
            ]
        );
        assert_eq!(plan_table(1, "SELECT * FROM t", None, 4).len(), 1);
        assert_eq!(
            plan_table(1, "SELECT * FROM t", Some(("id", 5, 5)), 1).len(),
            1
        );
        let tiny = plan_table(0, "S", Some(("id", 1, 2)), 4);
        assert!(
            tiny.last().unwrap().select.ends_with("\"id\" >= 2"),
            "{tiny:?}"
        );
    }

    #[test]
    fn other_keys_split_at_their_sampled_boundaries() {
        let boundaries = ["b".to_string(), "it's".to_string(), "it's".to_string()];
        let parts = plan_ranges(2, "SELECT * FROM t", "code", &boundaries);
        let conditions = conditions(&parts);
        assert_eq!(
            conditions,
            [
                "\"code\" < 'b'",
                "\"code\" >= 'b' AND \"code\" < 'it''s'",
                "\"code\" >= 'it''s'"
            ]
        );
        assert!(parts.iter().all(|p| p.table == 2));
        let whole = plan_ranges(0, "SELECT * FROM t", "code", &[]);
        assert_eq!(
            whole,
            vec![Part {
                table: 0,
                select: "SELECT * FROM t".into()
            }]
        );
    }
}
