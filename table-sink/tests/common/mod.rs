//! Helpers shared by table-sink's integration tests: cdc-reader in-process, waiting for it to
//! confirm what was written, and records produced straight onto a topic.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sqlx::PgPool;

pub use db::testing::kafka_bootstrap_servers as bootstrap;

pub async fn confirmed_flush_lsn(pool: &PgPool, slot: &str) -> Option<String> {
    sqlx::query_scalar("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1 AND active")
        .bind(slot)
        .fetch_optional(pool)
        .await
        .expect("slot")
        .flatten()
}

/// Waits until the reader of `slot` has confirmed everything written so far.
pub async fn wait_until_reader_caught_up(pool: &PgPool, slot: &str) {
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
        .fetch_one(pool)
        .await
        .expect("lsn");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let caught: Option<bool> = sqlx::query_scalar(
            "SELECT active AND confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(slot)
        .bind(&written)
        .fetch_optional(pool)
        .await
        .expect("slot");
        if caught == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "cdc-reader never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A source database of test `name` streaming to topics `<prefix>.public.*`: migrated, with
/// `orders` in REPLICA IDENTITY FULL when asked (a Cassandra key beyond the id needs the old
/// row), cdc-reader started on slot `slot_name(name)` and streaming. Returns the URL, a pool,
/// the slot and the reader.
pub async fn streaming_source(
    name: &str,
    prefix: &str,
    orders_identity_full: bool,
) -> (String, PgPool, String, ReaderHandle) {
    let (url, pool) = db::testing::fresh_database(name)
        .await
        .expect("source database");
    if orders_identity_full {
        sqlx::query("ALTER TABLE orders REPLICA IDENTITY FULL")
            .execute(&pool)
            .await
            .expect("replica identity");
    }
    let slot = db::testing::slot_name(name);
    let reader = start_reader(&url, &slot, &format!("{name}_pub"), prefix);
    db::testing::wait_until_streaming(&pool, &slot).await;
    (url, pool, slot, reader)
}

pub type WritesHandle =
    tokio::task::JoinHandle<Result<producer::report::Summary, producer::RunError>>;

/// The producer writing `operations` (the default mix) at `rate` per second into `url`.
pub fn spawn_writes(
    url: &str,
    operations: u32,
    rate: u32,
    concurrency: u32,
    seed: u64,
) -> WritesHandle {
    let producer_cli = producer::cli::Cli::try_parse_from([
        "producer",
        "--database-url",
        url,
        "--orders",
        &operations.to_string(),
        "--rate",
        &rate.to_string(),
        "--concurrency",
        &concurrency.to_string(),
        "--seed",
        &seed.to_string(),
        "--no-progress",
    ])
    .expect("producer flags");
    tokio::spawn(producer::run(producer_cli.run.into_config()))
}

pub type ReaderHandle =
    tokio::task::JoinHandle<Result<cdc_reader::reader::RunSummary, cdc_reader::ReaderError>>;

pub fn start_reader(url: &str, slot: &str, publication: &str, prefix: &str) -> ReaderHandle {
    let args = cdc_reader::config::ReaderArgs::try_parse_from([
        "cdc-reader",
        "--database-url",
        url,
        "--kafka-bootstrap-servers",
        &bootstrap(),
        "--slot-name",
        slot,
        "--publication-name",
        publication,
        "--topic-prefix",
        prefix,
        "--status-interval",
        "100ms",
    ])
    .expect("reader flags");
    tokio::spawn(async move { cdc_reader::reader::run(args, std::future::pending::<()>()).await })
}

pub async fn produce(topic: &str, records: &[(Option<&str>, Option<&str>)]) {
    let records: Vec<_> = records.iter().map(|(k, v)| (*k, *v, Vec::new())).collect();
    produce_with_headers(topic, &records).await;
}

pub type RecordWithHeaders<'a> = (Option<&'a str>, Option<&'a str>, Vec<(&'a str, String)>);

pub async fn produce_with_headers(topic: &str, records: &[RecordWithHeaders<'_>]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("producer");
    for (key, value, headers) in records {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if !headers.is_empty() {
            let mut owned = rdkafka::message::OwnedHeaders::new();
            for (name, value) in headers {
                owned = owned.insert(rdkafka::message::Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            record = record.headers(owned);
        }
        if let Some(key) = key {
            record = record.key(key.as_bytes());
        }
        if let Some(value) = value {
            record = record.payload(value.as_bytes());
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
}
