//! A Kafka restart in the middle of the processor's transactions (on a private stack: the
//! shared Kafka is never restarted): the open transaction aborts, the processor starts again
//! by itself from the committed offsets and the changelog, and a read_committed reader sees
//! every event once, in source order per order, matching PostgreSQL. Its own test binary,
//! since it points this process's KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL at the stack.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use db::private_stack::PrivateStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_restart_mid_transaction_loses_and_doubles_nothing() {
    let stack = std::sync::Arc::new(PrivateStack::up("oe_kafka_restart"));
    // The only test in this binary: the helpers read these.
    std::env::set_var("KAFKA_BOOTSTRAP_SERVERS", stack.kafka_bootstrap_servers());
    std::env::set_var("DATABASE_URL", stack.database_url("playground"));
    let name = "oe_kafka_restart";
    let topics = Topics::new(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (reader, stop_reader) = start_reader(name, &topics.prefix, &url);
    wait_until_streaming(&pool, &slot_name(name)).await;
    let log = log_path(name);
    let mut processor_process = processor(
        &topics,
        &format!("{}-tx", topics.prefix),
        &log,
        &["--batch-timeout", "500ms"],
    );
    let writes = start_producer(&url, 1500, 150);
    // Restart once events flow (batches of 500 ms: a transaction is open most of the time).
    let deadline = Instant::now() + Duration::from_secs(60);
    while events(&topics.output).len() < 50 {
        assert!(Instant::now() < deadline, "no events before the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restart = stack.clone();
    tokio::task::spawn_blocking(move || restart.restart_kafka())
        .await
        .unwrap();
    writes.await.unwrap().expect("producer run");

    let expected = database_orders(&pool).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let events = loop {
        let events = events(&topics.output);
        if orders_from_events(&events) == expected {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the events never matched PostgreSQL after the Kafka restart:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut ids = HashSet::new();
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for event in &events {
        assert!(ids.insert(event.event_id), "event {} twice", event.event_id);
        if let Some(previous) = last.insert(event.order_id, event.source.lsn) {
            assert!(
                previous < event.source.lsn,
                "order {} out of order",
                event.order_id
            );
        }
    }
    assert!(
        processor_process.try_wait().unwrap().is_none(),
        "the processor rode out the restart without being restarted by hand"
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let aborted = log_text.matches("the transaction was aborted").count();
    eprintln!("the processor started again {aborted} time(s) after an aborted transaction");
    processor_process.kill().unwrap();
    let _ = stop_reader.send(());
    let _ = reader.await;
}
