//! The Kafka sink: rdkafka's idempotent producer, with acknowledgements routed back to the
//! pipeline so the reader confirms an LSN only after Kafka has the records before it.
//!
//! Settings that matter for "no data lost":
//! - `enable.idempotence=true`, `acks=all`: retries never duplicate or reorder within a partition.
//! - `message.timeout.ms=0`: a record is retried until Kafka takes it. While Kafka is down the
//!   queue fills, `send` answers [`SendError::QueueFull`], the reader stops reading WAL and
//!   confirms nothing more; when Kafka is back, everything drains and reading resumes.
//! - `partitioner=murmur2_random`: the same key lands on the same partition as with Java's
//!   producer (and so as with Debezium).

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::mpsc;

use super::{Ack, OutgoingRecord, SendError, Sink, SinkError};

/// How to reach Kafka and how to create topics.
#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub bootstrap_servers: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub compression: String,
    /// Extra librdkafka producer properties (`key=value`), applied last.
    pub properties: Vec<(String, String)>,
}

/// Routes delivery reports to the pipeline and Kafka's complaints to the log.
struct AckingContext {
    acks: mpsc::UnboundedSender<Ack>,
}

impl ClientContext for AckingContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, "kafka: {reason} (records wait in the queue and are retried; no LSN is confirmed meanwhile)");
    }
}

impl ProducerContext for AckingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: usize) {
        let result = match result {
            Ok(message) => {
                crate::metrics::record_acknowledged(rdkafka::Message::topic(message));
                Ok(())
            }
            Err((error, _)) => Err(error.to_string()),
        };
        // The receiver is gone only when the pipeline is shutting down.
        let _ = self.acks.send(Ack {
            ticket: ticket as u64,
            result,
        });
    }
}

/// Writes records to Kafka.
pub struct KafkaSink {
    producer: ThreadedProducer<AckingContext>,
    admin: AdminClient<DefaultClientContext>,
    config: KafkaSinkConfig,
    known_topics: HashSet<String>,
    acks: Option<mpsc::UnboundedReceiver<Ack>>,
}

impl KafkaSink {
    /// Creates the producer (it connects lazily: an unreachable Kafka shows up as retries).
    pub fn new(config: KafkaSinkConfig) -> Result<Self, SinkError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set("partitioner", "murmur2_random")
            .set("compression.type", &config.compression)
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.kbytes", "16384")
            .set("queue.buffering.max.messages", "100000");
        for (key, value) in &config.properties {
            client.set(key, value);
        }
        let producer: ThreadedProducer<AckingContext> = client
            .create_with_context(AckingContext { acks: sender })
            .map_err(|e| SinkError::Kafka(format!("cannot create the Kafka producer: {e}")))?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .create()
            .map_err(|e| SinkError::Kafka(format!("cannot create the Kafka admin client: {e}")))?;
        Ok(KafkaSink {
            producer,
            admin,
            config,
            known_topics: HashSet::new(),
            acks: Some(receiver),
        })
    }
}

impl Sink for KafkaSink {
    async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        if self.known_topics.contains(topic) {
            return Ok(());
        }
        let new_topic = NewTopic::new(
            topic,
            self.config.partitions,
            TopicReplication::Fixed(self.config.replication_factor),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        // Kafka may be down for a while: retry with backoff (nothing is confirmed meanwhile,
        // since the record waiting for this topic is not sent yet). Only a refusal for good
        // (an invalid name, no permission) stops the reader.
        let mut backoff = Duration::from_millis(500);
        loop {
            let results = match self.admin.create_topics([&new_topic], &options).await {
                Ok(results) => results,
                Err(error) => {
                    tracing::warn!(topic, %error, retry_in = ?backoff, "cannot reach Kafka to create the topic (scripts/stack up?); retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let mut retry = false;
            for result in results {
                match result {
                    Ok(_) => {
                        tracing::info!(topic, partitions = self.config.partitions, "created topic")
                    }
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((
                        _,
                        code
                        @ (RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::NotController),
                    )) => {
                        tracing::warn!(topic, %code, retry_in = ?backoff, "creating the topic timed out; retrying");
                        retry = true;
                    }
                    Err((name, code)) => {
                        return Err(SinkError::Kafka(format!(
                            "Kafka at {} refuses to create topic {name}: {code}",
                            self.config.bootstrap_servers
                        )))
                    }
                }
            }
            if !retry {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        self.known_topics.insert(topic.to_string());
        Ok(())
    }

    fn send(&mut self, record: OutgoingRecord<'_>, ticket: u64) -> Result<(), SendError> {
        let mut base: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(record.topic, ticket as usize);
        base.key = record.key;
        base.payload = record.value;
        if !record.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(*value),
                });
            }
            base = base.headers(headers);
        }
        match self.producer.send(base) {
            Ok(()) => {
                // The bytes as they go to Kafka: after the Avro sink encoded them, if it did.
                crate::metrics::bytes_sent(
                    record.topic,
                    record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len),
                );
                Ok(())
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                Err(SendError::QueueFull)
            }
            Err((error, _)) => Err(SendError::Fatal(format!(
                "kafka rejected a record for {}: {error}",
                record.topic
            ))),
        }
    }

    fn flush(&mut self, timeout: Duration) -> Result<(), SinkError> {
        self.producer.flush(timeout).map_err(|e| {
            SinkError::Kafka(format!(
                "records still unacknowledged after {timeout:?}: {e}"
            ))
        })
    }

    fn take_acks(&mut self) -> mpsc::UnboundedReceiver<Ack> {
        self.acks
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }
}
