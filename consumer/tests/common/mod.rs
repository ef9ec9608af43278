//! Shared test support: a fresh database and topic per test, producing hand-made records,
//! and the oracle (`GROUP BY` over the final `orders` rows, in SQL).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consumer::{ConsumerArgs, Source};
use projections::synthetic::Record;
use projections::{OrderId, OrderRow};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sqlx::PgPool;

pub fn bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS.to_string())
}

/// A topic name no earlier run used: `test.consumer.<name>.<nanos>`.
pub fn unique_topic(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("test.consumer.{name}.{nanos}")
}

pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&bootstrap_servers(), topic, partitions).await
}

/// Creates `topic` on the broker at `bootstrap` (a private stack's).
pub async fn create_topic_on(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    for result in results {
        result.expect("topic created");
    }
}

/// Produces `records` in order (same key, same partition: per-order order is kept).
pub async fn produce(topic: &str, records: &[Record]) {
    produce_to(&bootstrap_servers(), topic, records).await
}

/// Produces `records` in order to the broker at `bootstrap` (a private stack's).
pub async fn produce_to(bootstrap: &str, topic: &str, records: &[Record]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(records.len());
    for record in records {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut message: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .key(record.key.as_slice())
            .headers(headers);
        if let Some(value) = &record.value {
            message = message.payload(value.as_slice());
        }
        pending.push(
            producer
                .send_result(message)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
        if pending.len() >= 50_000 {
            for delivery in pending.drain(..) {
                delivery.await.expect("delivery").expect("delivered");
            }
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery").expect("delivered");
    }
}

/// The consumer's arguments for a test topic.
pub fn args(topic: &str, from: Source) -> ConsumerArgs {
    ConsumerArgs {
        bootstrap_servers: bootstrap_servers(),
        from,
        topics: vec![topic.to_string()],
        group_id: Some(format!("group-{topic}")),
        batch_size: 1000,
        batch_timeout: Duration::from_millis(100),
        batch_idle: Duration::from_millis(5),
        replay: false,
        group_mode: false,
        until_caught_up: true,
        retry_backoff: Duration::from_millis(200),
        retry_backoff_max: Duration::from_secs(2),
        schema_registry_url: std::env::var("SCHEMA_REGISTRY_URL")
            .unwrap_or_else(|_| consumer::config::DEFAULT_SCHEMA_REGISTRY_URL.to_string()),
        metrics_listen: None,
    }
}

/// Writes the final rows to `orders`, so the oracle is the very query of the issue.
pub async fn write_final_orders(pool: &PgPool, rows: &BTreeMap<OrderId, OrderRow>) {
    let ids: Vec<i64> = rows.keys().copied().collect();
    let customers: Vec<i64> = rows.values().map(|r| r.customer_id).collect();
    let statuses: Vec<String> = rows.values().map(|r| r.status.clone()).collect();
    let totals: Vec<i64> = rows.values().map(|r| r.total.0).collect();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, total) \
         SELECT i, c, s, t::numeric * 0.01 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) AS u(i, c, s, t)",
    )
    .bind(ids)
    .bind(customers)
    .bind(statuses)
    .bind(totals)
    .execute(pool)
    .await
    .expect("insert final orders");
}

/// Rows where `order_totals` and `SELECT customer_id, count(*), sum(total) FROM orders GROUP BY
/// customer_id` differ (empty = equal), and the same for the status projection.
pub async fn differences(pool: &PgPool) -> Vec<String> {
    let by_customer: Vec<String> = sqlx::query_scalar(
        "WITH oracle AS (SELECT customer_id, count(*) AS order_count, sum(total) AS total_amount FROM orders GROUP BY customer_id), \
              d AS ((TABLE oracle EXCEPT SELECT customer_id, order_count, total_amount FROM order_totals) \
                    UNION ALL (SELECT customer_id, order_count, total_amount FROM order_totals EXCEPT TABLE oracle)) \
         SELECT format('customer %s: %s orders, %s', customer_id, order_count, total_amount) FROM d",
    )
    .fetch_all(pool)
    .await
    .expect("compare order_totals");
    let by_status: Vec<String> = sqlx::query_scalar(
        "WITH oracle AS (SELECT status, count(*) AS order_count, sum(total) AS total_amount FROM orders GROUP BY status), \
              d AS ((TABLE oracle EXCEPT SELECT status, order_count, total_amount FROM order_status_totals) \
                    UNION ALL (SELECT status, order_count, total_amount FROM order_status_totals EXCEPT TABLE oracle)) \
         SELECT format('status %s: %s orders, %s', status, order_count, total_amount) FROM d",
    )
    .fetch_all(pool)
    .await
    .expect("compare order_status_totals");
    by_customer.into_iter().chain(by_status).collect()
}

/// `order_totals` as text rows, to compare two runs exactly.
pub async fn order_totals(pool: &PgPool) -> Vec<(i64, i64, String)> {
    sqlx::query_as("SELECT customer_id, order_count, total_amount::text FROM order_totals ORDER BY customer_id")
        .fetch_all(pool)
        .await
        .expect("read order_totals")
}

/// Poison records of every kind, `count` of them.
pub fn poison_records(count: usize) -> Vec<Record> {
    let kinds: [&[u8]; 5] = [
        b"this is not json",
        br#"{"before":null,"after":{"id":1,"customer_id":1,"status":"NEW","total":"BM4="},"source":{"lsn":5},"op":"t"}"#,
        br#"{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"total","type":"int64"}]}]},"payload":{"after":{"id":1,"customer_id":1,"status":"NEW","total":5},"source":{"lsn":5},"op":"c"}}"#,
        br#"{"after":{"id":1,"status":"NEW","total":"BM4="},"source":{"lsn":5},"op":"c"}"#,
        br#"{"after":{"id":1,"customer_id":1,"status":"NEW","total":"BM4="},"op":"u"}"#,
    ];
    (0..count)
        .map(|i| Record {
            key: format!("{{\"id\":{}}}", 900_000 + i).into_bytes(),
            value: Some(kinds[i % kinds.len()].to_vec()),
            headers: vec![],
        })
        .collect()
}

pub mod faults;
