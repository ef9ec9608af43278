//! The offset store: where in each partition the projections are, kept in PostgreSQL.
//!
//! ```text
//! consumer_offsets
//!  consumer               | topic                   | partition | next_offset
//!  order-projections-cdc  | dbserver1.public.orders |         0 |       18342
//! ```
//!
//! `next_offset` is the offset of the first record NOT yet reflected in the projection
//! tables. It is written in the same transaction as the projection changes of the batch that
//! moved it, so the two can never disagree: after a crash the consumer seeks here and the
//! batch that was in flight is read again, its effects having been rolled back with it.
//! (Kafka's own committed offsets for the group are written after each commit too, but only
//! so `kafka-consumer-groups --describe` shows a lag; the consumer never reads them.)
//!
//! Every batch also logs the offset range it applied per partition, with the epoch of the
//! writer that applied it ([`crate::projection_writer`]), in `projection_batches`:
//!
//! ```text
//!  consumer               | topic                   | partition | first_offset | next_offset | writer_epoch
//!  order-projections-cdc  | dbserver1.public.orders |         0 |        18000 |       18342 |            7
//! ```
//!
//! In that log the ranges of a partition never overlap and their epochs never go down: each
//! offset was applied once, by one writer at a time.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};

use crate::kafka::TopicPartition;

/// The stored next offsets of `consumer` for the partitions of `topics`.
pub async fn load(
    pool: &PgPool,
    consumer: &str,
    topics: &[String],
) -> Result<BTreeMap<TopicPartition, i64>, sqlx::Error> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = ANY($2)",
    )
    .bind(consumer)
    .bind(topics)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, next)| ((topic, partition), next))
        .collect())
}

/// Stores the next offsets of `consumer` (inside the batch's transaction).
pub async fn save(
    tx: &mut PgConnection,
    consumer: &str,
    next_offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), sqlx::Error> {
    let topics: Vec<&str> = next_offsets
        .keys()
        .map(|(topic, _)| topic.as_str())
        .collect();
    let partitions: Vec<i32> = next_offsets
        .keys()
        .map(|(_, partition)| *partition)
        .collect();
    let offsets: Vec<i64> = next_offsets.values().copied().collect();
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) \
         SELECT $1, t, p, o FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS u(t, p, o) \
         ON CONFLICT (consumer, topic, partition) \
         DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
    )
    .bind(consumer)
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .execute(tx)
    .await?;
    Ok(())
}

/// Forgets every stored offset, of every consumer, and the batch log (inside the replay's
/// transaction).
///
/// All consumers feed the same projection tables, so once those are emptied no stored
/// position describes them any more.
pub async fn forget_all(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consumer_offsets")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projection_batches")
        .execute(tx)
        .await?;
    Ok(())
}

/// How many `projection_batches` rows are kept (the most recent).
pub const BATCH_LOG_ROWS: i64 = 100_000;

/// Logs the offset range `[first, next)` this batch applied in each partition, with the
/// writer's epoch (inside the batch's transaction).
pub async fn log_batch(
    tx: &mut PgConnection,
    consumer: &str,
    ranges: &BTreeMap<TopicPartition, (i64, i64)>,
    writer_epoch: i64,
) -> Result<(), sqlx::Error> {
    let topics: Vec<&str> = ranges.keys().map(|(topic, _)| topic.as_str()).collect();
    let partitions: Vec<i32> = ranges.keys().map(|(_, partition)| *partition).collect();
    let firsts: Vec<i64> = ranges.values().map(|(first, _)| *first).collect();
    let nexts: Vec<i64> = ranges.values().map(|(_, next)| *next).collect();
    sqlx::query(
        "INSERT INTO projection_batches (consumer, topic, partition, first_offset, next_offset, writer_epoch) \
         SELECT $1, t, p, f, n, $6 FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS u(t, p, f, n)",
    )
    .bind(consumer)
    .bind(topics)
    .bind(partitions)
    .bind(firsts)
    .bind(nexts)
    .bind(writer_epoch)
    .execute(tx)
    .await?;
    Ok(())
}

/// Deletes all but the most recent [`BATCH_LOG_ROWS`] rows of `projection_batches`.
pub async fn prune_batch_log(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM projection_batches WHERE id <= (SELECT max(id) FROM projection_batches) - $1",
    )
    .bind(BATCH_LOG_ROWS)
    .execute(tx)
    .await?;
    Ok(())
}
