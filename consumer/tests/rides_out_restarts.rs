//! PostgreSQL restarted (fast and immediate shutdown) and crashed (kill -9 of the
//! postmaster), and Kafka restarted, each while the consumer is applying batches: the consumer
//! process never exits, applies every offset exactly once, and `order_totals` equals the
//! GROUP BY at the end. On a private stack (see `db::private_stack`), never the shared one.

mod common;

use std::time::Duration;

use common::faults::*;
use common::*;
use db::private_stack::PrivateStack;
use projections::synthetic::{debezium_records, random_history, with_redeliveries, Record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_a_crash_and_a_kafka_restart_never_stop_the_consumer() {
    let stack = PrivateStack::up("consumer_rides_out");
    let (url, pool) = private_database(&stack).await;
    let bootstrap = stack.kafka_bootstrap_servers();
    let topic = unique_topic("rides_out");
    create_topic_on(&bootstrap, &topic, 3).await;

    let (events, final_rows) = random_history(19, 300, 20_000, 60).finish();
    let delivered = with_redeliveries(&events, 19, 6, 300);
    let records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    write_final_orders(&pool, &final_rows).await;
    let chunks: Vec<&[Record]> = records.chunks(records.len().div_ceil(5)).collect();

    let mut consumer =
        ConsumerProcess::spawn(&url, &bootstrap, &topic, &stack.dir().join("consumer.log"));
    let faults: [(&str, &dyn Fn()); 4] = [
        ("restart postgres fast", &|| stack.restart_postgres("fast")),
        ("restart postgres immediate", &|| {
            stack.restart_postgres("immediate")
        }),
        ("crash postgres", &|| stack.crash_postgres()),
        ("restart kafka", &|| stack.restart_kafka()),
    ];
    let mut produced = 0;
    for (chunk, (name, fault)) in chunks.iter().zip(faults) {
        produce_to(&bootstrap, &topic, chunk).await;
        produced += chunk.len() as i64;
        // Break the server while the consumer is in the middle of this chunk.
        let before = stored_records(&pool).await.unwrap_or(0);
        wait_for_progress(&pool, before + 1, Duration::from_secs(20)).await;
        eprintln!(
            "{name} at {:?} of {produced} stored",
            stored_records(&pool).await
        );
        tokio::task::block_in_place(fault);
        assert!(
            consumer.running(),
            "the consumer exited after `{name}`:\n{}",
            consumer.log_text()
        );
    }
    for chunk in &chunks[faults.len()..] {
        produce_to(&bootstrap, &topic, chunk).await;
    }

    wait_for_stored(
        &pool,
        records.len() as i64,
        Duration::from_secs(60),
        &consumer.log_text(),
    )
    .await;
    assert!(
        consumer.running(),
        "the consumer exited:\n{}",
        consumer.log_text()
    );
    assert_eq!(differences(&pool).await, Vec::<String>::new());
    assert_eq!(batch_log_problems(&pool).await, Vec::<String>::new());
    let log = consumer.log_text();
    assert!(
        log.contains("starting again from the stored offsets"),
        "no retry was logged:\n{log}"
    );
    eprintln!(
        "writer epochs and ranges: {:?}",
        ranges_by_epoch(&pool).await
    );
}
