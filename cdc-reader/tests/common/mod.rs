//! Shared helpers for cdc-reader's integration tests: each test gets its own database, slot,
//! publication and topic prefix, and reads back what the reader wrote to the real Kafka.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use cdc_reader::config::ReaderArgs;
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

/// Names and servers every test shares (`db::testing`); not every test binary uses each.
#[allow(unused_imports)]
pub use db::testing::{
    kafka_bootstrap_servers as bootstrap, slot_name, unique_topic_prefix as unique_prefix,
};

/// Reader flags for test `name`: its database URL, slot, publication, and topic prefix `prefix`.
pub fn reader_args(name: &str, prefix: &str, url: &str, extra: &[&str]) -> ReaderArgs {
    let slot = slot_name(name);
    let publication = format!("{name}_pub");
    let bootstrap = bootstrap();
    let mut argv = vec![
        "cdc-reader",
        "--database-url",
        url,
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--slot-name",
        &slot,
        "--publication-name",
        &publication,
        "--topic-prefix",
        prefix,
        "--status-interval",
        "200ms",
    ];
    argv.extend_from_slice(extra);
    ReaderArgs::try_parse_from(argv).expect("test flags parse")
}

/// One record read back from Kafka.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Value,
    pub value: Value,
    pub headers: Vec<(String, String)>,
}

impl ReadRecord {
    pub fn payload(&self) -> &Value {
        &self.value["payload"]
    }
    pub fn op(&self) -> Option<&str> {
        self.value["payload"]["op"].as_str()
    }
}

/// Reads every record of `topic` (partition 0) from the beginning, waiting until at least
/// `at_least` arrived (or `timeout`).
pub fn read_topic(topic: &str, at_least: usize, timeout: Duration) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("test-reader-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    // The topic may not exist yet: wait for its metadata.
    let partitions = loop {
        if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = metadata.topics().first() {
                if t.error().is_none() && !t.partitions().is_empty() {
                    break t.partitions().len() as i32;
                }
            }
        }
        if Instant::now() > deadline {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    while records.len() < at_least && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("kafka message");
        let parse = |bytes: Option<&[u8]>| match bytes {
            None => Value::Null,
            Some(b) => serde_json::from_slice(b)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into())),
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|header| {
                        (
                            header.key.to_string(),
                            String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(ReadRecord {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: parse(message.key()),
            value: parse(message.payload()),
            headers,
        });
    }
    records
}

/// Reads every record of `topic` up to its current end (the high watermark of each partition).
pub fn read_topic_to_end(topic: &str) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut total = 0usize;
    if let Some(t) = metadata.topics().first() {
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            total += (high - low) as usize;
        }
    }
    read_topic(topic, total, Duration::from_secs(120))
}

/// The slot's confirmed_flush_lsn as a number.
pub async fn confirmed_flush_lsn(pool: &sqlx::PgPool, slot: &str) -> u64 {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .fetch_optional(pool)
    .await
    .expect("slot query")
    .flatten();
    text.map(|t| t.parse::<cdc_reader::lsn::Lsn>().expect("lsn").0)
        .unwrap_or(0)
}

/// The server's current WAL insert position: everything committed so far ends before it.
/// (`pg_current_wal_lsn()` is the *write* position, which lags with synchronous_commit=off.)
pub async fn current_wal_lsn(pool: &sqlx::PgPool) -> cdc_reader::lsn::Lsn {
    let text: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
        .fetch_one(pool)
        .await
        .expect("lsn");
    text.parse().expect("lsn")
}

#[allow(unused_imports)]
pub use db::testing::wait_until_streaming;

/// A reader running in-process (a task), and the trigger that stops it (like SIGTERM).
pub type ReaderHandle =
    tokio::task::JoinHandle<Result<cdc_reader::reader::RunSummary, cdc_reader::ReaderError>>;

/// Starts the reader in-process with `args`.
pub fn start_reader(args: ReaderArgs) -> (ReaderHandle, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        cdc_reader::reader::run(args, async {
            let _ = stopped.await;
        })
        .await
    });
    (handle, stop)
}

/// Like `wait_until_streaming`, but a reader that stopped on its own fails the test at once
/// with the reader's error (instead of a minute later with "never started streaming").
pub async fn wait_until_reader_streams(pool: &sqlx::PgPool, slot: &str, reader: &mut ReaderHandle) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if reader.is_finished() {
            let ended = reader.await;
            panic!("the reader of {slot} stopped before streaming: {ended:?}");
        }
        if db::testing::is_streaming(pool, slot).await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the reader of {slot} never started streaming");
}

/// The reader as a separate process (so a test can kill -9 it), for test `name`, with `extra` flags.
pub fn reader_process(
    name: &str,
    prefix: &str,
    url: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cdc-reader"));
    command
        .args([
            "--database-url",
            url,
            "--kafka-bootstrap-servers",
            &bootstrap(),
        ])
        .args([
            "--slot-name",
            &slot_name(name),
            "--publication-name",
            &format!("{name}_pub"),
        ])
        .args(["--topic-prefix", prefix, "--status-interval", "100ms"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    command
}

/// Drops the test's slot once its reader has let go of it (slots pin WAL until dropped).
pub async fn drop_slot(pool: &sqlx::PgPool, slot: &str) {
    for _ in 0..100 {
        let dropped = sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
        )
        .bind(slot)
        .execute(pool)
        .await;
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1")
                .bind(slot)
                .fetch_one(pool)
                .await
                .unwrap_or(0);
        if dropped.is_ok() && left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows where order_totals (the consumer's projection) and the GROUP BY over orders disagree.
pub async fn order_totals_differences(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "WITH expected AS (SELECT customer_id, count(*)::bigint AS order_count, sum(total)::numeric AS total_amount
                             FROM orders GROUP BY customer_id),
              actual AS (SELECT customer_id, order_count, total_amount FROM order_totals)
         SELECT count(*) FROM ((SELECT * FROM expected EXCEPT SELECT * FROM actual)
                               UNION ALL (SELECT * FROM actual EXCEPT SELECT * FROM expected)) d",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Runs the consumer (`--until-caught-up`) against `url` with `extra` flags.
pub async fn consume_until_caught_up(url: &str, extra: &[&str]) {
    let bootstrap = bootstrap();
    let mut argv = vec![
        "consumer",
        "--database-url",
        url,
        "--kafka-bootstrap-servers",
        &bootstrap,
    ];
    argv.extend_from_slice(extra);
    argv.push("--until-caught-up");
    consumer::run(consumer::Cli::try_parse_from(argv).expect("consumer flags"))
        .await
        .expect("consumer run");
}

/// A record's key and value bytes (None: no key, a tombstone).
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Raw (key, value) bytes of every record of partition 0 of `topic` up to its end (Avro
/// records are bytes, not JSON).
pub fn raw_records(topic: &str) -> Vec<RawRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("raw-reader-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap_or((0, 0));
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (out.len() as i64) < high - low && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            out.push((
                message.key().map(<[u8]>::to_vec),
                message.payload().map(<[u8]>::to_vec),
            ));
        }
    }
    out
}
