//! `--direct-publish` against the real Kafka: every event that was not "lost between commit and
//! publish" is on the topic; the lost ones are only in the database. The disagreement the
//! outbox pattern exists to prevent, made visible.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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
    let mut ids = BTreeSet::new();
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
            assert!(
                ids.insert(String::from_utf8(id.to_vec()).unwrap()),
                "duplicate message"
            );
            assert!(message.key().is_some() && message.payload().is_some());
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

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .create()
        .unwrap();
    admin
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await
        .unwrap();
}
