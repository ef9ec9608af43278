//! The local stack is real: these tests talk to the PostgreSQL and Kafka that `scripts/stack up`
//! started (or whatever `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` point at) and check the
//! capabilities the rest of the pipeline relies on.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS.into())
}

#[tokio::test]
async fn postgres_runs_with_logical_wal_and_can_create_a_pgoutput_slot() {
    let (_url, pool) = db::testing::fresh_database("stack_postgres")
        .await
        .expect("test database");
    let wal_level: String = sqlx::query_scalar("SHOW wal_level")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(wal_level, "logical");

    sqlx::query("SELECT pg_create_logical_replication_slot('stack_test_slot', 'pgoutput')")
        .execute(&pool)
        .await
        .expect("create a logical slot (needs the REPLICATION role attribute)");
    let (slot, plugin): (String, String) = sqlx::query_as(
        "SELECT slot_name::text, plugin::text FROM pg_replication_slots WHERE slot_name = 'stack_test_slot'",
    )
    .fetch_one(&pool)
    .await
    .expect("the new slot is listed");
    assert_eq!(
        (slot.as_str(), plugin.as_str()),
        ("stack_test_slot", "pgoutput")
    );

    sqlx::query("SELECT pg_drop_replication_slot('stack_test_slot')")
        .execute(&pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'stack_test_slot'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_playground_schema_is_in_place_after_migrate() {
    let (url, pool) = db::testing::fresh_database("stack_schema")
        .await
        .expect("test database");
    db::require_schema(&pool, &url)
        .await
        .expect("every playground table exists");
    // Migrating twice is a no-op.
    db::migrate(&pool, &url).await.expect("second migrate");
    db::reset(&pool, &url).await.expect("reset");
    db::require_schema(&pool, &url)
        .await
        .expect("tables are back after reset");
}

fn consumer(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

/// Reads up to `n` messages' payloads, committing after each.
fn read_and_commit(consumer: &BaseConsumer, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < n && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("kafka message");
            seen.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
            consumer
                .commit_message(&message, CommitMode::Sync)
                .expect("commit");
        }
    }
    seen
}

#[tokio::test]
async fn kafka_creates_topics_takes_idempotent_writes_and_resumes_a_group_after_commit() {
    let topic = format!("stack-test-{}", std::process::id());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic request");
    assert!(
        created.iter().all(|r| r.is_ok()),
        "create topic: {created:?}"
    );

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..4 {
        let payload = format!("message-{i}");
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("acknowledged write");
    }

    let group = format!("{topic}-group");
    let first = consumer(&group);
    first.subscribe(&[&topic]).unwrap();
    assert_eq!(read_and_commit(&first, 2), vec!["message-0", "message-1"]);
    drop(first);

    // A second member of the same group starts where the first one committed.
    let second = consumer(&group);
    second.subscribe(&[&topic]).unwrap();
    assert_eq!(read_and_commit(&second, 2), vec!["message-2", "message-3"]);
    drop(second);

    admin
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .expect("delete topic");
}

/// Cassandra is in the stack on request (`scripts/stack up --with cassandra`; scripts/test asks
/// for it and exports CASSANDRA_CONTACT_POINTS). The probe speaks CQL: STARTUP, then a query.
#[test]
fn cassandra_answers_cql_when_the_stack_runs_it() {
    let Ok(contact_points) = std::env::var("CASSANDRA_CONTACT_POINTS") else {
        eprintln!(
            "skipped: CASSANDRA_CONTACT_POINTS is unset (scripts/stack up --with cassandra, \
             then eval \"$(scripts/stack env)\"; scripts/test does both)"
        );
        return;
    };
    let first = contact_points.split(',').next().unwrap_or_default().trim();
    let probe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cql_probe.py");
    let output = std::process::Command::new("python3")
        .arg(&probe)
        .arg(first)
        .output()
        .expect("run python3 scripts/cql_probe.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "Cassandra at {first} does not answer CQL: {}{stdout}\n(scripts/stack up --with cassandra; \
         scripts/stack logs cassandra)",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("Apache Cassandra 5."),
        "expected a 5.x release, got {stdout}"
    );
}
