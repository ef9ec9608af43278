//! The whole pipeline, for real: producer -> PostgreSQL -> cdc-reader -> Kafka -> consumer ->
//! order_totals, with cdc-reader killed (kill -9) in the middle of the run. Its redelivered
//! records arrive at new offsets; order_totals must still equal the GROUP BY over orders, when
//! built from the CDC topic, rebuilt by a replay, and built from the outbox topic instead.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{
    confirmed_flush_lsn, consume_until_caught_up as consume, current_wal_lsn,
    order_totals_differences as differences, slot_name, unique_prefix,
};

fn spawn_reader(name: &str, prefix: &str, url: &str) -> Child {
    let outbox_topics = format!("{prefix}.outbox.event.${{routedByValue}}");
    common::reader_process(
        name,
        prefix,
        url,
        &["--outbox-topic-replacement", &outbox_topics],
    )
    .spawn()
    .expect("start cdc-reader")
}

async fn slot_active(pool: &sqlx::PgPool, slot: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT active FROM pg_replication_slots WHERE slot_name = $1")
        .bind(slot)
        .fetch_optional(pool)
        .await
        .unwrap()
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_totals_is_exact_after_a_reader_crash_a_replay_and_from_the_outbox() {
    let name = "pipeline";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let slot = slot_name(name);

    let mut reader = spawn_reader(name, &prefix, &url);
    common::wait_until_streaming(&pool, &slot).await;

    // The application writes while the reader streams.
    let producer_cli = producer::cli::Cli::try_parse_from([
        "producer",
        "--database-url",
        &url,
        "--orders",
        "3000",
        "--rate",
        "1500",
        "--concurrency",
        "2",
        "--seed",
        "7",
        "--no-progress",
    ])
    .expect("producer flags");
    let writes = tokio::spawn(producer::run(producer_cli.run.into_config()));

    // kill -9 the reader once it has delivered part of the run, then start it again.
    let start = confirmed_flush_lsn(&pool, &slot).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while confirmed_flush_lsn(&pool, &slot).await < start + 300_000 && !writes.is_finished() {
        assert!(Instant::now() < deadline, "the reader made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !writes.is_finished(),
        "the kill lands while the producer still writes"
    );
    reader.kill().expect("kill -9");
    reader.wait().unwrap();
    while slot_active(&pool, &slot).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut reader = spawn_reader(name, &prefix, &url);

    let summary = writes.await.unwrap().expect("producer run");
    assert_eq!(
        summary.counts.values().sum::<u64>(),
        3000,
        "the producer wrote its operations"
    );
    let written = current_wal_lsn(&pool).await.0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while confirmed_flush_lsn(&pool, &slot).await < written {
        assert!(
            Instant::now() < deadline,
            "the restarted reader never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let cdc_topic = format!("{prefix}.public.orders");
    let outbox_topic = format!("{prefix}.outbox.event.order");
    consume(&url, &["--topics", &cdc_topic]).await;
    assert_eq!(
        differences(&pool).await,
        0,
        "order_totals from the CDC topic"
    );

    consume(&url, &["--topics", &cdc_topic, "--replay"]).await;
    assert_eq!(differences(&pool).await, 0, "order_totals after a replay");

    consume(
        &url,
        &["--from", "outbox", "--topics", &outbox_topic, "--replay"],
    )
    .await;
    assert_eq!(
        differences(&pool).await,
        0,
        "order_totals from the outbox topic"
    );

    reader.kill().ok();
    reader.wait().ok();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}
