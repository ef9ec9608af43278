//! The Kafka clients of the processor, and the topics it needs.
//!
//! - the **transactional producer**: `transactional.id` stable per instance. `init_transactions`
//!   aborts whatever an earlier incarnation left open and bumps the producer epoch, so an older
//!   instance still running (a zombie) is *fenced*: its next write or commit fails.
//! - the **input consumer**: `isolation.level=read_committed`, `enable.auto.commit=false`. It
//!   `assign`s every partition of the three input topics itself (no group rebalancing: the join
//!   needs all of them in one process), at the offsets committed for `--group-id`; the offsets
//!   are committed only through the producer's transaction (`send_offsets_to_transaction`).
//! - the **restore consumer** reads the changelog from its beginning (see [`crate::restore`]).

use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::BaseProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long a metadata or transaction request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn base_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    config
}

/// The transactional producer (idempotent, `acks=all` implied by the transactions).
pub fn transactional_producer(
    bootstrap_servers: &str,
    transactional_id: &str,
) -> anyhow::Result<BaseProducer> {
    let producer: BaseProducer = base_config(bootstrap_servers)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "60000")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .with_context(|| format!("cannot create a Kafka producer for {bootstrap_servers}"))?;
    Ok(producer)
}

/// A read_committed consumer without automatic commits, for manual assignment;
/// `partition_eof`: say when a partition's end is reached (the restore needs to know).
pub fn input_consumer(
    bootstrap_servers: &str,
    group_id: &str,
    partition_eof: bool,
) -> anyhow::Result<BaseConsumer> {
    base_config(bootstrap_servers)
        .set("group.id", group_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "enable.partition.eof",
            if partition_eof { "true" } else { "false" },
        )
        .create()
        .with_context(|| format!("cannot create a Kafka consumer for {bootstrap_servers}"))
}

/// The partitions of `topic`; `Ok(None)` when it does not exist (yet).
pub fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Option<Vec<i32>>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| {
            format!("cannot read the metadata of {topic}: is Kafka running (`scripts/stack up`)?")
        })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(None);
    }
    let mut ids: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(Some(ids))
}

/// Assigns every partition of `topics` at the group's committed offsets (the beginning where
/// none is committed). Returns the assignment.
pub fn assign_at_committed(
    consumer: &BaseConsumer,
    topics: &[(String, Vec<i32>)],
) -> anyhow::Result<TopicPartitionList> {
    let mut wanted = TopicPartitionList::new();
    for (topic, partitions) in topics {
        for partition in partitions {
            wanted.add_partition(topic, *partition);
        }
    }
    let committed = consumer
        .committed_offsets(wanted, REQUEST_TIMEOUT)
        .context("cannot read the committed input offsets")?;
    let mut assignment = TopicPartitionList::new();
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(offset) => Offset::Offset(offset),
            _ => Offset::Beginning,
        };
        assignment
            .add_partition_offset(element.topic(), element.partition(), offset)
            .context("cannot build the assignment")?;
    }
    consumer
        .assign(&assignment)
        .context("cannot assign the input partitions")?;
    Ok(assignment)
}

/// Creates the topics the processor writes unless they exist; `compacted` ones with
/// `cleanup.policy=compact` (the changelog: only the latest value per key matters).
pub fn ensure_topics(
    bootstrap_servers: &str,
    partitions: i32,
    topics: &[(&str, bool)],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap_servers)
        .create()
        .with_context(|| format!("cannot create a Kafka admin client for {bootstrap_servers}"))?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|(name, compacted)| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime for the admin client")?;
    let results = runtime
        .block_on(admin.create_topics(new_topics.iter(), &options))
        .context("cannot create the output topics: is Kafka running (`scripts/stack up`)?")?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("Kafka refuses to create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Whether `error` says a newer producer with the same `transactional.id` took over.
pub fn is_fenced(error: &KafkaError) -> bool {
    let fenced_code = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    );
    let fatal = match error {
        KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    };
    fenced_code || fatal
}
