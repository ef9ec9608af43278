//! One batch, one transaction: the exactly-once step.
//!
//! ```text
//! records ──decode──> changes + tombstones + poison
//!    poison ──> <topic>.dlq (awaited: acknowledged before the commit below)
//!    BEGIN
//!      single writer: check that this consumer still is the projection writer (projection_writer FOR SHARE)
//!      group member:  lock the batch's consumer_offsets rows (FOR UPDATE, sorted) and check each
//!                     still holds the offset this batch starts from ([`crate::group`])
//!      load the touched orders' states (from the cache, else selected) and seen outbox ids
//!      fold (pure: projections::BatchFold)
//!      write states, order_totals, order_status_totals deltas
//!      write consumer_offsets = last offset + 1 per partition; log the ranges with the epoch
//!    (group member: give up here if Kafka revoked one of the partitions meanwhile)
//!    COMMIT
//! ```
//!
//! Several group members add deltas to the same `order_totals` and `order_status_totals` rows
//! at once. Every transaction takes its row locks in one global order (offset rows sorted by
//! topic and partition, then `order_totals` by customer, then `order_status_totals` by status:
//! the deltas are written sorted), so two batches wait for each other but cannot deadlock.
//! Should PostgreSQL still report a deadlock (40P01) or a serialization failure (40001), the
//! batch is rolled back and applied again from the start, a few times, before the failure
//! ends the session ([`Applier::apply`]).
//!
//! A kill at any point before COMMIT leaves the database as it was: the batch is read again
//! from the stored offsets. A kill after COMMIT leaves the batch applied AND its offsets
//! moved. Either way the result is as if there had been no crash. (The dead-letter topic is
//! at-least-once: a kill between sending and COMMIT sends those dead letters again; the
//! headers name the original offset, which tells the copies apart. A replay reads the poison
//! records again, and sends them again.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use projections::{BatchFold, Position};
use sqlx::PgPool;

use crate::dlq::DeadLetters;
use crate::group::{self, Assignment};
use crate::kafka::TopicPartition;
use crate::projection_writer::{self, Fence};
use crate::record::{BatchRecord, Outcome};
use crate::state_cache::StateCache;
use crate::{offsets, store};

/// What a batch did.
#[derive(Debug, Default, Clone)]
pub struct BatchSummary {
    pub records: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub tombstones: u64,
    pub dead_letters: u64,
    /// The next offset of each partition the batch read.
    pub next_offsets: BTreeMap<TopicPartition, i64>,
}

/// Everything a batch is applied with; owned, so the consume loop can hand it to a task of
/// its own (the next batch is read and decoded meanwhile, on the other core).
pub struct Applier {
    pub pool: PgPool,
    pub dead_letters: DeadLetters,
    pub cache: StateCache,
    pub consumer: String,
    /// Who writes: checked in every batch's transaction.
    pub writer: Writer,
    /// Batches applied so far (every 1000th also prunes the batch log).
    pub batches: u64,
    /// Batches applied again after a deadlock or serialization failure.
    pub conflict_retries: u64,
}

/// Who may write a batch, and what its transaction checks.
#[derive(Clone)]
pub enum Writer {
    /// The only writer ([`crate::projection_writer`]): its claim.
    Single(Fence),
    /// A member of a consumer group ([`crate::group`]): the partitions Kafka assigned it,
    /// each with the stored offset its next batch must start from.
    Group(Arc<Assignment>),
}

impl Writer {
    /// What `projection_batches.writer_epoch` records: the claim's epoch, or a group
    /// member's process id.
    fn epoch(&self) -> i64 {
        match self {
            Writer::Single(fence) => fence.epoch,
            Writer::Group(_) => i64::from(std::process::id()),
        }
    }
}

/// How often a batch is applied again after a deadlock or a serialization failure.
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// Whether `error` is a deadlock (40P01) or a serialization failure (40001): the batch may
/// simply be applied again.
pub fn is_conflict(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let database = match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(database)) => Some(database),
            _ => match cause.downcast_ref::<group::GroupFenceError>() {
                Some(group::GroupFenceError::Database(sqlx::Error::Database(database))) => {
                    Some(database)
                }
                _ => None,
            },
        };
        database
            .and_then(|d| d.code())
            .is_some_and(|code| code == "40P01" || code == "40001")
    })
}

impl Applier {
    /// Applies `records` (in the order read) in one transaction, with their offsets.
    pub async fn apply(&mut self, records: &[BatchRecord]) -> anyhow::Result<BatchSummary> {
        self.batches += 1;
        let mut attempt = 1;
        loop {
            let result = apply_batch(
                &self.pool,
                &self.dead_letters,
                &mut self.cache,
                &self.consumer,
                &self.writer,
                self.batches.is_multiple_of(1000),
                records,
            )
            .await;
            if result.is_err() {
                self.cache.forget_all();
            }
            match result {
                Err(error) if attempt < CONFLICT_ATTEMPTS && is_conflict(&error) => {
                    self.conflict_retries += 1;
                    tracing::warn!("{error:#}; applying the batch again (attempt {attempt} of {CONFLICT_ATTEMPTS} failed)");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// Applies `records` (in the order read) in one transaction, with their offsets.
pub async fn apply_batch(
    pool: &PgPool,
    dead_letters: &DeadLetters,
    cache: &mut StateCache,
    consumer: &str,
    writer: &Writer,
    prune_log: bool,
    records: &[BatchRecord],
) -> anyhow::Result<BatchSummary> {
    let started = std::time::Instant::now();
    let mut summary = BatchSummary {
        records: records.len() as u64,
        ..BatchSummary::default()
    };
    let mut order_ids = Vec::new();
    let mut event_ids = Vec::new();
    let mut poison = Vec::new();
    let mut first_offsets: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for record in records {
        first_offsets
            .entry((record.topic.clone(), record.partition))
            .and_modify(|first| *first = (*first).min(record.offset))
            .or_insert(record.offset);
        summary
            .next_offsets
            .entry((record.topic.clone(), record.partition))
            .and_modify(|next| *next = (*next).max(record.offset + 1))
            .or_insert(record.offset + 1);
        match &record.outcome {
            Outcome::Change(event) => {
                order_ids.push(event.order_id);
                if let Position::EventId(id) = &event.position {
                    event_ids.push(id.clone());
                }
            }
            Outcome::Tombstone => summary.tombstones += 1,
            Outcome::Poison(p) => poison.push((record, p)),
        }
    }
    order_ids.sort_unstable();
    order_ids.dedup();

    if !poison.is_empty() {
        dead_letters.send(consumer, &poison).await?;
        summary.dead_letters = poison.len() as u64;
    }

    let partitions: BTreeSet<TopicPartition> = first_offsets.keys().cloned().collect();
    let mut tx = pool.begin().await.context("cannot start a transaction")?;
    match writer {
        Writer::Single(fence) => projection_writer::check(&mut tx, fence).await?,
        Writer::Group(assignment) => {
            let expected = assignment.expected_offsets(&partitions)?;
            group::check_offsets(&mut tx, consumer, &expected).await?;
        }
    }
    let (mut states, missing) = cache.take(&order_ids);
    if !missing.is_empty() {
        let stored = store::load_states(&mut tx, &missing)
            .await
            .context("cannot load order states")?;
        for (order_id, state) in stored.iter() {
            states.insert(order_id, state.clone());
        }
    }
    let seen = store::load_seen_event_ids(&mut tx, &event_ids)
        .await
        .context("cannot load outbox event ids")?;
    let mut fold = BatchFold::new(states, seen);
    for record in records {
        if let Outcome::Change(event) = &record.outcome {
            fold.apply(event).with_context(|| {
                format!(
                    "cannot apply {}/{}@{}: the totals would overflow",
                    record.topic, record.partition, record.offset
                )
            })?;
        }
    }
    summary.applied = fold.applied;
    summary.duplicates = fold.duplicates;
    store::write_fold(&mut tx, &mut fold)
        .await
        .context("cannot write the projections")?;
    offsets::save(&mut tx, consumer, &summary.next_offsets)
        .await
        .context("cannot store the offsets")?;
    let ranges = first_offsets
        .into_iter()
        .filter_map(|(tp, first)| {
            let next = summary.next_offsets.get(&tp).copied()?;
            Some((tp, (first, next)))
        })
        .collect();
    offsets::log_batch(&mut tx, consumer, &ranges, writer.epoch())
        .await
        .context("cannot log the batch")?;
    if prune_log {
        offsets::prune_batch_log(&mut tx)
            .await
            .context("cannot prune the batch log")?;
    }
    match writer {
        Writer::Single(_) => tx.commit().await.context("cannot commit the batch")?,
        Writer::Group(assignment) => {
            // Kafka may have revoked a partition while the batch was written: then it is
            // abandoned here; else a revocation waits until this COMMIT is over.
            if let Err(revoked) = assignment.begin_commit(&partitions) {
                let _ = tx.rollback().await;
                return Err(revoked.into());
            }
            let committed = tx.commit().await;
            assignment.end_commit(
                &partitions,
                committed.is_ok().then_some(&summary.next_offsets),
            );
            committed.context("cannot commit the batch")?;
        }
    }
    cache.remember(fold.into_states());
    let commits: Vec<i64> = records.iter().filter_map(|r| r.source_commit_us).collect();
    crate::metrics::batch_committed(&summary, started.elapsed(), &commits);
    Ok(summary)
}
