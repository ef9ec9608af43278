//! The dual write the outbox pattern avoids: after COMMIT, publish the event to Kafka directly.
//!
//! With `--direct-publish`, the producer does what many applications do: write the database,
//! then send a message. Two systems, two writes, no shared transaction. If the process dies (or
//! the network fails) between the two, the database has the change and Kafka never hears of it.
//! `--fail-between-commit-and-publish 0.05` makes that happen to 5% of the events, so learners
//! can compare `outbox.events` (this module's topic) with the outbox topic CDC fills, which
//! cannot miss a committed event.
//!
//! ```text
//! COMMIT ──ok──> [crash window: --fail-between-commit-and-publish p] ──> send to outbox.events
//! ```
//!
//! The message is what Debezium's Outbox Event Router would produce from the same row (with the
//! usual `table.fields.additional.placement=type:header:eventType`), so the same consumer code
//! reads both topics:
//!
//! ```text
//! topic    outbox.events
//! key      42                      (aggregateid: the order id, so one order stays in order)
//! value    {"order_id":42,...}     (the payload JSON)
//! headers  id=<event uuid>, eventType=OrderCreated
//! ```
//!
//! With `--format avro` the value is the same event as an Avro datum in the Confluent wire
//! format, under the application's own `OrderEvent` schema, registered once at start
//! ([`crate::order_event_avro`]); key and headers stay as they are.

use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::order_event_avro::{self, AvroEventError};
use crate::outbox::OutboxEvent;
use schema_registry::{wire, RegistryClient};

/// The topic direct-published events go to unless `--direct-publish-topic` says otherwise.
pub const DEFAULT_TOPIC: &str = "outbox.events";

/// How long to wait for the broker before saying it is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one publish may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why direct publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "cannot reach Kafka at {bootstrap_servers} for --direct-publish: {reason}. \
         Is the stack running? Start it with `scripts/stack up`, or set KAFKA_BOOTSTRAP_SERVERS"
    )]
    Unreachable {
        bootstrap_servers: String,
        reason: String,
    },
    /// The registry did not take the `OrderEvent` schema (unreachable, or it refused it).
    #[error("--format avro: {0}")]
    Registry(String),
    #[error("--format avro: {0}")]
    Avro(#[from] AvroEventError),
    #[error("publishing event {event_id} to topic {topic} failed: {reason}")]
    Send {
        event_id: String,
        topic: String,
        reason: String,
    },
}

/// librdkafka's own logs and connection errors, at debug level (`RUST_LOG=librdkafka=debug`).
///
/// While a broker is down librdkafka reports it many times a second; the producer reports
/// the failure once, as a [`PublishError`], instead.
#[derive(Clone, Copy, Default)]
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, reason);
    }
}

/// How a direct-published event's value is written (`--format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PublishFormat {
    /// The payload JSON, as Debezium's Outbox Event Router writes it.
    #[default]
    Json,
    /// The `OrderEvent` Avro datum in the Confluent wire format (schema in the registry).
    Avro,
}

/// The registered `OrderEvent` schema: what each Avro value is written with.
#[derive(Clone)]
struct RegisteredSchema {
    id: u32,
    schema: Arc<Schema>,
}

/// A Kafka producer for one topic, checked to be reachable when it is made.
#[derive(Clone)]
pub struct DirectPublisher {
    producer: FutureProducer<QuietContext>,
    topic: String,
    avro: Option<RegisteredSchema>,
}

impl DirectPublisher {
    /// Connects to `bootstrap_servers` and checks the broker answers (within 5 s); with
    /// [`PublishFormat::Avro`], registers (or finds) the `OrderEvent` schema under
    /// `<topic>-value` in the registry at `schema_registry_url`.
    pub async fn connect(
        bootstrap_servers: &str,
        topic: &str,
        format: PublishFormat,
        schema_registry_url: &str,
    ) -> Result<DirectPublisher, PublishError> {
        let unreachable = |reason: String| PublishError::Unreachable {
            bootstrap_servers: bootstrap_servers.to_string(),
            reason,
        };
        let producer: FutureProducer<QuietContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .create_with_context(QuietContext)
            .map_err(|e| unreachable(e.to_string()))?;
        // librdkafka connects lazily; asking for metadata proves the broker is there.
        let probe = producer.clone();
        tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, CONNECT_TIMEOUT))
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let avro = match format {
            PublishFormat::Json => None,
            PublishFormat::Avro => Some(register_schema(topic, schema_registry_url).await?),
        };
        Ok(DirectPublisher {
            producer,
            topic: topic.to_string(),
            avro,
        })
    }

    /// The schema id the values carry (`None` in JSON mode).
    pub fn schema_id(&self) -> Option<u32> {
        self.avro.as_ref().map(|registered| registered.id)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends `event` and waits until the broker has it.
    pub async fn publish(&self, event: &OutboxEvent) -> Result<(), PublishError> {
        let event_id = event.id.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "id",
                value: Some(event_id.as_str()),
            })
            .insert(Header {
                key: "eventType",
                value: Some(event.event_type.as_str()),
            });
        let value = match &self.avro {
            None => event.payload.clone().into_bytes(),
            Some(registered) => wire::encode(
                registered.id,
                &order_event_avro::datum(&registered.schema, &event.payload)?,
            ),
        };
        let record = FutureRecord::to(&self.topic)
            .key(&event.aggregate_id)
            .payload(&value)
            .headers(headers);
        self.producer
            .send(record, SEND_TIMEOUT)
            .await
            .map(|_delivery| ())
            .map_err(|(error, _message)| PublishError::Send {
                event_id,
                topic: self.topic.clone(),
                reason: error.to_string(),
            })
    }
}

/// Registers `OrderEvent` under `<topic>-value` (the registry answers with the existing id when
/// the subject has it already), as a Confluent serializer with `auto.register.schemas` does.
async fn register_schema(
    topic: &str,
    schema_registry_url: &str,
) -> Result<RegisteredSchema, PublishError> {
    let schema = order_event_avro::schema()?;
    let subject = format!("{topic}-value");
    let id = RegistryClient::new(schema_registry_url)
        .register(&subject, order_event_avro::SCHEMA)
        .await
        .map_err(|e| PublishError::Registry(e.to_string()))?;
    tracing::info!(subject, id, "OrderEvent schema registered");
    Ok(RegisteredSchema {
        id,
        schema: Arc::new(schema),
    })
}
