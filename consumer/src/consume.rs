//! The consume loop: assign partitions at the stored offsets, read batches, apply each in
//! one transaction, until stopped (Ctrl-C) or, with `--until-caught-up`, until every
//! partition reaches the end offset it had at start.
//!
//! ```text
//! lock ─> (replay: empty projections + forget offsets, one transaction)
//!      ─> assign every partition at consumer_offsets.next_offset (or the earliest)
//!      ─> loop { read up to --batch-size records or --batch-timeout ─> apply_batch ─> commit to Kafka (informational) }
//! ```
//!
//! Only one consumer process writes the projections at a time: it holds a PostgreSQL
//! advisory lock for as long as it runs (released by the server when the process dies,
//! even by kill -9).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use projections::ChangeDecoder;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use crate::apply::Applier;
use crate::config::ConsumerArgs;
use crate::dlq::{dlq_topic, DeadLetters};
use crate::kafka::{self, TopicPartition};
use crate::record::{decode_record, BatchRecord};
use crate::state_cache::StateCache;
use crate::{offsets, store};

/// The advisory lock key every projection writer takes (`hashtext('order-projections')`).
const LOCK_NAME: &str = "order-projections";

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub records: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub tombstones: u64,
    pub dead_letters: u64,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the consumer against the database at `database_url`.
pub async fn consume(database_url: &str, args: &ConsumerArgs) -> anyhow::Result<RunSummary> {
    let pool = db::connect(database_url, 4).await?;
    db::require_schema(&pool, database_url).await?;
    store::require_tables(&pool).await?;
    let lock = lock(&pool).await?;
    let consumer_name = args.consumer_name();
    let topics = args.topics();

    if args.replay {
        let mut tx = pool.begin().await?;
        store::empty_projections(&mut tx)
            .await
            .context("cannot empty the projections")?;
        offsets::forget_all(&mut tx)
            .await
            .context("cannot forget the stored offsets")?;
        tx.commit()
            .await
            .context("cannot commit the replay's reset")?;
        tracing::info!("replay: projections emptied and offsets forgotten; reading {topics:?} from the earliest offsets");
    }

    let consumer = kafka::stream_consumer(&args.bootstrap_servers, &consumer_name)?;
    let marks = wait_for_topics(&consumer, &topics, args.until_caught_up).await?;
    for topic in &topics {
        kafka::ensure_topic(&args.bootstrap_servers, &dlq_topic(topic)).await?;
    }
    let dead_letters = DeadLetters::new(kafka::producer(&args.bootstrap_servers)?);

    let stored = offsets::load(&pool, &consumer_name, &topics)
        .await
        .context("cannot load the stored offsets")?;
    let mut positions: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for ((topic, partition), (low, _)) in &marks {
        let start = match stored.get(&(topic.clone(), *partition)) {
            Some(&next) if next >= *low => next,
            Some(&next) => {
                tracing::warn!("{topic}/{partition}: stored offset {next} is below the log start {low} (retention); starting at {low}");
                *low
            }
            None => *low,
        };
        positions.insert((topic.clone(), *partition), start);
        assignment.add_partition_offset(topic, *partition, Offset::Offset(start))?;
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the partitions")?;
    drop(assignment);
    let ends: BTreeMap<TopicPartition, i64> = marks
        .iter()
        .map(|(tp, (_, high))| (tp.clone(), *high))
        .collect();
    let to_read: u64 = ends
        .iter()
        .map(|(tp, end)| (end - positions.get(tp).copied().unwrap_or(0)).max(0) as u64)
        .sum();
    tracing::info!(
        "consumer {consumer_name}: reading {} partition(s) of {topics:?}, {to_read} record(s) behind",
        positions.len()
    );

    let progress = if args.replay || args.until_caught_up {
        let bar = ProgressBar::new(to_read);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {human_pos}/{human_len} records ({per_sec}, eta {eta}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    // While one batch is written to PostgreSQL, the next is read and decoded.
    let started = Instant::now();
    let mut summary = RunSummary::default();
    let mut last_log = Instant::now();
    let mut decoder = ChangeDecoder::new();
    let cache = StateCache::new(store::state_table_is_empty(&pool).await?);
    let mut applier = Some(Applier {
        pool: pool.clone(),
        dead_letters,
        cache,
        consumer: consumer_name.clone(),
    });
    let batch_size = args.batch_size as usize;
    let mut next = read_batch(&consumer, args, &mut decoder, batch_size).await?;
    loop {
        let Some(batch) = next.take() else {
            tracing::info!("stopping (Ctrl-C)");
            break;
        };
        if batch.is_empty() {
            if args.until_caught_up && caught_up(&consumer, &mut positions, &ends) {
                break;
            }
            next = read_batch(&consumer, args, &mut decoder, batch_size).await?;
            continue;
        }
        let last_batch = args.until_caught_up && reaches_ends(&batch, &positions, &ends);
        let step = Instant::now();
        let mut owned_applier = applier.take().context("the applier was lost")?;
        let apply = tokio::spawn(async move {
            let done = owned_applier.apply(&batch).await;
            tracing::debug!("batch of {} applied in {:?}", batch.len(), step.elapsed());
            (owned_applier, done)
        });
        let read = if last_batch {
            Ok(Some(Vec::new()))
        } else {
            let read = read_batch(&consumer, args, &mut decoder, batch_size).await;
            tracing::debug!("next batch read in {:?}", step.elapsed());
            read
        };
        let (returned_applier, done) = apply.await.context("the batch task failed")?;
        applier = Some(returned_applier);
        let done = done?;
        next = read?;
        summary.records += done.records;
        summary.applied += done.applied;
        summary.duplicates += done.duplicates;
        summary.tombstones += done.tombstones;
        summary.dead_letters += done.dead_letters;
        positions.extend(
            done.next_offsets
                .iter()
                .map(|(tp, next)| (tp.clone(), *next)),
        );
        commit_to_kafka(&consumer, &done.next_offsets);
        progress.inc(done.records);
        if done.dead_letters > 0 {
            tracing::warn!(
                "{} record(s) sent to the dead-letter topic",
                done.dead_letters
            );
        }
        if !(args.replay || args.until_caught_up) && last_log.elapsed() > Duration::from_secs(10) {
            tracing::info!(
                "{} records: {} applied, {} duplicates, {} dead letters",
                summary.records,
                summary.applied,
                summary.duplicates,
                summary.dead_letters
            );
            last_log = Instant::now();
        }
    }
    summary.elapsed = started.elapsed();
    progress.finish_and_clear();
    // Return the locked connection first: closing the pool waits for every connection.
    drop(lock);
    pool.close().await;
    Ok(summary)
}

/// Takes the projection writers' advisory lock, waiting while another consumer holds it.
async fn lock(pool: &PgPool) -> anyhow::Result<PoolConnection<Postgres>> {
    let mut connection = pool.acquire().await?;
    let mut waited = false;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(LOCK_NAME)
            .fetch_one(&mut *connection)
            .await?;
        if locked {
            return Ok(connection);
        }
        if !waited {
            tracing::warn!("another consumer is writing the projections (advisory lock `{LOCK_NAME}`); waiting for it to stop");
            waited = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The watermarks of every partition of `topics`, waiting for topics that do not exist yet
/// (unless the run must end once caught up: then a missing topic is an error).
async fn wait_for_topics(
    consumer: &StreamConsumer,
    topics: &[String],
    fail_fast: bool,
) -> anyhow::Result<BTreeMap<TopicPartition, (i64, i64)>> {
    let mut last_log: Option<Instant> = None;
    loop {
        match kafka::watermarks(consumer, topics) {
            Ok(marks) => return Ok(marks),
            Err(error) if fail_fast => return Err(error),
            Err(error) => {
                if last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                    tracing::warn!("{error:#}; waiting (start cdc-reader to create it)");
                    last_log = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Reads up to `batch_size` records: waits up to a second for the first, then at most
/// `--batch-timeout` for the rest. `None` on Ctrl-C.
async fn read_batch(
    consumer: &StreamConsumer,
    args: &ConsumerArgs,
    decoder: &mut ChangeDecoder,
    batch_size: usize,
) -> anyhow::Result<Option<Vec<BatchRecord>>> {
    let mut batch = Vec::with_capacity(batch_size.min(100_000));
    let first = tokio::select! {
        message = consumer.recv() => Some(message),
        _ = tokio::time::sleep(Duration::from_secs(1)) => None,
        _ = tokio::signal::ctrl_c() => return Ok(None),
    };
    match first {
        None => return Ok(Some(batch)),
        Some(Ok(message)) => batch.push(decode_record(args.from, decoder, &message)),
        Some(Err(error)) => {
            tracing::warn!("Kafka: {error}");
            return Ok(Some(batch));
        }
    }
    let deadline = tokio::time::Instant::now() + args.batch_timeout;
    while batch.len() < batch_size {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => batch.push(decode_record(args.from, decoder, &message)),
            Ok(Err(error)) => {
                tracing::warn!("Kafka: {error}");
                break;
            }
            Err(_) => break,
        }
    }
    Ok(Some(batch))
}

/// Whether, once `batch` is applied, every partition will have reached its end offset.
fn reaches_ends(
    batch: &[BatchRecord],
    positions: &BTreeMap<TopicPartition, i64>,
    ends: &BTreeMap<TopicPartition, i64>,
) -> bool {
    let mut after = positions.clone();
    for record in batch {
        let position = after
            .entry((record.topic.clone(), record.partition))
            .or_insert(0);
        *position = (*position).max(record.offset + 1);
    }
    ends.iter()
        .all(|(tp, end)| after.get(tp).copied().unwrap_or(0) >= *end)
}

/// Whether every partition has reached its end offset. Positions come from the applied
/// batches, and from the client (which moves past transaction markers no batch sees).
fn caught_up(
    consumer: &StreamConsumer,
    positions: &mut BTreeMap<TopicPartition, i64>,
    ends: &BTreeMap<TopicPartition, i64>,
) -> bool {
    let behind = |positions: &BTreeMap<TopicPartition, i64>| {
        ends.iter()
            .any(|(tp, end)| positions.get(tp).copied().unwrap_or(0) < *end)
    };
    if !behind(positions) {
        return true;
    }
    if let Ok(client_positions) = consumer.position() {
        for element in client_positions.elements() {
            if let Offset::Offset(offset) = element.offset() {
                let key = (element.topic().to_string(), element.partition());
                // Only trust the client once nothing it delivered is still unapplied.
                if let Some(position) = positions.get_mut(&key) {
                    if offset > *position && offset >= ends.get(&key).copied().unwrap_or(i64::MAX) {
                        *position = offset;
                    }
                }
            }
        }
    }
    !behind(positions)
}

/// Commits the offsets to the Kafka group too, for `kafka-consumer-groups --describe` only.
fn commit_to_kafka(consumer: &StreamConsumer, next_offsets: &BTreeMap<TopicPartition, i64>) {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in next_offsets {
        if list
            .add_partition_offset(topic, *partition, Offset::Offset(*next))
            .is_err()
        {
            return;
        }
    }
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        tracing::debug!("informational commit to Kafka failed: {error}");
    }
}
