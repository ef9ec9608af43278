//! The consume loop: assign partitions at the stored offsets, read batches, apply each in
//! one transaction, until stopped (Ctrl-C or SIGTERM) or, with `--until-caught-up`, until every
//! partition reaches the end offset it had at start.
//!
//! ```text
//! loop {                                                             one session:
//!   claim the writer (advisory lock + new epoch; waits while another consumer writes)
//!   (replay, once: empty projections + forget offsets, one transaction)
//!   assign every partition at consumer_offsets.next_offset (or the earliest)
//!   loop { read up to --batch-size records or --batch-timeout ─> apply_batch ─> commit to Kafka (informational) }
//! } until Ctrl-C / caught up; a failed session is followed by the next one
//! ```
//!
//! Only one consumer process writes the projections at a time, and it never writes without
//! its claim: every batch's transaction checks it ([`crate::projection_writer`]). Whatever
//! breaks a session (PostgreSQL restarted or crashed, a batch failing mid-transaction or in
//! its COMMIT, the claim lost) ends it: the in-memory state cache and the Kafka client go
//! with it, and the next session starts again from the offsets PostgreSQL committed, after a
//! capped backoff ([`crate::retry`]). A batch that failed is therefore read again, never
//! skipped. A Kafka broker restart does not even end a session: the client reconnects and
//! fetches on from where it was.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;

use crate::apply::{Applier, Writer};
use crate::config::ConsumerArgs;
use crate::dlq::{dlq_topic, DeadLetters};
use crate::kafka::{self, TopicPartition};
use crate::projection_writer::{self, Fence};
use crate::record::{decode_record, BatchRecord, RecordDecoder};
use crate::retry::{classify, Backoff, Failure, KafkaStalled};
use crate::state_cache::StateCache;
use crate::{offsets, store};

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub records: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub tombstones: u64,
    pub dead_letters: u64,
    /// Sessions that ended in a failure and were started again.
    pub restarts: u64,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What outlives a session.
pub(crate) struct RunState {
    pub(crate) summary: RunSummary,
    /// `--replay` asked for a reset that has not committed yet.
    replay_pending: bool,
    /// With `--until-caught-up`: the end offsets the first session saw.
    pub(crate) ends: Option<BTreeMap<TopicPartition, i64>>,
    pub(crate) progress: Option<ProgressBar>,
    pub(crate) last_log: Instant,
    pub(crate) backoff: Backoff,
}

/// Why a session ended early, and whether it was still setting up (claim, topics, assign).
pub(crate) struct SessionError {
    error: anyhow::Error,
    setting_up: bool,
}

pub(crate) fn setting_up(error: impl Into<anyhow::Error>) -> SessionError {
    SessionError {
        error: error.into(),
        setting_up: true,
    }
}

pub(crate) fn applying(error: impl Into<anyhow::Error>) -> SessionError {
    SessionError {
        error: error.into(),
        setting_up: false,
    }
}

/// Runs the consumer against the database at `database_url`.
pub async fn consume(database_url: &str, args: &ConsumerArgs) -> anyhow::Result<RunSummary> {
    // Before anything else, so that a SIGTERM during start-up is remembered, not lost.
    crate::shutdown::install();
    if args.group_mode && args.replay {
        anyhow::bail!(
            "--replay cannot be combined with --group-mode: the reset must happen once, before the group starts. \
             Stop every group member, run one `consumer --replay --until-caught-up` (or without \
             --until-caught-up, and stop it once it has caught up), then start the group members"
        );
    }
    if let Some(listen) = args.metrics_listen {
        db::metrics::serve(listen, "consumer").await?;
    }
    let pool = db::connect(database_url, 4).await?;
    db::require_schema(&pool, database_url).await?;
    store::require_tables(&pool).await?;
    let owner = projection_writer::owner_description(&args.consumer_name());
    let started = Instant::now();
    let mut run = RunState {
        summary: RunSummary::default(),
        replay_pending: args.replay,
        ends: None,
        progress: None,
        last_log: Instant::now(),
        backoff: Backoff::new(args.retry_backoff, args.retry_backoff_max),
    };
    let mut first = true;
    let outcome = loop {
        let ended = if args.group_mode {
            crate::group::session(&pool, args, &mut run, first).await
        } else {
            session(&pool, database_url, args, &owner, &mut run, first).await
        };
        let Err(SessionError { error, setting_up }) = ended else {
            break Ok(());
        };
        let failure = match classify(&error) {
            // Only the very first start fails fast on what looks permanent (a topic that
            // is not there with --until-caught-up); later, setting up is retried.
            Failure::Permanent if setting_up && !first => Failure::Transient,
            failure => failure,
        };
        first = false;
        run.summary.restarts += 1;
        crate::metrics::restarted();
        match failure {
            Failure::Permanent => break Err(error),
            Failure::Fenced => {
                tracing::warn!("{error:#}");
            }
            Failure::Transient => {
                let (wait, attempt) = run.backoff.next_wait();
                tracing::warn!(
                    "{error:#}; attempt {attempt} failed, starting again from the stored offsets in {wait:?}"
                );
                if sleep_or_stop_signal(wait).await {
                    tracing::info!("stopping (SIGINT or SIGTERM)");
                    break Ok(());
                }
            }
        }
    };
    run.summary.elapsed = started.elapsed();
    if let Some(progress) = &run.progress {
        progress.finish_and_clear();
    }
    pool.close().await;
    outcome.map(|()| run.summary)
}

/// Sleeps `wait`; `true` when SIGINT or SIGTERM came first.
async fn sleep_or_stop_signal(wait: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = crate::shutdown::requested() => true,
    }
}

/// One session: claim, (replay), assign, apply batches. `Ok` when the run is over (Ctrl-C,
/// or caught up); the lock is released when it ends, either way.
async fn session(
    pool: &PgPool,
    database_url: &str,
    args: &ConsumerArgs,
    owner: &str,
    run: &mut RunState,
    first: bool,
) -> Result<(), SessionError> {
    let claim = tokio::select! {
        claim = projection_writer::claim(database_url, owner) => claim.map_err(setting_up)?,
        _ = crate::shutdown::requested() => return Ok(()),
    };
    let result = session_with_claim(pool, args, &claim.fence, run, first).await;
    claim.release().await;
    result
}

async fn session_with_claim(
    pool: &PgPool,
    args: &ConsumerArgs,
    fence: &Fence,
    run: &mut RunState,
    first: bool,
) -> Result<(), SessionError> {
    let consumer_name = args.consumer_name();
    let topics = args.topics();

    if run.replay_pending {
        replay_reset(pool, fence).await.map_err(setting_up)?;
        run.replay_pending = false;
        tracing::info!("replay: projections emptied and offsets forgotten; reading {topics:?} from the earliest offsets");
    }

    let consumer =
        kafka::stream_consumer(&args.bootstrap_servers, &consumer_name).map_err(setting_up)?;
    let marks = wait_for_topics(&consumer, &topics, args.until_caught_up && first)
        .await
        .map_err(setting_up)?;
    for topic in &topics {
        kafka::ensure_topic(&args.bootstrap_servers, &dlq_topic(topic))
            .await
            .map_err(setting_up)?;
    }
    let dead_letters =
        DeadLetters::new(kafka::producer(&args.bootstrap_servers).map_err(setting_up)?);

    let stored = offsets::load(pool, &consumer_name, &topics)
        .await
        .context("cannot load the stored offsets")
        .map_err(setting_up)?;
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
        assignment
            .add_partition_offset(topic, *partition, Offset::Offset(start))
            .map_err(setting_up)?;
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the partitions")
        .map_err(setting_up)?;
    drop(assignment);
    let ends = run
        .ends
        .get_or_insert_with(|| {
            marks
                .iter()
                .map(|(tp, (_, high))| (tp.clone(), *high))
                .collect()
        })
        .clone();
    let to_read: u64 = marks
        .iter()
        .map(|(tp, (_, end))| (end - positions.get(tp).copied().unwrap_or(0)).max(0) as u64)
        .sum();
    tracing::info!(
        "consumer {consumer_name} (writer epoch {}): reading {} partition(s) of {topics:?}, {to_read} record(s) behind",
        fence.epoch,
        positions.len()
    );
    let progress = run
        .progress
        .get_or_insert_with(|| progress_bar(args, to_read))
        .clone();

    // The claim was taken before this: no other writer changes the states from here on.
    let cache = StateCache::new(
        store::state_table_is_empty(pool)
            .await
            .map_err(setting_up)?,
    );
    let mut applier = Some(Applier {
        pool: pool.clone(),
        dead_letters,
        cache,
        consumer: consumer_name.clone(),
        writer: Writer::Single(fence.clone()),
        batches: 0,
        conflict_retries: 0,
    });

    // While one batch is written to PostgreSQL, the next is read and decoded.
    let mut decoder = RecordDecoder::new(&args.schema_registry_url);
    let batch_size = args.batch_size as usize;
    let mut next = read_batch(&consumer, args, &mut decoder, batch_size).await;
    let mut last_delivery = Instant::now();
    let mut last_lag = Instant::now();
    loop {
        if crate::metrics::enabled() && last_lag.elapsed() > LAG_EVERY {
            record_lag(&consumer, &positions);
            last_lag = Instant::now();
        }
        let Some(batch) = next.take() else {
            tracing::info!("stopping (SIGINT or SIGTERM)");
            return Ok(());
        };
        if batch.is_empty() {
            if args.until_caught_up && caught_up(&consumer, &mut positions, &ends) {
                return Ok(());
            }
            if last_delivery.elapsed() > STALL_AFTER {
                if let Some(behind) = records_waiting(&consumer, &positions) {
                    return Err(applying(KafkaStalled {
                        idle_seconds: last_delivery.elapsed().as_secs(),
                        behind,
                    }));
                }
                last_delivery = Instant::now();
            }
            next = read_batch(&consumer, args, &mut decoder, batch_size).await;
            continue;
        }
        last_delivery = Instant::now();
        let last_batch = args.until_caught_up && reaches_ends(&batch, &positions, &ends);
        let step = Instant::now();
        let mut owned_applier = applier
            .take()
            .context("the applier was lost")
            .map_err(applying)?;
        let apply = tokio::spawn(async move {
            let done = owned_applier.apply(&batch).await;
            tracing::debug!("batch of {} applied in {:?}", batch.len(), step.elapsed());
            (owned_applier, done)
        });
        next = if last_batch {
            Some(Vec::new())
        } else {
            let read = read_batch(&consumer, args, &mut decoder, batch_size).await;
            tracing::debug!("next batch read in {:?}", step.elapsed());
            read
        };
        let (returned_applier, done) = apply
            .await
            .context("the batch task failed")
            .map_err(applying)?;
        applier = Some(returned_applier);
        // A failed batch ends the session; the next one reads it again (and what was read
        // meanwhile) from the stored offsets.
        let done = done.map_err(applying)?;
        run.backoff.reset();
        let summary = &mut run.summary;
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
        if !(args.replay || args.until_caught_up)
            && run.last_log.elapsed() > Duration::from_secs(10)
        {
            tracing::info!(
                "{} records: {} applied, {} duplicates, {} dead letters",
                summary.records,
                summary.applied,
                summary.duplicates,
                summary.dead_letters
            );
            run.last_log = Instant::now();
        }
    }
}

/// How long the Kafka client may deliver nothing while records wait before the session is
/// started again with a new client.
const STALL_AFTER: Duration = Duration::from_secs(15);

/// How often the lag per partition is measured (one watermark request per partition) for
/// `/metrics`.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// Sets `pgcdc_consumer_lag_records` of each partition: its log end minus the applied position.
fn record_lag(consumer: &StreamConsumer, positions: &BTreeMap<TopicPartition, i64>) {
    for ((topic, partition), applied) in positions {
        if let Ok((_, high)) =
            consumer.fetch_watermarks(topic, *partition, Duration::from_millis(500))
        {
            crate::metrics::lag(topic, *partition, high - applied);
        }
    }
}

/// How many records the partitions hold beyond the client's fetch position (or, where it
/// has none, the applied position); `None` when nothing waits or the broker does not answer.
fn records_waiting(
    consumer: &StreamConsumer,
    positions: &BTreeMap<TopicPartition, i64>,
) -> Option<i64> {
    let mut client: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    if let Ok(list) = consumer.position() {
        for element in list.elements() {
            if let Offset::Offset(offset) = element.offset() {
                client.insert((element.topic().to_string(), element.partition()), offset);
            }
        }
    }
    let mut behind = 0;
    for (tp, applied) in positions {
        let (_, high) = consumer
            .fetch_watermarks(&tp.0, tp.1, Duration::from_secs(2))
            .ok()?;
        let position = client.get(tp).copied().unwrap_or(*applied).max(*applied);
        behind += (high - position).max(0);
    }
    (behind > 0).then_some(behind)
}

/// `--replay`: empties the projections and forgets every offset, in one transaction that
/// checks the claim first.
async fn replay_reset(pool: &PgPool, fence: &Fence) -> anyhow::Result<()> {
    let mut tx = pool
        .begin()
        .await
        .context("cannot start the replay's reset")?;
    projection_writer::check(&mut tx, fence).await?;
    store::empty_projections(&mut tx)
        .await
        .context("cannot empty the projections")?;
    offsets::forget_all(&mut tx)
        .await
        .context("cannot forget the stored offsets")?;
    tx.commit()
        .await
        .context("cannot commit the replay's reset")?;
    Ok(())
}

pub(crate) fn progress_bar(args: &ConsumerArgs, to_read: u64) -> ProgressBar {
    if !(args.replay || args.until_caught_up) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(to_read);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {human_pos}/{human_len} records ({per_sec}, eta {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The watermarks of every partition of `topics`, waiting for topics that do not exist yet
/// (unless the run must end once caught up: then a missing topic is an error).
pub(crate) async fn wait_for_topics<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
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

/// Reads up to `batch_size` records: waits up to a second for the first, then takes more until
/// `--batch-timeout` has passed or none came for `--batch-idle` (librdkafka has nothing queued:
/// the batch is all there is for now). `None` on SIGINT or SIGTERM. Kafka errors (a broker restarting) are
/// logged and end the batch early: the client reconnects by itself.
pub(crate) async fn read_batch<X: ConsumerContext + 'static>(
    consumer: &StreamConsumer<X>,
    args: &ConsumerArgs,
    decoder: &mut RecordDecoder,
    batch_size: usize,
) -> Option<Vec<BatchRecord>> {
    let mut batch = Vec::with_capacity(batch_size.min(100_000));
    let first = tokio::select! {
        message = consumer.recv() => Some(message),
        _ = tokio::time::sleep(Duration::from_secs(1)) => None,
        _ = crate::shutdown::requested() => return None,
    };
    match first {
        None => return Some(batch),
        Some(Ok(message)) => batch.push(decode_record(args.from, decoder, &message).await),
        Some(Err(error)) => {
            tracing::warn!("Kafka: {error}");
            return Some(batch);
        }
    }
    let deadline = tokio::time::Instant::now() + args.batch_timeout;
    while batch.len() < batch_size {
        let idle_until = (tokio::time::Instant::now() + args.batch_idle).min(deadline);
        match tokio::time::timeout_at(idle_until, consumer.recv()).await {
            Ok(Ok(message)) => batch.push(decode_record(args.from, decoder, &message).await),
            Ok(Err(error)) => {
                tracing::warn!("Kafka: {error}");
                break;
            }
            Err(_) => break,
        }
    }
    Some(batch)
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
pub(crate) fn commit_to_kafka<X: ConsumerContext + 'static>(
    consumer: &StreamConsumer<X>,
    next_offsets: &BTreeMap<TopicPartition, i64>,
) {
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
