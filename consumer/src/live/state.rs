//! What the live page shows, gathered on each request: one JSON object, each part of it from
//! one source, each part marked up or down on its own.
//!
//! ```text
//! {"at_ms": 1764760000000,
//!  "postgres": {"up": true, "current_wal_lsn": 123, "slot": {"confirmed_flush_lsn": 120, "lag_bytes": 3,
//!               "retained_bytes": 8192, "active": true}, "orders": 2000, "totals_match": true},
//!  "kafka":    {"up": true, "partitions": [{"topic": "...", "partition": 0, "end": 9, "stored": 9, "lag": 0}]},
//!  "producer": {"up": false, "error": "nothing listens on 127.0.0.1:9100"},
//!  "reader":   {"up": true, "changes": 4000, "acknowledged": 4100, "in_flight": 0, ...,
//!               "commit_to_ack": {"p50": 0.004, "p95": 0.01, "p99": 0.02}},
//!  "consumer": {"up": true, "applied": 4000, "dead_letters": 0, "lag": 0, "end_to_end": {...}}}
//! ```
//!
//! Counters are totals since each binary started; the page turns them into rates. Quantiles
//! are over everything each binary observed since it started (from its histogram buckets).

use std::sync::Arc;
use std::time::Duration;

use db::metrics_text::{buckets, parse, quantile, sum, Sample};
use rdkafka::consumer::BaseConsumer;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::config::ConsumerArgs;
use crate::live::LiveArgs;
use crate::{kafka, offsets};

/// How long one source may take to answer before it counts as down for this refresh.
const SOURCE_TIMEOUT: Duration = Duration::from_millis(800);

/// The clients the page's state is gathered with, kept between requests.
pub struct Sources {
    pool: PgPool,
    kafka: Arc<BaseConsumer>,
    consumer_name: String,
    topics: Vec<String>,
    slot: String,
    producer_metrics: String,
    reader_metrics: String,
    consumer_metrics: String,
}

impl Sources {
    pub fn new(
        database_url: &str,
        consumer: &ConsumerArgs,
        live: &LiveArgs,
    ) -> anyhow::Result<Self> {
        // Lazy: the page starts (and shows PostgreSQL down) even while the database is away.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(SOURCE_TIMEOUT)
            .connect_lazy(database_url)?;
        Ok(Sources {
            pool,
            kafka: Arc::new(kafka::base_consumer(&consumer.bootstrap_servers)?),
            consumer_name: consumer.consumer_name(),
            topics: consumer.topics(),
            slot: live.slot_name.clone(),
            producer_metrics: live.producer_metrics.clone(),
            reader_metrics: live.reader_metrics.clone(),
            consumer_metrics: live.consumer_metrics.clone(),
        })
    }
}

/// The page's state now.
pub async fn gather(sources: &Sources) -> Value {
    let (postgres, kafka, producer, reader, consumer) = tokio::join!(
        postgres(sources),
        kafka_offsets(sources),
        scrape(&sources.producer_metrics, producer_numbers),
        scrape(&sources.reader_metrics, reader_numbers),
        scrape(&sources.consumer_metrics, consumer_numbers),
    );
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({"at_ms": at_ms, "postgres": postgres, "kafka": kafka,
           "producer": producer, "reader": reader, "consumer": consumer})
}

fn down(error: impl std::fmt::Display) -> Value {
    json!({"up": false, "error": error.to_string()})
}

async fn postgres(sources: &Sources) -> Value {
    let query = async {
        let (wal,): (f64,) =
            sqlx::query_as("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8")
                .fetch_one(&sources.pool)
                .await?;
        let slot: Option<(Option<f64>, Option<f64>, bool)> = sqlx::query_as(
            "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::float8,
                    (pg_current_wal_lsn() - restart_lsn)::float8, active
               FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&sources.slot)
        .fetch_optional(&sources.pool)
        .await?;
        let (orders, differences): (i64, i64) = sqlx::query_as(
            "WITH expected AS (SELECT customer_id, count(*)::bigint AS order_count, sum(total)::numeric AS total_amount
                                 FROM orders GROUP BY customer_id),
                  actual AS (SELECT customer_id, order_count, total_amount FROM order_totals)
             SELECT (SELECT count(*) FROM orders),
                    (SELECT count(*) FROM ((SELECT * FROM expected EXCEPT SELECT * FROM actual)
                                 UNION ALL (SELECT * FROM actual EXCEPT SELECT * FROM expected)) d)",
        )
        .fetch_one(&sources.pool)
        .await?;
        let slot = match slot {
            Some((confirmed, retained, active)) => json!({
                "name": sources.slot, "confirmed_flush_lsn": confirmed,
                "lag_bytes": confirmed.map(|c| (wal - c).max(0.0)),
                "retained_bytes": retained, "active": active}),
            None => json!({"name": sources.slot, "missing": true}),
        };
        Ok::<Value, sqlx::Error>(json!({"up": true, "current_wal_lsn": wal, "slot": slot,
            "orders": orders, "totals_match": differences == 0}))
    };
    match tokio::time::timeout(SOURCE_TIMEOUT * 2, query).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => down(error),
        Err(_) => down("PostgreSQL did not answer in time"),
    }
}

async fn kafka_offsets(sources: &Sources) -> Value {
    let stored = offsets::load(&sources.pool, &sources.consumer_name, &sources.topics)
        .await
        .unwrap_or_default();
    let consumer = sources.kafka.clone();
    let topics = sources.topics.clone();
    let marks =
        tokio::task::spawn_blocking(move || kafka::watermarks(consumer.as_ref(), &topics)).await;
    match marks {
        Ok(Ok(marks)) => {
            let partitions: Vec<Value> = marks
                .into_iter()
                .map(|((topic, partition), (low, high))| {
                    let stored = stored.get(&(topic.clone(), partition)).copied();
                    let lag = (high - stored.unwrap_or(low)).max(0);
                    json!({"topic": topic, "partition": partition, "end": high, "stored": stored, "lag": lag})
                })
                .collect();
            json!({"up": true, "partitions": partitions})
        }
        Ok(Err(error)) => down(format!("{error:#}")),
        Err(error) => down(error),
    }
}

async fn scrape(addr: &str, numbers: fn(&[Sample]) -> Value) -> Value {
    match db::metrics::http_get(addr, "/metrics", SOURCE_TIMEOUT).await {
        Ok(text) => {
            let mut value = numbers(&parse(&text));
            value["up"] = json!(true);
            value["address"] = json!(addr);
            value
        }
        Err(error) => json!({"up": false, "address": addr, "error": format!("{error:#}")}),
    }
}

/// p50, p95 and p99 of histogram `name`, in seconds (null without observations).
fn quantiles(samples: &[Sample], name: &str) -> Value {
    let b = buckets(samples, name);
    json!({"p50": quantile(&b, 0.5), "p95": quantile(&b, 0.95), "p99": quantile(&b, 0.99),
           "count": b.last().map_or(0.0, |l| l.1)})
}

fn producer_numbers(s: &[Sample]) -> Value {
    json!({"operations": sum(s, "pgcdc_producer_operations_total", &[]),
           "transaction": quantiles(s, "pgcdc_producer_transaction_seconds")})
}

fn reader_numbers(s: &[Sample]) -> Value {
    json!({"changes": sum(s, "pgcdc_reader_changes_total", &[]),
           "sent": sum(s, "pgcdc_reader_records_sent_total", &[]),
           "acknowledged": sum(s, "pgcdc_reader_records_acknowledged_total", &[]),
           "in_flight": sum(s, "pgcdc_reader_records_in_flight", &[]),
           "received_lsn": sum(s, "pgcdc_reader_received_lsn", &[]),
           "confirmed_lsn": sum(s, "pgcdc_reader_confirmed_lsn", &[]),
           "errors": sum(s, "pgcdc_reader_errors_total", &[]),
           "commit_to_ack": quantiles(s, "pgcdc_reader_commit_to_ack_seconds")})
}

fn consumer_numbers(s: &[Sample]) -> Value {
    let outcome = |o: &str| sum(s, "pgcdc_consumer_records_total", &[("outcome", o)]);
    json!({"applied": outcome("applied"), "duplicates": outcome("duplicate"),
           "tombstones": outcome("tombstone"), "dead_letters": outcome("dead_letter"),
           "records": sum(s, "pgcdc_consumer_records_total", &[]),
           "lag": sum(s, "pgcdc_consumer_lag_records", &[]),
           "end_to_end": quantiles(s, "pgcdc_consumer_end_to_end_latency_seconds")})
}
