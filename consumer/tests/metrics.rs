//! `consumer --metrics-listen`: the binary serves Prometheus `/metrics`, and the counters move
//! as it applies records (applied, tombstones, dead letters), with the batch and end-to-end
//! latency histograms filled and the lag per partition going to 0.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use db::metrics::scrape;
use db::metrics_text::{buckets, sum};
use projections::synthetic::{debezium_records, random_history, Record};

use db::testing::Killed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_as_records_are_applied() {
    let (url, _pool) = db::testing::fresh_database("consumer_metrics")
        .await
        .expect("database");
    let topic = unique_topic("metrics");
    create_topic(&topic, 2).await;
    let (events, _) = random_history(7, 40, 400, 20).finish();
    let mut records: Vec<Record> = events
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    records.extend(poison_records(3));
    produce(&topic, &records).await;
    let tombstones = records.iter().filter(|r| r.value.is_none()).count() as f64;

    let addr = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let _consumer = Killed(
        Command::new(env!("CARGO_BIN_EXE_consumer"))
            .args([
                "--database-url",
                &url,
                "--kafka-bootstrap-servers",
                &bootstrap_servers(),
            ])
            .args(["--topics", &topic, "--group-id", &format!("group-{topic}")])
            .args(["--batch-timeout", "50ms", "--metrics-listen", &addr])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the consumer"),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let samples = loop {
        assert!(
            Instant::now() < deadline,
            "the consumer did not apply every record within 60 s"
        );
        if let Some(samples) = scrape(&addr).await {
            let seen = sum(&samples, "pgcdc_consumer_records_total", &[]);
            let lag = sum(&samples, "pgcdc_consumer_lag_records", &[]);
            let lag_known = db::metrics_text::has(&samples, "pgcdc_consumer_lag_records");
            if seen >= records.len() as f64 && lag_known && lag == 0.0 {
                break samples;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let outcome = |o: &str| sum(&samples, "pgcdc_consumer_records_total", &[("outcome", o)]);
    assert!(outcome("applied") > 0.0);
    assert_eq!(outcome("tombstone"), tombstones);
    assert_eq!(outcome("dead_letter"), 3.0);
    assert_eq!(
        outcome("applied") + outcome("duplicate") + outcome("tombstone") + outcome("dead_letter"),
        records.len() as f64
    );
    let observed = |name: &str| buckets(&samples, name).last().map_or(0.0, |b| b.1);
    assert!(observed("pgcdc_consumer_batch_records") >= 1.0);
    assert!(observed("pgcdc_consumer_batch_apply_seconds") >= 1.0);
    // One observation per change (the synthetic records carry a source.ts_us).
    assert_eq!(
        observed("pgcdc_consumer_end_to_end_latency_seconds"),
        outcome("applied") + outcome("duplicate")
    );
    assert!(samples.iter().any(
        |s| s.name == "pgcdc_consumer_lag_records" && s.label("topic") == Some(topic.as_str())
    ));
}
