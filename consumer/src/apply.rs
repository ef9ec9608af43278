//! One batch, one transaction: the exactly-once step.
//!
//! ```text
//! records ──decode──> changes + tombstones + poison
//!    poison ──> <topic>.dlq (awaited: acknowledged before the commit below)
//!    BEGIN
//!      check that this consumer still is the projection writer (projection_writer FOR SHARE)
//!      load the touched orders' states (from the cache, else selected) and seen outbox ids
//!      fold (pure: projections::BatchFold)
//!      write states, order_totals, order_status_totals deltas
//!      write consumer_offsets = last offset + 1 per partition; log the ranges with the epoch
//!    COMMIT
//! ```
//!
//! A kill at any point before COMMIT leaves the database as it was: the batch is read again
//! from the stored offsets. A kill after COMMIT leaves the batch applied AND its offsets
//! moved. Either way the result is as if there had been no crash. (The dead-letter topic is
//! at-least-once: a kill between sending and COMMIT sends those dead letters again; the
//! headers name the original offset, which tells the copies apart. A replay reads the poison
//! records again, and sends them again.)

use std::collections::BTreeMap;

use anyhow::Context;
use projections::{BatchFold, Position};
use sqlx::PgPool;

use crate::dlq::DeadLetters;
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
    /// This writer's claim, checked in every batch's transaction.
    pub fence: Fence,
    /// Batches applied so far (every 1000th also prunes the batch log).
    pub batches: u64,
}

impl Applier {
    /// Applies `records` (in the order read) in one transaction, with their offsets.
    pub async fn apply(&mut self, records: &[BatchRecord]) -> anyhow::Result<BatchSummary> {
        self.batches += 1;
        let result = apply_batch(
            &self.pool,
            &self.dead_letters,
            &mut self.cache,
            &self.consumer,
            &self.fence,
            self.batches.is_multiple_of(1000),
            records,
        )
        .await;
        if result.is_err() {
            self.cache.forget_all();
        }
        result
    }
}

/// Applies `records` (in the order read) in one transaction, with their offsets.
pub async fn apply_batch(
    pool: &PgPool,
    dead_letters: &DeadLetters,
    cache: &mut StateCache,
    consumer: &str,
    fence: &Fence,
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

    let mut tx = pool.begin().await.context("cannot start a transaction")?;
    projection_writer::check(&mut tx, fence).await?;
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
    offsets::log_batch(&mut tx, consumer, &ranges, fence.epoch)
        .await
        .context("cannot log the batch")?;
    if prune_log {
        offsets::prune_batch_log(&mut tx)
            .await
            .context("cannot prune the batch log")?;
    }
    tx.commit().await.context("cannot commit the batch")?;
    cache.remember(fold.into_states());
    let commits: Vec<i64> = records.iter().filter_map(|r| r.source_commit_us).collect();
    crate::metrics::batch_committed(&summary, started.elapsed(), &commits);
    Ok(summary)
}
