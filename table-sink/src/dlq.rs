//! The dead-letter topic: records the sink cannot write go there, and the sink goes on.
//!
//! A record is dead-lettered when it cannot be decoded (not JSON, not Avro the registry
//! knows, an unknown op), when its key does not fit (missing, null, not a struct and no
//! `--primary-key-fields` to name it), or when the target refuses its values (a value that
//! overflows the column, a null in a NOT NULL column, a missing table or column with
//! `--schema-evolution none`). It is copied as it arrived (key, value, headers) to
//! `<topic>.dlq` (or `--dlq-topic`), with Kafka Connect's error headers, the same the
//! consumer writes (`consumer::dlq`), so one listing reads both:
//!
//! ```text
//! __connect.errors.topic                 dbserver1.public.orders
//! __connect.errors.partition             0
//! __connect.errors.offset                1742
//! __connect.errors.exception.class.name  table_sink::decode::DecodeError | table_sink::target::TargetError
//! __connect.errors.exception.message     field `total`: not base64: ...
//! __connect.errors.connector.name        table-sink   (the --group-id)
//! ```
//!
//! Dead letters are sent and acknowledged BEFORE the batch's offsets are stored, so a crash
//! may send one twice, never lose it. `table-sink dlq` lists them (`consumer::dlq::print`).

use anyhow::Context;
use consumer::dlq::{
    HEADER_CLASS, HEADER_CONSUMER, HEADER_MESSAGE, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A record as it arrived from Kafka (kept until its batch is written).
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record's Kafka timestamp (ms), for the end-to-end delay.
    pub timestamp_ms: Option<i64>,
}

/// One record to dead-letter and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: RawRecord,
    /// `table_sink::decode::DecodeError` or `table_sink::target::TargetError`.
    pub class: &'static str,
    pub error: String,
}

/// Sends dead letters and waits until Kafka acknowledged each.
pub async fn send(
    producer: &FutureProducer,
    group_id: &str,
    dlq_topic: impl Fn(&str) -> String,
    letters: &[DeadLetter],
) -> anyhow::Result<()> {
    let mut deliveries = Vec::with_capacity(letters.len());
    for letter in letters {
        let record = &letter.record;
        let topic = dlq_topic(&record.topic);
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + 6);
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        for (key, value) in [
            (HEADER_TOPIC, record.topic.as_str()),
            (HEADER_PARTITION, partition.as_str()),
            (HEADER_OFFSET, offset.as_str()),
            (HEADER_CLASS, letter.class),
            (HEADER_MESSAGE, letter.error.as_str()),
            (HEADER_CONSUMER, group_id),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut message: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(headers);
        if let Some(key) = &record.key {
            message = message.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            message = message.payload(value.as_slice());
        }
        let label = format!(
            "{}/{}@{} to {topic}",
            record.topic, record.partition, record.offset
        );
        match producer.send_result(message) {
            Ok(delivery) => deliveries.push((delivery, label)),
            Err((error, _)) => return Err(error).with_context(|| format!("cannot send {label}")),
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
