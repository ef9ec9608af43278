//! The dead-letter topic: where records that cannot be decoded go, so the consumer goes on.
//!
//! A poison record (malformed JSON, an unknown op, a schema that does not fit the orders
//! table) is copied to `<topic>.dlq` as it arrived (key, value, headers), with headers naming
//! the error and where it came from. The names are Kafka Connect's
//! (`errors.deadletterqueue.context.headers.enable=true`), so tools that know those know ours:
//!
//! ```text
//! topic dbserver1.public.orders.dlq, offset 3
//!   __connect.errors.topic              dbserver1.public.orders
//!   __connect.errors.partition          0
//!   __connect.errors.offset             1742
//!   __connect.errors.exception.class.name  projections::DecodeError
//!   __connect.errors.exception.message  unknown op `t` (expected c, u, d or r)
//!   __connect.errors.connector.name     order-projections-cdc
//! ```
//!
//! `cargo run -p consumer -- dlq` lists them.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka;
use crate::record::{BatchRecord, Poison};

pub const HEADER_TOPIC: &str = "__connect.errors.topic";
pub const HEADER_PARTITION: &str = "__connect.errors.partition";
pub const HEADER_OFFSET: &str = "__connect.errors.offset";
pub const HEADER_CLASS: &str = "__connect.errors.exception.class.name";
pub const HEADER_MESSAGE: &str = "__connect.errors.exception.message";
pub const HEADER_CONSUMER: &str = "__connect.errors.connector.name";

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Sends poison records to their dead-letter topics.
pub struct DeadLetters {
    producer: FutureProducer,
}

impl DeadLetters {
    pub fn new(producer: FutureProducer) -> Self {
        Self { producer }
    }

    /// Sends every record and waits until Kafka has acknowledged all of them.
    pub async fn send(
        &self,
        consumer: &str,
        poison: &[(&BatchRecord, &Poison)],
    ) -> anyhow::Result<()> {
        let mut deliveries = Vec::with_capacity(poison.len());
        for (record, p) in poison {
            let topic = dlq_topic(&record.topic);
            let partition = record.partition.to_string();
            let offset = record.offset.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(p.headers.len() + 6);
            for (key, value) in &p.headers {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            for (key, value) in [
                (HEADER_TOPIC, record.topic.as_str()),
                (HEADER_PARTITION, partition.as_str()),
                (HEADER_OFFSET, offset.as_str()),
                (HEADER_CLASS, "projections::DecodeError"),
                (HEADER_MESSAGE, p.error.as_str()),
                (HEADER_CONSUMER, consumer),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let mut message: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).headers(headers);
            if let Some(key) = &p.key {
                message = message.key(key.as_slice());
            }
            if let Some(value) = &p.value {
                message = message.payload(value.as_slice());
            }
            let label = format!(
                "{}/{}@{} to {topic}",
                record.topic, record.partition, record.offset
            );
            match self.producer.send_result(message) {
                Ok(delivery) => deliveries.push((delivery, label)),
                Err((error, _)) => {
                    return Err(error).with_context(|| format!("cannot send {label}"))
                }
            }
        }
        for (delivery, label) in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    return Err(error).with_context(|| format!("cannot send {label}"))
                }
                Err(_) => anyhow::bail!("cannot send {label}: the producer was dropped"),
            }
        }
        Ok(())
    }
}

/// One dead letter, as `dlq` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub dlq_offset: i64,
    pub original_topic: String,
    pub original_partition: String,
    pub original_offset: String,
    pub error: String,
    pub value: Option<Vec<u8>>,
}

/// Reads the last `limit` dead letters of `topic` (from `<topic>.dlq`).
pub fn read(bootstrap_servers: &str, topic: &str, limit: usize) -> anyhow::Result<Vec<DeadLetter>> {
    read_dlq(bootstrap_servers, &dlq_topic(topic), limit)
}

/// Reads the last `limit` records of the dead-letter topic `dlq` itself (table-sink's
/// `--dlq-topic` may name any topic).
pub fn read_dlq(
    bootstrap_servers: &str,
    dlq: &str,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    let dlq = dlq.to_string();
    let consumer = kafka::base_consumer(bootstrap_servers)?;
    let (low, high) = match consumer.fetch_watermarks(&dlq, 0, kafka::METADATA_TIMEOUT) {
        Ok(marks) => marks,
        Err(_) => return Ok(Vec::new()),
    };
    if high <= low {
        return Ok(Vec::new());
    }
    let start = low.max(high - limit as i64);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&dlq, 0, Offset::Offset(start))
        .with_context(|| format!("cannot seek {dlq}"))?;
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot read {dlq}"))?;
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters
        .last()
        .map(|l: &DeadLetter| l.dlq_offset + 1 < high)
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            anyhow::bail!("reading {dlq} timed out at {} of {high}", letters.len());
        }
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = result.with_context(|| format!("cannot read {dlq}"))?;
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().filter(|x| x.key == name).last())
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        letters.push(DeadLetter {
            dlq_offset: message.offset(),
            original_topic: header(HEADER_TOPIC),
            original_partition: header(HEADER_PARTITION),
            original_offset: header(HEADER_OFFSET),
            error: header(HEADER_MESSAGE),
            value: message.payload().map(<[u8]>::to_vec),
        });
    }
    drop(assignment);
    Ok(letters)
}

/// `cargo run -p consumer -- dlq`: prints the dead letters of each topic.
pub fn print(bootstrap_servers: &str, topics: &[String], limit: usize) -> anyhow::Result<()> {
    let dlqs: Vec<String> = topics.iter().map(|t| dlq_topic(t)).collect();
    print_dlqs(bootstrap_servers, &dlqs, limit)
}

/// Prints the dead letters of each dead-letter topic in `dlqs` (table-sink's `dlq` too).
pub fn print_dlqs(bootstrap_servers: &str, dlqs: &[String], limit: usize) -> anyhow::Result<()> {
    for dlq in dlqs {
        let letters = read_dlq(bootstrap_servers, dlq, limit)?;
        println!(
            "{dlq}: {} dead letter(s) shown (at most {limit})",
            letters.len()
        );
        for letter in letters {
            let value = letter
                .value
                .as_deref()
                .map(|v| {
                    let text = String::from_utf8_lossy(v);
                    let short: String = text.chars().take(80).collect();
                    if text.chars().count() > 80 {
                        format!("{short}...")
                    } else {
                        short
                    }
                })
                .unwrap_or_else(|| "(null)".to_string());
            println!(
                "  #{:<6} from {}/{}@{}: {}\n          value: {value}",
                letter.dlq_offset,
                letter.original_topic,
                letter.original_partition,
                letter.original_offset,
                letter.error
            );
        }
    }
    Ok(())
}
