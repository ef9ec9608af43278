//! The sink's loop: poll Kafka, decode and route, write each poll's worth as one batch.
//!
//! ```text
//! start: assign every partition of --topics at the stored offsets
//!        (PostgreSQL: table_sink_offsets in the target; Cassandra: the Kafka group's commits)
//! loop {
//!   poll up to --batch-size records or --batch-timeout
//!   each record: bytes -> JSON (Avro via the registry) -> RowChange (decode) -> table (route)
//!                or a dead letter (cannot decode, key does not fit)
//!   send the dead letters, wait for Kafka's ack
//!   target.write(batch) ── Ok ─────────────> (Kafka group targets: commit the offsets now)
//!                       ── Record{index} ──> dead-letter that record, write the rest again
//!                       ── Unavailable ────> wait (backoff), write the same batch again
//! } until Ctrl-C / SIGTERM, or with --until-caught-up until every partition reached the end
//!   offset it had at start
//! ```
//!
//! No offset moves past a record that was neither written nor dead-lettered: a batch is
//! retried until the target takes it, and its offsets are stored only with (or after) it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::change::{Position, RowChange};
use crate::config::SinkArgs;
use crate::decode::{DecodeOptions, Decoder};
use crate::dlq::{self, DeadLetter, RawRecord};
use crate::input::{Input, InputError};
use crate::route::Router;
use crate::target::{Batch, OffsetStore, Target, TargetError};

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub records: u64,
    /// Changes handed to the target and written (before folding by key).
    pub changes: u64,
    /// Records that asked for nothing (a tombstone with deletes off, a logical message, ...).
    pub skipped: u64,
    pub dead_letters: u64,
    pub batches: u64,
    /// Times the target (or Kafka) was unavailable and a batch was retried.
    pub retries: u64,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A capped doubling wait.
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Retries `attempt` (with backoff, logging `what`) until it succeeds.
macro_rules! retry_until_ok {
    ($backoff:expr, $summary:expr, $what:expr, $attempt:expr) => {{
        loop {
            match $attempt {
                Ok(value) => {
                    $backoff.reset();
                    break value;
                }
                Err(error) => {
                    $summary.retries += 1;
                    metrics::counter!("pgcdc_table_sink_retries_total").increment(1);
                    tracing::warn!(error = %format!("{error:#}"), "{}: waiting and trying again", $what);
                    $backoff.wait().await;
                }
            }
        }
    }};
}

/// Runs the sink into `target` until stopped (or caught up).
pub async fn run<T: Target>(args: &SinkArgs, mut target: T) -> anyhow::Result<RunSummary> {
    consumer::shutdown::install();
    let started = Instant::now();
    let topics = args.topics();
    anyhow::ensure!(
        !topics.is_empty(),
        "no topics to read: pass --topics a,b (or TABLE_SINK_TOPICS)"
    );
    let router = Router::new(&args.routes)?;
    let mut decoder = Decoder::new(DecodeOptions {
        primary_key_mode: args.primary_key_mode,
        primary_key_fields: args.primary_key_fields.clone(),
        delete_enabled: args.delete_enabled,
        truncate_enabled: args.truncate_enabled,
        header_to_field: args.header_to_field.clone(),
    });
    let mut input = Input::new(&args.schema_registry_url);
    let group = args.group_id.clone();
    let kafka: StreamConsumer = consumer::kafka::stream_consumer(&args.bootstrap_servers, &group)?;
    let producer = consumer::kafka::producer(&args.bootstrap_servers)?;
    let mut summary = RunSummary::default();
    let mut backoff = Backoff::new(args.retry_backoff, args.retry_backoff_max);

    // The partitions (waiting for topics that do not exist yet) and where to start.
    let marks = retry_until_ok!(backoff, summary, "reading the topics' partitions", {
        consumer::kafka::watermarks(&kafka, &topics)
    });
    let stored: BTreeMap<(String, i32), i64> = match target.offset_store() {
        OffsetStore::InTarget => retry_until_ok!(
            backoff,
            summary,
            format!("reading the offsets from {}", target.describe()),
            { target.stored_offsets(&group).await }
        )
        .into_iter()
        .map(|p| ((p.topic, p.partition), p.offset))
        .collect(),
        OffsetStore::KafkaGroup => committed_offsets(&kafka, &marks)?,
    };
    let mut assignment = TopicPartitionList::new();
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for ((topic, partition), (low, _)) in &marks {
        let start = stored.get(&(topic.clone(), *partition)).copied();
        let offset = match start {
            Some(offset) => Offset::Offset(offset),
            None => Offset::Beginning,
        };
        assignment
            .add_partition_offset(topic, *partition, offset)
            .with_context(|| format!("cannot assign {topic}/{partition}"))?;
        next.insert((topic.clone(), *partition), start.unwrap_or(*low).max(*low));
    }
    kafka
        .assign(&assignment)
        .context("cannot assign the partitions")?;
    drop(assignment);
    let ends: Option<BTreeMap<(String, i32), i64>> = args.until_caught_up.then(|| {
        marks
            .iter()
            .map(|(tp, (_, high))| (tp.clone(), *high))
            .collect()
    });
    let backlog: i64 = ends
        .as_ref()
        .map(|ends| ends.iter().map(|(tp, end)| (end - next[tp]).max(0)).sum())
        .unwrap_or(0);
    tracing::info!(
        topics = %topics.join(","), target = %target.describe(), group = %group,
        partitions = marks.len(), backlog, "table-sink started"
    );
    let progress = (args.until_caught_up && backlog > 0).then(|| {
        let bar = ProgressBar::new(backlog as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {pos}/{len} records {per_sec} {wide_bar} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut last_log = Instant::now();

    loop {
        if let Some(ends) = &ends {
            if caught_up(&kafka, ends, &next) {
                break;
            }
        }
        let records = tokio::select! {
            records = poll_batch(&kafka, args.batch_size as usize, args.batch_timeout) => records,
            _ = consumer::shutdown::requested() => break,
        };
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "reading from Kafka failed: waiting and trying again");
                backoff.wait().await;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        let batch_started = Instant::now();
        summary.records += records.len() as u64;
        let mut batch = Batch::default();
        let mut sources: Vec<usize> = Vec::new(); // change -> index in `records`
        let mut letters: Vec<DeadLetter> = Vec::new();
        let mut batch_next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            batch_next.insert((record.topic.clone(), record.partition), record.offset + 1);
            let decoded = loop {
                match decode(&mut input, &mut decoder, &router, record).await {
                    Err(InputError::Transient(reason)) => {
                        summary.retries += 1;
                        tracing::warn!(%reason, "waiting for the schema registry");
                        backoff.wait().await;
                    }
                    other => break other,
                }
            };
            backoff.reset();
            match decoded {
                Ok(Some(change)) => {
                    batch.changes.push((position(record), change));
                    sources.push(i);
                }
                Ok(None) => {
                    summary.skipped += 1;
                    metrics::counter!("pgcdc_table_sink_records_total", "topic" => record.topic.clone(), "outcome" => "skipped").increment(1);
                }
                Err(error) => letters.push(DeadLetter {
                    record: record.clone(),
                    class: "table_sink::decode::DecodeError",
                    error: error.to_string(),
                }),
            }
        }
        batch.next_offsets = batch_next
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect();
        dead_letter(
            &producer,
            args,
            &group,
            &letters,
            &mut summary,
            &mut backoff,
        )
        .await;

        // Write; a record the target refuses is dead-lettered and the rest written again.
        loop {
            let write_started = Instant::now();
            match target.write(&group, &batch).await {
                Ok(()) => {
                    metrics::histogram!("pgcdc_table_sink_batch_write_seconds")
                        .record(write_started.elapsed().as_secs_f64());
                    backoff.reset();
                    break;
                }
                Err(TargetError::Record { index, message }) if index < batch.changes.len() => {
                    let (position, _) = batch.changes.remove(index);
                    let record = records[sources.remove(index)].clone();
                    tracing::warn!(%position, error = %message, "the target refuses this record: dead-lettering it");
                    let letter = DeadLetter {
                        record,
                        class: "table_sink::target::TargetError",
                        error: message,
                    };
                    dead_letter(
                        &producer,
                        args,
                        &group,
                        &[letter],
                        &mut summary,
                        &mut backoff,
                    )
                    .await;
                }
                Err(error) => {
                    summary.retries += 1;
                    metrics::counter!("pgcdc_table_sink_retries_total").increment(1);
                    tracing::warn!(error = %error, target = %target.describe(), "cannot write the batch: waiting and trying again (nothing past it is committed)");
                    backoff.wait().await;
                }
            }
        }
        if target.offset_store() == OffsetStore::KafkaGroup {
            retry_until_ok!(backoff, summary, "committing the offsets to Kafka", {
                commit(&kafka, &batch.next_offsets, CommitMode::Sync)
            });
        } else {
            // Informational only (kafka-consumer-groups --describe): the target has the truth.
            let _ = commit(&kafka, &batch.next_offsets, CommitMode::Async);
        }
        for (position, change) in &batch.changes {
            metrics::counter!("pgcdc_table_sink_rows_written_total", "table" => change.table().to_string(), "op" => change.op()).increment(1);
            metrics::counter!("pgcdc_table_sink_records_total", "topic" => position.topic.clone(), "outcome" => "written").increment(1);
        }
        if db::metrics::enabled() {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            for record in &records {
                if let Some(ts) = record.timestamp_ms {
                    metrics::histogram!("pgcdc_table_sink_end_to_end_latency_seconds")
                        .record(((now_ms - ts).max(0) as f64) / 1000.0);
                }
            }
        }
        summary.changes += batch.changes.len() as u64;
        summary.batches += 1;
        metrics::histogram!("pgcdc_table_sink_batch_seconds")
            .record(batch_started.elapsed().as_secs_f64());
        for (tp, offset) in batch_next {
            next.insert(tp, offset);
        }
        if let Some(bar) = &progress {
            bar.inc(records.len() as u64);
        }
        if last_log.elapsed() > Duration::from_secs(5) {
            last_log = Instant::now();
            tracing::info!(
                records = summary.records,
                written = summary.changes,
                dead_letters = summary.dead_letters,
                rate = format!(
                    "{:.0}/s",
                    summary.records as f64 / started.elapsed().as_secs_f64().max(1e-9)
                ),
                "table-sink progress"
            );
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn position(record: &RawRecord) -> Position {
    Position {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
    }
}

async fn decode(
    input: &mut Input,
    decoder: &mut Decoder,
    router: &Router,
    record: &RawRecord,
) -> Result<Option<RowChange>, InputError> {
    let key = input.json("key", record.key.as_deref()).await?;
    let value = input.value(record.value.as_deref()).await?;
    let change = decoder.decode_parts(
        &record.topic,
        key.as_ref(),
        value.as_ref().and_then(|v| v.schema.as_deref()),
        value.as_ref().map(|v| &v.payload),
        &record.headers,
    )?;
    Ok(change.map(|mut change| {
        let routed = router.route(&record.topic, change.table());
        *change.table_mut() = routed;
        change
    }))
}

/// Sends dead letters, retrying until Kafka acknowledged them (a dead letter is never lost).
async fn dead_letter(
    producer: &rdkafka::producer::FutureProducer,
    args: &SinkArgs,
    group: &str,
    letters: &[DeadLetter],
    summary: &mut RunSummary,
    backoff: &mut Backoff,
) {
    if letters.is_empty() {
        return;
    }
    retry_until_ok!(backoff, summary, "sending dead letters", {
        dlq::send(producer, group, |topic| args.dlq_topic_for(topic), letters).await
    });
    for letter in letters {
        tracing::warn!(
            record = %position(&letter.record), error = %letter.error,
            dlq = %args.dlq_topic_for(&letter.record.topic), "dead-lettered"
        );
        metrics::counter!("pgcdc_table_sink_dead_letters_total", "topic" => letter.record.topic.clone()).increment(1);
        metrics::counter!("pgcdc_table_sink_records_total", "topic" => letter.record.topic.clone(), "outcome" => "dead_letter").increment(1);
    }
    summary.dead_letters += letters.len() as u64;
}

/// Up to `max` records, waiting at most `timeout` for the batch to fill.
async fn poll_batch(
    kafka: &StreamConsumer,
    max: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<RawRecord>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < max {
        let message = match tokio::time::timeout_at(deadline, kafka.recv()).await {
            Err(_) => break,
            Ok(message) => message.context("Kafka")?,
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        records.push(RawRecord {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        });
    }
    Ok(records)
}

/// Every partition at (or past) the end it had at start. librdkafka's position counts the
/// transaction markers a read_committed consumer never sees as records.
fn caught_up(
    kafka: &StreamConsumer,
    ends: &BTreeMap<(String, i32), i64>,
    next: &BTreeMap<(String, i32), i64>,
) -> bool {
    let positions = kafka.position().ok();
    let caught = ends.iter().all(|(tp, end)| {
        let ours = next.get(tp).copied().unwrap_or(0);
        let theirs = positions
            .as_ref()
            .and_then(|p| p.find_partition(&tp.0, tp.1))
            .and_then(|e| e.offset().to_raw())
            .unwrap_or(0);
        ours.max(theirs) >= *end
    });
    drop(positions);
    caught
}

/// The Kafka group's committed offsets of these partitions (for targets that keep none).
fn committed_offsets(
    kafka: &StreamConsumer,
    marks: &BTreeMap<(String, i32), (i64, i64)>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in marks.keys() {
        list.add_partition(topic, *partition);
    }
    let committed = kafka
        .committed_offsets(list, consumer::kafka::METADATA_TIMEOUT)
        .context("cannot read the consumer group's committed offsets")?;
    let mut out = BTreeMap::new();
    for element in committed.elements() {
        if let Offset::Offset(offset) = element.offset() {
            out.insert((element.topic().to_string(), element.partition()), offset);
        }
    }
    drop(committed);
    Ok(out)
}

fn commit(
    kafka: &StreamConsumer,
    next_offsets: &[Position],
    mode: CommitMode,
) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for p in next_offsets {
        list.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.offset))
            .context("bad offset")?;
    }
    kafka
        .commit(&list, mode)
        .context("cannot commit the offsets")?;
    Ok(())
}
