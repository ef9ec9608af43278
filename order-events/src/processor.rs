//! The processing loop: one Kafka transaction per batch.
//!
//! ```text
//! start:  init_transactions (fences older instances) -> restore the state store from the
//!         changelog -> assign the inputs at the committed offsets
//! batch:  poll up to --batch-size records (or --batch-timeout)
//!         begin_transaction
//!           each record -> decode -> join -> events / dead letters (produce)
//!           changed state-store entries -> changelog (produce)
//!           input positions -> send_offsets_to_transaction
//!         commit_transaction
//! error:  fenced -> exit with the reason; anything else -> abort, wait, start again (restore,
//!         committed offsets): what the aborted batch did is invisible to read_committed readers
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use projections::order_events::{
    decode_item_change, decode_order_change, decode_transaction_end, JoinOutput, JoinSettings,
    JoinedTables, OrderEventsJoin,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Cli;
use crate::{kafka, metrics, restore, topology};

/// Why a session ended.
enum SessionEnd {
    /// SIGTERM / Ctrl-C: the last batch committed.
    Stopped,
    /// A newer instance with the same transactional.id took over.
    Fenced(String),
}

/// Runs the processor until stopped or fenced.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    tracing::info!("{}", topology::describe(&cli));
    if let Some(listen) = cli.metrics_listen {
        metrics::serve_in_background(listen)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_for_signals(stop.clone())?;
    kafka::ensure_topics(
        &cli.bootstrap_servers,
        cli.topic_partitions,
        &[
            (cli.output_topic.as_str(), false),
            (cli.dlq_topic().as_str(), false),
            (cli.changelog_topic.as_str(), true),
        ],
    )?;
    let mut backoff = Duration::from_millis(500);
    loop {
        match session(&cli, &stop) {
            Ok(SessionEnd::Stopped) => {
                tracing::info!("stopped");
                return Ok(());
            }
            Ok(SessionEnd::Fenced(reason)) => bail!(
                "fenced: another order-events instance started with transactional.id `{}` ({reason}); this one stops. Run one instance per transactional id (--transactional-id)",
                cli.transactional_id
            ),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), retry_in = ?backoff, "the transaction was aborted; starting again from the committed offsets and the changelog");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        }
    }
}

fn watch_for_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
        });
    });
    Ok(())
}

/// Which input a record came from.
#[derive(Clone, Copy)]
enum Input {
    Orders,
    Items,
    Transactions,
}

struct Session<'a> {
    cli: &'a Cli,
    producer: BaseProducer,
    join: OrderEventsJoin,
    tables: JoinedTables,
    dlq_topic: String,
    /// Next offset per input partition, as far as this batch read.
    positions: BTreeMap<(String, i32), i64>,
    /// With --until-caught-up: the end offsets at start.
    ends: BTreeMap<(String, i32), i64>,
    inputs: [(String, Input); 3],
    stats: Stats,
    last_commit: Instant,
    /// The join's clock (ms): it runs only while less than a batch is left to read, so a
    /// backlog read unevenly across the topics never makes a transaction look stuck.
    caught_up_clock_ms: u64,
    last_tick: Instant,
    lag_checked: Instant,
    nearly_caught_up: bool,
}

/// How often an idle processor commits its offsets anyway (see [`Session::batch`]).
const IDLE_COMMIT_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Stats {
    records: u64,
    events: u64,
    dead_letters: u64,
    transactions: u64,
}

fn session(cli: &Cli, stop: &AtomicBool) -> anyhow::Result<SessionEnd> {
    let producer = kafka::transactional_producer(&cli.bootstrap_servers, &cli.transactional_id)?;
    if let Err(error) = producer.init_transactions(kafka::REQUEST_TIMEOUT) {
        if kafka::is_fenced(&error) {
            return Ok(SessionEnd::Fenced(error.to_string()));
        }
        return Err(error).context("init_transactions failed: is Kafka up?");
    }
    let started = Instant::now();
    let mut join = OrderEventsJoin::new(JoinSettings {
        incomplete_after_ms: cli.incomplete_after.as_millis() as u64,
    });
    let restored = restore::restore(&cli.bootstrap_servers, &cli.changelog_topic, &mut join, 0)?;
    tracing::info!(
        records = restored,
        orders = join.store().len(),
        waiting_transactions = join.buffer().len(),
        took = ?started.elapsed(),
        "state store restored from {}",
        cli.changelog_topic
    );
    let consumer = kafka::input_consumer(&cli.bootstrap_servers, &cli.group_id, false)?;
    let inputs = [
        (cli.orders_topic(), Input::Orders),
        (cli.items_topic(), Input::Items),
        (cli.transaction_topic(), Input::Transactions),
    ];
    let topics = wait_for_inputs(&consumer, &inputs, stop)?;
    let Some(topics) = topics else {
        return Ok(SessionEnd::Stopped);
    };
    if let Some((topic, partitions)) = topics.iter().find(|(t, _)| *t == cli.transaction_topic()) {
        if partitions.len() > 1 {
            tracing::warn!(topic, partitions = partitions.len(), "the transaction topic has more than one partition: END records may arrive out of commit order, and events of one order with them");
        }
    }
    let assignment = kafka::assign_at_committed(&consumer, &topics)?;
    let mut ends = BTreeMap::new();
    if cli.until_caught_up {
        for (topic, partitions) in &topics {
            for partition in partitions {
                let (_, high) = consumer
                    .fetch_watermarks(topic, *partition, kafka::REQUEST_TIMEOUT)
                    .with_context(|| format!("cannot read the end offsets of {topic}"))?;
                ends.insert((topic.clone(), *partition), high);
            }
        }
    }
    let mut positions = BTreeMap::new();
    for element in assignment.elements() {
        if let Offset::Offset(offset) = element.offset() {
            positions.insert((element.topic().to_string(), element.partition()), offset);
        }
    }
    tracing::info!(assignment = ?describe(&assignment), "reading the inputs from the committed offsets");
    let mut session = Session {
        cli,
        producer,
        join,
        tables: JoinedTables::default(),
        dlq_topic: cli.dlq_topic(),
        positions,
        ends,
        inputs,
        stats: Stats::default(),
        last_commit: Instant::now(),
        caught_up_clock_ms: 0,
        last_tick: Instant::now(),
        lag_checked: Instant::now(),
        nearly_caught_up: false,
    };
    session.run(&consumer, stop)
}

fn describe(list: &TopicPartitionList) -> Vec<String> {
    list.elements()
        .iter()
        .map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()))
        .collect()
}

/// A topic and its partitions.
type TopicPartitions = (String, Vec<i32>);

fn wait_for_inputs(
    consumer: &BaseConsumer,
    inputs: &[(String, Input); 3],
    stop: &AtomicBool,
) -> anyhow::Result<Option<Vec<TopicPartitions>>> {
    let mut logged = Instant::now() - Duration::from_secs(60);
    loop {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (topic, _) in inputs {
            match kafka::partitions(consumer, topic)? {
                Some(partitions) => found.push((topic.clone(), partitions)),
                None => missing.push(topic.clone()),
            }
        }
        if missing.is_empty() {
            return Ok(Some(found));
        }
        if logged.elapsed() >= Duration::from_secs(10) {
            tracing::info!(?missing, "waiting for the input topics (cdc-reader with --provide-transaction-metadata creates them with its first records)");
            logged = Instant::now();
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Session<'_> {
    fn run(&mut self, consumer: &BaseConsumer, stop: &AtomicBool) -> anyhow::Result<SessionEnd> {
        let mut last_report = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            match self.batch(consumer) {
                Ok(()) => {}
                Err(error) => {
                    let fenced = error
                        .downcast_ref::<KafkaError>()
                        .is_some_and(kafka::is_fenced);
                    if fenced {
                        return Ok(SessionEnd::Fenced(error.to_string()));
                    }
                    // Best effort: a broker that is away cannot take the abort either; the
                    // transaction then times out (transaction.timeout.ms) or the next
                    // init_transactions aborts it.
                    metrics::transaction_aborted();
                    if let Err(abort) = self.producer.abort_transaction(kafka::REQUEST_TIMEOUT) {
                        if kafka::is_fenced(&abort) {
                            return Ok(SessionEnd::Fenced(abort.to_string()));
                        }
                    }
                    return Err(error);
                }
            }
            if self.cli.until_caught_up && self.caught_up() {
                tracing::info!(
                    records = self.stats.records,
                    events = self.stats.events,
                    dead_letters = self.stats.dead_letters,
                    "caught up (--until-caught-up)"
                );
                return Ok(SessionEnd::Stopped);
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                tracing::info!(
                    records = self.stats.records,
                    events = self.stats.events,
                    dead_letters = self.stats.dead_letters,
                    kafka_transactions = self.stats.transactions,
                    orders = self.join.store().len(),
                    waiting_transactions = self.join.buffer().len(),
                    "progress"
                );
                last_report = Instant::now();
            }
        }
        Ok(SessionEnd::Stopped)
    }

    /// Whether less than one batch is left to read; asks the broker for the end offsets at
    /// most once a second (in between, the last answer holds).
    fn nearly_caught_up(&mut self, consumer: &BaseConsumer) -> bool {
        if self.lag_checked.elapsed() < Duration::from_secs(1) {
            return self.nearly_caught_up;
        }
        self.lag_checked = Instant::now();
        let mut behind: i64 = 0;
        for ((topic, partition), next) in &self.positions {
            match consumer.fetch_watermarks(topic, *partition, Duration::from_secs(1)) {
                Ok((_, high)) => behind += (high - next).max(0),
                Err(_) => return self.nearly_caught_up,
            }
        }
        self.nearly_caught_up = behind < self.cli.batch_size as i64;
        self.nearly_caught_up
    }

    /// Every input partition at its end offset of the start, nothing waiting, all committed.
    fn caught_up(&self) -> bool {
        self.join.buffer().is_empty()
            && self
                .ends
                .iter()
                .all(|(tp, end)| self.positions.get(tp).copied().unwrap_or(0) >= *end)
    }

    /// One batch, one Kafka transaction (none if nothing arrived and nothing is due).
    fn batch(&mut self, consumer: &BaseConsumer) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.cli.batch_timeout;
        let mut in_transaction = false;
        let mut count = 0;
        let mut outputs = Vec::new();
        let mut drained = false;
        while count < self.cli.batch_size {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            let message = match consumer.poll(wait) {
                None => {
                    drained = true;
                    break;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(error)) => return Err(error).context("cannot read the inputs"),
                Some(Ok(message)) => message,
            };
            if !in_transaction {
                self.producer
                    .begin_transaction()
                    .map_err(anyhow::Error::from)?;
                in_transaction = true;
            }
            self.accept(&message, &mut outputs)?;
            count += 1;
        }
        let elapsed = self.last_tick.elapsed().as_millis() as u64;
        self.last_tick = Instant::now();
        if drained || self.nearly_caught_up(consumer) {
            self.caught_up_clock_ms += elapsed;
        }
        self.join.poll(self.caught_up_clock_ms, &mut outputs);
        // Idle, nothing to write: no transaction, except now and then one that only commits
        // the offsets again. It costs little and makes an idle zombie learn it is fenced.
        let heartbeat_due =
            self.last_commit.elapsed() >= IDLE_COMMIT_EVERY && !self.positions.is_empty();
        if !in_transaction && outputs.is_empty() && !heartbeat_due {
            return Ok(());
        }
        if !in_transaction {
            self.producer
                .begin_transaction()
                .map_err(anyhow::Error::from)?;
        }
        let events = self.write_outputs(outputs)?;
        for (key, value) in self.join.take_changelog() {
            let mut record = BaseRecord::<str, [u8]>::to(&self.cli.changelog_topic).key(&key);
            if let Some(value) = &value {
                record = record.payload(value.as_slice());
            }
            self.send(record)?;
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in &self.positions {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(anyhow::Error::from)?;
        }
        if offsets.count() > 0 {
            let metadata = consumer
                .group_metadata()
                .context("the input consumer has no group metadata")?;
            self.producer
                .send_offsets_to_transaction(&offsets, &metadata, kafka::REQUEST_TIMEOUT)
                .map_err(anyhow::Error::from)?;
        }
        let committing = Instant::now();
        self.producer
            .commit_transaction(kafka::REQUEST_TIMEOUT)
            .map_err(anyhow::Error::from)?;
        metrics::transaction_committed(
            committing.elapsed(),
            &events,
            self.join.store().len(),
            self.join.buffer().len(),
        );
        self.last_commit = Instant::now();
        self.stats.records += count as u64;
        self.stats.transactions += 1;
        Ok(())
    }

    fn accept(
        &mut self,
        message: &BorrowedMessage<'_>,
        outputs: &mut Vec<JoinOutput>,
    ) -> anyhow::Result<()> {
        let topic = message.topic();
        metrics::record_read(topic);
        self.positions.insert(
            (topic.to_string(), message.partition()),
            message.offset() + 1,
        );
        let Some(input) = self
            .inputs
            .iter()
            .find(|(name, _)| name == topic)
            .map(|(_, input)| *input)
        else {
            return Ok(());
        };
        let now = self.caught_up_clock_ms;
        let decoded = match input {
            Input::Orders => decode_order_change(message.payload()).map(|c| c.map(Ok)),
            Input::Items => decode_item_change(message.payload()).map(|c| c.map(Ok)),
            Input::Transactions => {
                decode_transaction_end(message.payload(), &self.tables).map(|e| e.map(Err))
            }
        };
        match decoded {
            Ok(None) => {}
            Ok(Some(Ok(change))) => self.join.on_change(change, now),
            Ok(Some(Err(end))) => self.join.on_end(end, now, outputs),
            Err(error) => {
                tracing::warn!(topic, partition = message.partition(), offset = message.offset(), %error, "a record that cannot be decoded goes to {}", self.dlq_topic);
                let value = serde_json::json!({
                    "reason": format!("cannot decode: {error}"),
                    "topic": topic,
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "value": message.payload().map(String::from_utf8_lossy),
                });
                let value = serde_json::to_vec(&value).unwrap_or_default();
                let dlq_topic = self.dlq_topic.clone();
                self.send(
                    BaseRecord::<str, [u8]>::to(&dlq_topic)
                        .payload(&value)
                        .headers(OwnedHeaders::new().insert(Header {
                            key: "error",
                            value: Some(error.to_string().as_bytes()),
                        })),
                )?;
                self.stats.dead_letters += 1;
                metrics::dead_letter();
            }
        }
        Ok(())
    }

    /// Queues the events and dead letters of a batch; returns each event's type and source
    /// commit time (for the metrics, once the transaction commits).
    fn write_outputs(
        &mut self,
        outputs: Vec<JoinOutput>,
    ) -> anyhow::Result<Vec<(&'static str, i64)>> {
        let output_topic = self.cli.output_topic.clone();
        let dlq_topic = self.dlq_topic.clone();
        let mut events = Vec::new();
        for output in outputs {
            match output {
                JoinOutput::Event(event) => {
                    let key = event.key();
                    let value = event.to_json();
                    self.send(
                        BaseRecord::<str, [u8]>::to(&output_topic)
                            .key(&key)
                            .payload(&value),
                    )?;
                    self.stats.events += 1;
                    events.push((event.event_type.name(), event.source.ts_ms));
                }
                JoinOutput::DeadLetter(dead) => {
                    tracing::warn!(xid = dead.xid, reason = %dead.reason, "a source transaction goes to {dlq_topic}");
                    let key = dead.xid.to_string();
                    let value = dead.to_json();
                    self.send(
                        BaseRecord::<str, [u8]>::to(&dlq_topic)
                            .key(&key)
                            .payload(&value)
                            .headers(OwnedHeaders::new().insert(Header {
                                key: "error",
                                value: Some(dead.reason.as_bytes()),
                            })),
                    )?;
                    self.stats.dead_letters += 1;
                    metrics::dead_letter();
                }
                JoinOutput::HeldItems { order_id, xid } => {
                    tracing::debug!(
                        order_id,
                        xid,
                        "items of an unknown order held in the state store"
                    )
                }
                JoinOutput::DroppedDuplicate { xid } => {
                    tracing::debug!(xid, "a redelivered source transaction dropped")
                }
            }
        }
        Ok(events)
    }

    /// Queues one record, waiting while the producer's queue is full.
    fn send(&self, mut record: BaseRecord<'_, str, [u8]>) -> anyhow::Result<()> {
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.producer.poll(Duration::ZERO);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
}
