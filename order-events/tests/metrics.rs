//! `order-events --metrics-listen`: the processor serves Prometheus `/metrics`, and its counters
//! move with what it joins: records in per input topic, events out per type (as many as a
//! read_committed reader finds on the output), committed transactions, the state store's size
//! and the end-to-end latency, one observation per event.

mod common;

use std::time::{Duration, Instant};

use common::*;
use db::metrics::scrape;
use db::metrics_text::{buckets, sum};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_as_events_are_joined() {
    let name = "oe_metrics";
    let topics = Topics::new(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (reader, stop_reader) = start_reader(name, &topics.prefix, &url);
    wait_until_streaming(&pool, &slot_name(name)).await;
    let log = log_path(name);
    let addr = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let _processor = processor(
        &topics,
        &format!("{}-tx", topics.prefix),
        &log,
        &["--batch-timeout", "50ms", "--metrics-listen", &addr],
    );
    start_producer(&url, 120, 2_000)
        .await
        .expect("producer task")
        .expect("producer run");

    let orders_topic = format!("{}.public.orders", topics.prefix);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (samples, events) = loop {
        assert!(
            Instant::now() < deadline,
            "the processor's metrics never matched its output\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        if let Some(samples) = scrape(&addr).await {
            let counted = sum(&samples, "pgcdc_order_events_events_total", &[]);
            let events = events(&topics.output);
            if counted > 0.0 && counted == events.len() as f64 {
                break (samples, events);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let placed = events
        .iter()
        .filter(|e| e.event_type == projections::order_events::EventType::OrderPlaced)
        .count();
    assert_eq!(
        sum(
            &samples,
            "pgcdc_order_events_events_total",
            &[("type", "OrderPlaced")]
        ),
        placed as f64
    );
    assert!(
        sum(
            &samples,
            "pgcdc_order_events_records_total",
            &[("topic", orders_topic.as_str())]
        ) >= placed as f64
    );
    assert!(
        sum(
            &samples,
            "pgcdc_order_events_transactions_total",
            &[("outcome", "committed")]
        ) >= 1.0
    );
    assert_eq!(
        sum(&samples, "pgcdc_order_events_dead_letters_total", &[]),
        0.0
    );
    assert!(sum(&samples, "pgcdc_order_events_state_orders", &[]) >= 1.0);
    let latency = buckets(&samples, "pgcdc_order_events_end_to_end_latency_seconds");
    assert_eq!(
        latency.last().map_or(0.0, |b| b.1),
        events.len() as f64,
        "one latency observation per event: {latency:?}"
    );
    let _ = stop_reader.send(());
    let _ = reader.await;
}
