//! `table-sink --metrics-listen`: the binary serves Prometheus `/metrics`, and its counters move
//! with what it writes: rows per table and op, records per outcome (written, dead letter), the
//! dead letters per topic and the batch write time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use db::metrics::scrape;
use db::metrics_text::{buckets, sum};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use db::testing::Killed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_as_rows_are_written() {
    let (url, pool) = db::testing::fresh_database("sink_metrics")
        .await
        .expect("database");
    sqlx::query("CREATE TABLE things (id bigint PRIMARY KEY, amount integer NOT NULL)")
        .execute(&pool)
        .await
        .expect("create things");
    let bootstrap = db::testing::kafka_bootstrap_servers();
    let topic = format!(
        "{}.things",
        db::testing::unique_topic_prefix("sink_metrics")
    );
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    let records: Vec<(String, Option<String>)> = (1..=5)
        .map(|id| {
            (
                format!(r#"{{"id":{id}}}"#),
                Some(format!(r#"{{"id":{id},"amount":{}}}"#, id * 10)),
            )
        })
        .chain([(r#"{"id":6}"#.to_string(), Some("not json".to_string()))])
        .chain([(r#"{"id":2}"#.to_string(), None)])
        .collect();
    for (key, value) in &records {
        let mut record: FutureRecord<'_, str, str> = FutureRecord::to(&topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
    }

    let addr = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let _sink = Killed(
        Command::new(env!("CARGO_BIN_EXE_table-sink"))
            .args(["--kafka-bootstrap-servers", &bootstrap, "--topics", &topic])
            .args(["--to", &url, "--route", r".*=public.things"])
            .args(["--group-id", &format!("metrics-{topic}")])
            .args(["--metrics-listen", &addr])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start table-sink"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let samples = loop {
        assert!(
            Instant::now() < deadline,
            "table-sink's metrics never showed the 7 records"
        );
        if let Some(samples) = scrape(&addr).await {
            let seen = sum(&samples, "pgcdc_table_sink_records_total", &[]);
            if seen >= 7.0 {
                break samples;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let outcome = |outcome: &str| {
        sum(
            &samples,
            "pgcdc_table_sink_records_total",
            &[("topic", topic.as_str()), ("outcome", outcome)],
        )
    };
    assert_eq!(outcome("written"), 6.0, "5 upserts and a delete");
    assert_eq!(outcome("dead_letter"), 1.0);
    assert_eq!(
        sum(&samples, "pgcdc_table_sink_rows_written_total", &[]),
        6.0
    );
    assert_eq!(
        sum(
            &samples,
            "pgcdc_table_sink_dead_letters_total",
            &[("topic", topic.as_str())]
        ),
        1.0
    );
    let writes = buckets(&samples, "pgcdc_table_sink_batch_write_seconds");
    assert!(writes.last().map_or(0.0, |b| b.1) >= 1.0, "{writes:?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM things")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 4, "ids 1, 3, 4, 5 (2 was deleted)");
}
