//! Two consumer processes on the same database and PostgreSQL restarted under them (fast,
//! then immediate shutdown): the advisory locks vanish with the restarts, both consumers race
//! to claim the projections again, and still only one applied each batch: in
//! `projection_batches` every offset range of every partition appears once, and the writer
//! epochs never go down along the offsets (a consumer that lost its claim wrote nothing
//! after the claim that replaced it). `order_totals` equals the GROUP BY. On a private stack.

mod common;

use std::time::Duration;

use common::faults::*;
use common::*;
use db::private_stack::PrivateStack;
use projections::synthetic::{debezium_records, random_history, with_redeliveries, Record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_lost_its_lock_never_writes_beside_the_new_writer() {
    let stack = PrivateStack::up("consumer_one_writer");
    let (url, pool) = private_database(&stack).await;
    let bootstrap = stack.kafka_bootstrap_servers();
    let topic = unique_topic("one_writer");
    create_topic_on(&bootstrap, &topic, 3).await;

    let (events, final_rows) = random_history(23, 300, 16_000, 60).finish();
    let delivered = with_redeliveries(&events, 23, 5, 300);
    let records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    write_final_orders(&pool, &final_rows).await;
    let chunks: Vec<&[Record]> = records.chunks(records.len().div_ceil(4)).collect();

    let mut first = ConsumerProcess::spawn(&url, &bootstrap, &topic, &stack.dir().join("a.log"));
    produce_to(&bootstrap, &topic, chunks[0]).await;
    wait_for_progress(&pool, 1, Duration::from_secs(20)).await;
    let mut second = ConsumerProcess::spawn(&url, &bootstrap, &topic, &stack.dir().join("b.log"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    for (chunk, mode) in chunks[1..3].iter().zip(["fast", "immediate"]) {
        produce_to(&bootstrap, &topic, chunk).await;
        let before = stored_records(&pool).await.unwrap_or(0);
        wait_for_progress(&pool, before + 1, Duration::from_secs(20)).await;
        tokio::task::block_in_place(|| stack.restart_postgres(mode));
    }
    for chunk in &chunks[3..] {
        produce_to(&bootstrap, &topic, chunk).await;
    }
    let logs = |first: &ConsumerProcess, second: &ConsumerProcess| {
        format!(
            "first:\n{}\nsecond:\n{}",
            first.log_text(),
            second.log_text()
        )
    };
    wait_for_stored(
        &pool,
        records.len() as i64,
        Duration::from_secs(60),
        &logs(&first, &second),
    )
    .await;

    let both_running = first.running() && second.running();
    assert!(
        both_running,
        "a consumer exited:\n{}",
        logs(&first, &second)
    );
    assert_eq!(
        batch_log_problems(&pool).await,
        Vec::<String>::new(),
        "{}",
        logs(&first, &second)
    );
    assert_eq!(differences(&pool).await, Vec::<String>::new());
    let epochs = ranges_by_epoch(&pool).await;
    assert!(
        epochs.len() >= 2,
        "the restarts should have made the writer claim again: {epochs:?}"
    );
    assert!(
        second
            .log_text()
            .contains("another consumer is writing the projections"),
        "the second consumer never waited for the lock:\n{}",
        logs(&first, &second)
    );
    let claims = |text: String| {
        text.matches("claimed the projections as writer epoch")
            .count()
    };
    eprintln!(
        "ranges by writer epoch: {epochs:?}; claims: first {}, second {}",
        claims(first.log_text()),
        claims(second.log_text())
    );
}
