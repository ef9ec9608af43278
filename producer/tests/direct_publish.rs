//! `--direct-publish` against the real Kafka: every event that was not "lost between commit and
//! publish" is on the topic; the lost ones are only in the database. The disagreement the
//! outbox pattern exists to prevent, made visible. With `--format avro`, every value is the
//! `OrderEvent` datum under the schema registered for the topic, and decodes to the payload the
//! database holds for the same event.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use producer::direct_publish::PublishFormat;
use producer::runner::DirectPublishConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use support::run_config;

fn bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS.to_string())
}

/// Reads the event ids (the `id` header) of all messages on partition 0 of `topic`.
fn read_event_ids(topic: &str, expected: usize) -> BTreeSet<String> {
    let messages = read_messages(topic, expected);
    let ids: BTreeSet<String> = messages.keys().cloned().collect();
    ids
}

/// All messages on partition 0 of `topic`, by event id (the `id` header): their values.
fn read_messages(topic: &str, expected: usize) -> BTreeMap<String, Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&partitions).unwrap();
    let mut ids = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Read until the expected count, then a little longer to catch any extra message.
    let mut quiet_until = None;
    while Instant::now() < deadline && quiet_until.is_none_or(|t| Instant::now() < t) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let headers = message.headers().unwrap();
            let id = headers
                .iter()
                .find(|h| h.key == "id")
                .and_then(|h| h.value)
                .unwrap();
            assert!(message.key().is_some() && message.payload().is_some());
            let value = message.payload().unwrap_or_default().to_vec();
            assert!(
                ids.insert(String::from_utf8(id.to_vec()).unwrap(), value)
                    .is_none(),
                "duplicate message"
            );
            assert!(headers.iter().any(|h| h.key == "eventType"));
        }
        if ids.len() >= expected && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    ids
}

#[tokio::test]
async fn events_lost_between_commit_and_publish_are_only_in_the_database() {
    let (url, pool) = db::testing::fresh_database("producer_direct_publish")
        .await
        .unwrap();
    let topic = format!(
        "producer_direct_publish_test_{}",
        uuid::Uuid::new_v4().simple()
    );
    let mut config = run_config(&url, 200, 11, 2, "create=60,update=20,cancel=10,delete=10");
    config.direct_publish = Some(DirectPublishConfig {
        bootstrap_servers: bootstrap_servers(),
        topic: topic.clone(),
        fail_probability: 0.25,
        format: PublishFormat::Json,
        schema_registry_url: db::testing::schema_registry_url(),
    });
    let summary = producer::run(config).await.unwrap();
    let publish = summary.direct_publish.clone().unwrap();
    assert_eq!(publish.published + publish.failed, 200);
    assert!(
        (20..=80).contains(&publish.failed),
        "about a quarter lost: {publish:?}"
    );
    assert!(summary
        .to_string()
        .contains("lost between commit and publish"));

    let in_database: BTreeSet<String> = sqlx::query_scalar("SELECT id::text FROM outbox_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        in_database.len(),
        200,
        "every operation committed its outbox row"
    );
    let in_kafka = read_event_ids(&topic, publish.published as usize);
    assert_eq!(in_kafka.len() as u64, publish.published);
    assert!(in_kafka.is_subset(&in_database));
    assert_eq!(
        in_database.difference(&in_kafka).count() as u64,
        publish.failed,
        "the disagreement"
    );

    delete_topic(&topic).await;
}

async fn delete_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .create()
        .unwrap();
    admin
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn avro_events_carry_the_registered_order_event_schema_and_decode_to_the_payload() {
    let (url, pool) = db::testing::fresh_database("producer_direct_publish_avro")
        .await
        .unwrap();
    let topic = format!("producer_avro_test_{}", uuid::Uuid::new_v4().simple());
    let registry = db::testing::schema_registry_url();
    let mut config = run_config(&url, 120, 12, 2, "create=60,update=20,cancel=10,delete=10");
    config.direct_publish = Some(DirectPublishConfig {
        bootstrap_servers: bootstrap_servers(),
        topic: topic.clone(),
        fail_probability: 0.0,
        format: PublishFormat::Avro,
        schema_registry_url: registry.clone(),
    });
    let summary = producer::run(config).await.unwrap();
    assert_eq!(summary.direct_publish.clone().unwrap().published, 120);

    // One subject, one version, our schema.
    let client = schema_registry::RegistryClient::new(&registry);
    assert_eq!(
        client.versions(&format!("{topic}-value")).await.unwrap(),
        vec![1]
    );
    let mut decoder = schema_registry::AvroDecoder::new(client);
    let in_database: BTreeMap<String, serde_json::Value> =
        sqlx::query_as::<_, (String, String)>("SELECT id::text, payload::text FROM outbox_events")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, payload)| (id, serde_json::from_str(&payload).unwrap()))
            .collect();
    let in_kafka = read_messages(&topic, 120);
    assert_eq!(in_kafka.len(), 120);
    for (id, value) in &in_kafka {
        assert_eq!(value[0], 0, "the magic byte");
        let decoded = decoder.decode(value).await.unwrap();
        assert!(decoded.writer.text.contains("io.pgcdc.playground.producer"));
        // The payload the database holds, with its timestamps as microseconds since the epoch.
        let mut expected = in_database[id].clone();
        for field in ["created_at", "updated_at"] {
            let text = expected[field].as_str().unwrap().to_string();
            let micros = chrono::DateTime::parse_from_rfc3339(&text)
                .unwrap()
                .timestamp_micros();
            expected[field] = serde_json::json!(micros);
        }
        if expected.get("previous_status").is_none() {
            expected["previous_status"] = serde_json::Value::Null;
        }
        assert_eq!(decoded.payload, expected, "event {id}");
    }
    delete_topic(&topic).await;
}
