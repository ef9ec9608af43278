//! The Kafka clients the consumer uses, and the topic facts it asks the broker for.
//!
//! The consumer does not let a consumer group decide which partitions it reads, nor where:
//! it `assign`s every partition of its topics itself, at the offsets stored in PostgreSQL
//! (see [`crate::offsets`]). Group rebalancing would hand partitions around at moments of
//! the broker's choosing, and each hand-over would need a seek to the PostgreSQL position in
//! a callback, racing with the batch in flight. One consumer process per projection database
//! (enforced by an advisory lock) needs none of that.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

/// How long a metadata or watermark request may take.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// `(topic, partition)`.
pub type TopicPartition = (String, i32);

fn base_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    config
}

/// A consumer for manual assignment: no auto-commit, no offset store; `group_id` only names
/// where the informational commits go.
pub fn stream_consumer(bootstrap_servers: &str, group_id: &str) -> anyhow::Result<StreamConsumer> {
    base_config(bootstrap_servers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // librdkafka's default, said aloud: records of aborted Kafka transactions (the
        // order-events processor's) are never seen.
        .set("isolation.level", "read_committed")
        // Prefetch generously: a replay reads as fast as PostgreSQL takes it.
        .set("queued.min.messages", "200000")
        .set("queued.max.messages.kbytes", "262144")
        // Many small fetches keep that queue topped up; one huge one stalls it.
        .set("fetch.max.bytes", "4194304")
        .set("max.partition.fetch.bytes", "4194304")
        .create()
        .with_context(|| format!("cannot create a Kafka consumer for {bootstrap_servers}"))
}

/// A member of the consumer group `group_id` (`--group-mode`): partitions come from the
/// group protocol, cooperative-sticky, and start where the rebalance callback in `context`
/// says (the stored offsets); nothing is committed automatically.
pub fn group_consumer(
    bootstrap_servers: &str,
    group_id: &str,
    context: crate::group::GroupContext,
) -> anyhow::Result<StreamConsumer<crate::group::GroupContext>> {
    base_config(bootstrap_servers)
        .set("group.id", group_id)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // A killed member's partitions move after this long without a heartbeat.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("queued.min.messages", "100000")
        .set("fetch.max.bytes", "4194304")
        .set("max.partition.fetch.bytes", "4194304")
        .create_with_context(context)
        .with_context(|| format!("cannot create a Kafka consumer for {bootstrap_servers}"))
}

/// A consumer for one-off reads (`dlq`, `status`): never commits anything.
pub fn base_consumer(bootstrap_servers: &str) -> anyhow::Result<BaseConsumer> {
    base_config(bootstrap_servers)
        .set("group.id", "order-projections-inspect")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .with_context(|| format!("cannot create a Kafka consumer for {bootstrap_servers}"))
}

/// The producer of dead letters: idempotent, acknowledged by all replicas.
pub fn producer(bootstrap_servers: &str) -> anyhow::Result<FutureProducer> {
    base_config(bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .with_context(|| format!("cannot create a Kafka producer for {bootstrap_servers}"))
}

/// The partitions of `topic`, or an error naming what to start when it does not exist.
pub fn partitions<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    topic: &str,
) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| {
            format!(
                "cannot read the metadata of topic {topic}: is Kafka running (`scripts/stack up`)?"
            )
        })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        bail!("topic {topic} does not exist");
    };
    if let Some(error) = found.error() {
        bail!(
            "topic {topic} is not available ({:?}): has cdc-reader written to it yet?",
            RDKafkaErrorCode::from(error)
        );
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions yet: has cdc-reader written to it?");
    }
    Ok(partitions)
}

/// Low and high watermarks (first offset, log-end offset) of each partition of `topics`.
pub fn watermarks<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    topics: &[String],
) -> anyhow::Result<BTreeMap<TopicPartition, (i64, i64)>> {
    let mut marks = BTreeMap::new();
    for topic in topics {
        for partition in partitions(consumer, topic)? {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .with_context(|| format!("cannot read the offsets of {topic}/{partition}"))?;
            marks.insert((topic.clone(), partition), (low, high));
        }
    }
    Ok(marks)
}

/// Creates `topic` with one partition unless it exists.
pub async fn ensure_topic(bootstrap_servers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap_servers)
        .create()
        .with_context(|| format!("cannot create a Kafka admin client for {bootstrap_servers}"))?;
    // -1: the brokers' default.replication.factor (3 on a three-broker stack).
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .with_context(|| format!("cannot create topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}
