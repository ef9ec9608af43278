//! The sink's loop: poll Kafka, decode and route, write each poll's worth as one batch.
//!
//! ```text
//! start: assign every partition of --topics at the stored offsets
//!        (PostgreSQL: table_sink_offsets in the target; Cassandra: the Kafka group's commits)
//! decode stage:                                 write stage:
//!   poll up to --batch-size records               target.write(batch) ── Ok ──> (Kafka group
//!     or --batch-timeout (or --batch-idle)           targets: commit the offsets now)
//!   each record: bytes -> JSON or a planned       ── Record{index} ──> dead-letter that record,
//!     payload (Avro via the registry)                                  write the rest again
//!     -> RowChange (decode) -> table (route)      ── Unavailable ────> wait (backoff), write the
//!     or a dead letter (cannot decode,                                 same batch again
//!     key does not fit)
//!   send the dead letters, wait for Kafka's ack
//!   hand the batch over ──── channel of one batch ────>
//! } until Ctrl-C / SIGTERM, or with --until-caught-up until every partition reached the end
//!   offset it had at start (the write stage then writes what was handed over, and ends)
//! ```
//!
//! The two stages run in one task (`tokio::join!`): while the write stage waits for the target,
//! the decode stage uses the CPU for the next batch. Batches are written in the order they were
//! polled, one at a time.
//!
//! No offset moves past a record that was neither written nor dead-lettered: a batch is
//! retried until the target takes it, and its offsets are stored only with (or after) it.

use std::collections::BTreeMap;
use std::sync::Arc;
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
use crate::envelope_plan::EnvelopePlans;
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
    let decoder = Decoder::new(DecodeOptions {
        primary_key_mode: args.primary_key_mode,
        primary_key_fields: args.primary_key_fields.clone(),
        delete_enabled: args.delete_enabled,
        truncate_enabled: args.truncate_enabled,
        header_to_field: args.header_to_field.clone(),
    });
    let input = Input::new(&args.schema_registry_url);
    let group = args.group_id.clone();
    let kafka: Arc<StreamConsumer> = Arc::new(consumer::kafka::stream_consumer(
        &args.bootstrap_servers,
        &group,
    )?);
    let producer = consumer::kafka::producer(&args.bootstrap_servers)?;
    let mut summary = RunSummary::default();
    let mut backoff = Backoff::new(args.retry_backoff, args.retry_backoff_max);

    // The partitions (waiting for topics that do not exist yet) and where to start.
    let marks = retry_until_ok!(backoff, summary, "reading the topics' partitions", {
        consumer::kafka::watermarks(kafka.as_ref(), &topics)
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

    // Two stages, one task: while the target writes batch N (waiting on PostgreSQL or
    // Cassandra), the decode stage polls and decodes batch N+1 (CPU). A channel of one batch
    // between them keeps memory bounded and the order of the batches.
    let (decoded_tx, mut decoded_rx) = tokio::sync::mpsc::channel::<DecodedBatch>(1);
    let decode_stage = tokio::spawn(
        DecodeStage {
            kafka: kafka.clone(),
            producer: producer.clone(),
            args: args.clone(),
            group: group.clone(),
            input,
            plans: EnvelopePlans::default(),
            decoder,
            router,
            ends,
            next,
        }
        .run(decoded_tx),
    );
    let write_stage = async {
        while let Some(decoded) = decoded_rx.recv().await {
            let DecodedBatch {
                records,
                mut batch,
                mut sources,
                started: batch_started,
                dead_lettered,
                source_commits_us,
            } = decoded;
            summary.records += records.len() as u64;
            summary.dead_letters += dead_lettered;
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
                // From the source commit (a change event's `source.ts_us`), else from the
                // record's Kafka timestamp, to now: the batch is written.
                let now_us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0);
                for (record, commit_us) in records.iter().zip(&source_commits_us) {
                    let since_us = commit_us.or(record.timestamp_ms.map(|ms| ms * 1000));
                    if let Some(since_us) = since_us {
                        metrics::histogram!("pgcdc_table_sink_end_to_end_latency_seconds")
                            .record(((now_us - since_us).max(0) as f64) / 1e6);
                    }
                }
            }
            summary.changes += batch.changes.len() as u64;
            summary.batches += 1;
            metrics::histogram!("pgcdc_table_sink_batch_seconds")
                .record(batch_started.elapsed().as_secs_f64());
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
    };
    write_stage.await;
    let decode_summary = decode_stage
        .await
        .context("the decode stage of the sink failed")?;
    // (The decode stage's dead letters were counted by the write stage, batch by batch.)
    summary.skipped += decode_summary.skipped;
    summary.retries += decode_summary.retries;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The decode stage (a task of its own, so that it decodes on one core while the write
/// stage's target works on the other): polls, decodes, dead-letters, hands batches over.
struct DecodeStage {
    kafka: Arc<StreamConsumer>,
    producer: rdkafka::producer::FutureProducer,
    args: SinkArgs,
    group: String,
    input: Input,
    plans: EnvelopePlans,
    decoder: Decoder,
    router: Router,
    /// With --until-caught-up: the end offset of each partition at start.
    ends: Option<BTreeMap<(String, i32), i64>>,
    /// The next offset to poll, per partition.
    next: BTreeMap<(String, i32), i64>,
}

impl DecodeStage {
    async fn run(mut self, decoded_tx: tokio::sync::mpsc::Sender<DecodedBatch>) -> RunSummary {
        let args = &self.args;
        let mut summary = RunSummary::default();
        let mut backoff = Backoff::new(args.retry_backoff, args.retry_backoff_max);
        loop {
            if let Some(ends) = &self.ends {
                if caught_up(&self.kafka, ends, &self.next) {
                    break;
                }
            }
            let records = tokio::select! {
                records = poll_batch(&self.kafka, args.batch_size as usize, args.batch_timeout, args.batch_idle) => records,
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
            let (decoded, letters) = decode_batch(
                records,
                &mut self.input,
                &mut self.plans,
                &mut self.decoder,
                &self.router,
                &mut summary,
                &mut backoff,
            )
            .await;
            // The dead letters of a batch are in Kafka before its offsets can be stored.
            dead_letter(
                &self.producer,
                args,
                &self.group,
                &letters,
                &mut summary,
                &mut backoff,
            )
            .await;
            for position in &decoded.batch.next_offsets {
                self.next.insert(
                    (position.topic.clone(), position.partition),
                    position.offset,
                );
            }
            if decoded_tx.send(decoded).await.is_err() {
                break;
            }
        }
        summary
    }
}

/// One polled batch, decoded: what the write stage needs.
struct DecodedBatch {
    records: Vec<RawRecord>,
    batch: Batch,
    /// change -> index in `records`
    sources: Vec<usize>,
    started: Instant,
    /// Records of this batch the decode stage dead-lettered (already in Kafka).
    dead_lettered: u64,
    /// Per record: the source commit time of a change event (`source.ts_us`), if it has one.
    source_commits_us: Vec<Option<i64>>,
}

/// Decodes and routes one polled batch; the records that cannot be decoded come back as dead
/// letters (still to send).
async fn decode_batch(
    records: Vec<RawRecord>,
    input: &mut Input,
    plans: &mut EnvelopePlans,
    decoder: &mut Decoder,
    router: &Router,
    summary: &mut RunSummary,
    backoff: &mut Backoff,
) -> (DecodedBatch, Vec<DeadLetter>) {
    let started = Instant::now();
    let mut batch = Batch::default();
    let mut sources: Vec<usize> = Vec::new();
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut batch_next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut source_commits_us = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        batch_next.insert((record.topic.clone(), record.partition), record.offset + 1);
        let decoded = loop {
            match decode(input, plans, decoder, router, record).await {
                Err(InputError::Transient(reason)) => {
                    summary.retries += 1;
                    tracing::warn!(%reason, "waiting for the schema registry");
                    backoff.wait().await;
                }
                other => break other,
            }
        };
        backoff.reset();
        source_commits_us.push(decoder.take_source_commit_us());
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
        .into_iter()
        .map(|((topic, partition), offset)| Position {
            topic,
            partition,
            offset,
        })
        .collect();
    let dead_lettered = letters.len() as u64;
    (
        DecodedBatch {
            records,
            batch,
            sources,
            started,
            dead_lettered,
            source_commits_us,
        },
        letters,
    )
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
    plans: &mut EnvelopePlans,
    decoder: &mut Decoder,
    router: &Router,
    record: &RawRecord,
) -> Result<Option<RowChange>, InputError> {
    let key = input.json("key", record.key.as_deref()).await?;
    // JSON with a value schema met before: read the payload under the schema's plan.
    let planned = record
        .value
        .as_deref()
        .and_then(|bytes| input.known_schema(bytes))
        .and_then(|(schema, payload)| {
            let plan = plans.of(&schema)?;
            decoder.decode_planned(&record.topic, key.as_ref(), &plan, payload, &record.headers)
        });
    let change = match planned {
        Some(change) => change?,
        None => {
            let value = input.value(record.value.as_deref()).await?;
            decoder.decode_parts(
                &record.topic,
                key.as_ref(),
                value.as_ref().and_then(|v| v.schema.as_deref()),
                value.as_ref().map(|v| &v.payload),
                &record.headers,
            )?
        }
    };
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

/// Up to `max` records, within `timeout`; the batch also ends when none came for `idle`
/// (librdkafka has nothing queued: Kafka has nothing more right now). A backlog gives full
/// batches; a steady flow is written within milliseconds instead of waiting out `timeout`
/// (the consumer's batches end the same way, `consumer/src/consume.rs`).
async fn poll_batch(
    kafka: &StreamConsumer,
    max: usize,
    timeout: Duration,
    idle: Duration,
) -> anyhow::Result<Vec<RawRecord>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < max {
        let until = if records.is_empty() {
            deadline
        } else {
            (tokio::time::Instant::now() + idle).min(deadline)
        };
        let message = match tokio::time::timeout_at(until, kafka.recv()).await {
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
