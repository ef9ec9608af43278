//! Restoring the state store from its changelog on start, as Kafka Streams does.
//!
//! The changelog is written in the same transactions as the output, so reading it with
//! `read_committed` from its beginning to its end gives exactly the state of the last committed
//! batch, the one the committed input offsets belong to. Compaction keeps it about as large
//! as the state (one record per order and waiting transaction), not as the input history.
//!
//! ```text
//! restoring order-events-state from order-events-state-changelog  [########>-----] 41200/60000
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use projections::order_events::OrderEventsJoin;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka;

/// Reads the whole changelog into `join`; returns how many records were read.
pub fn restore(
    bootstrap_servers: &str,
    changelog_topic: &str,
    join: &mut OrderEventsJoin,
    now_ms: u64,
) -> anyhow::Result<u64> {
    let consumer = kafka::input_consumer(bootstrap_servers, "order-events-restore", true)?;
    let partitions = kafka::partitions(&consumer, changelog_topic)?
        .with_context(|| format!("the changelog topic {changelog_topic} does not exist"))?;
    let mut assignment = TopicPartitionList::new();
    let mut open = 0;
    let mut total: u64 = 0;
    for partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(changelog_topic, *partition, kafka::REQUEST_TIMEOUT)
            .with_context(|| format!("cannot read the offsets of {changelog_topic}"))?;
        if high > low {
            assignment
                .add_partition_offset(changelog_topic, *partition, Offset::Beginning)
                .context("cannot build the restore assignment")?;
            open += 1;
            total += (high - low) as u64;
        }
    }
    if open == 0 {
        join.finish_restore(now_ms);
        return Ok(0);
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the changelog")?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("restoring {msg} [{bar:30}] {pos}/~{len} records")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("state from {changelog_topic}"));
    let mut records = 0;
    let mut last_progress = Instant::now();
    while open > 0 {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = message
                    .key()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                join.restore(&key, message.payload())
                    .with_context(|| format!("cannot restore from {changelog_topic}"))?;
                records += 1;
                bar.inc(1);
                last_progress = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(error)) => {
                return Err(error).with_context(|| format!("cannot read {changelog_topic}"))
            }
            None if last_progress.elapsed() > Duration::from_secs(60) => {
                bail!("restoring from {changelog_topic} made no progress for 60 s: is Kafka up?")
            }
            None => {}
        }
    }
    bar.finish_and_clear();
    join.finish_restore(now_ms);
    Ok(records)
}
