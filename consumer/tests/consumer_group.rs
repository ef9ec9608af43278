//! Three `consumer --group-mode` processes share a six-partition topic; every few seconds one
//! of them is killed with SIGKILL and a new one started, while the records of creates,
//! updates, cancels and deletes (with a reader's redeliveries) keep arriving. At the end:
//!
//! - `order_totals` and `order_status_totals` equal the `GROUP BY` over the final orders;
//! - every offset of every partition was applied exactly once: in `projection_batches` the
//!   ranges of a partition follow each other with no overlap and no gap (a record applied by
//!   two members would show as two overlapping ranges), and several members did apply.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use projections::synthetic::{
    debezium_records, random_history, with_redeliveries, Record, SplitMix64,
};
use sqlx::PgPool;

fn spawn_member(url: &str, topic: &str, until_caught_up: bool) -> Child {
    Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("DATABASE_URL", url)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("CONSUMER_TOPICS", topic)
        .env("CONSUMER_GROUP_ID", format!("group-{topic}"))
        .env("CONSUMER_GROUP_MODE", "true")
        .env("CONSUMER_BATCH_SIZE", "200")
        .env("CONSUMER_BATCH_TIMEOUT", "50ms")
        .env("CONSUMER_UNTIL_CAUGHT_UP", until_caught_up.to_string())
        .env(
            "RUST_LOG",
            std::env::var("GROUP_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(if std::env::var("GROUP_TEST_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("spawn the consumer binary")
}

async fn stored_records(pool: &PgPool, consumer: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE consumer = $1",
    )
    .bind(consumer)
    .fetch_one(pool)
    .await
    .expect("read offsets")
}

/// Per partition: overlapping ranges, and gaps, in the batch log (both must be empty).
async fn overlaps_and_gaps(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('%s/%s: [%s, %s) by %s after [.., %s) by %s', topic, partition, first_offset, next_offset, \
                       writer_epoch, previous_next, previous_writer) \
         FROM (SELECT *, lag(next_offset) OVER w AS previous_next, lag(writer_epoch) OVER w AS previous_writer \
               FROM projection_batches WINDOW w AS (PARTITION BY topic, partition ORDER BY first_offset)) b \
         WHERE previous_next IS NOT NULL AND first_offset <> previous_next",
    )
    .fetch_all(pool)
    .await
    .expect("read the batch log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_group_members_while_records_arrive() {
    let (url, pool) = db::testing::fresh_database("consumer_group")
        .await
        .expect("database");
    let topic = unique_topic("group");
    let group = format!("group-{topic}");
    create_topic(&topic, 6).await;
    let (events, final_rows) = random_history(17, 300, 24_000, 60).finish();
    let delivered = with_redeliveries(&events, 4, 12, 400);
    let records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    write_final_orders(&pool, &final_rows).await;

    // The records arrive in eight slices over the first ~16 s.
    let producer = {
        let topic = topic.clone();
        let records = records.clone();
        tokio::spawn(async move {
            for slice in records.chunks(records.len().div_ceil(8)) {
                produce(&topic, slice).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };

    let mut members: Vec<Child> = (0..3).map(|_| spawn_member(&url, &topic, false)).collect();
    let mut rng = SplitMix64(99);
    let chaos = Instant::now();
    let mut kills = 0;
    while chaos.elapsed() < Duration::from_secs(24) {
        tokio::time::sleep(Duration::from_millis(2000 + rng.below(2000))).await;
        let victim = rng.below(members.len() as u64) as usize;
        let mut child = members.swap_remove(victim);
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        kills += 1;
        members.push(spawn_member(&url, &topic, false));
        eprintln!(
            "kill {kills} at {:?}: stored offsets {} of {}",
            chaos.elapsed(),
            stored_records(&pool, &group).await,
            records.len()
        );
    }
    producer.await.expect("producer");
    // The last members stay: three more join with --until-caught-up; once the group's stored
    // offsets reach the end, they exit, and so may the others be stopped.
    let mut finishers: Vec<Child> = (0..3).map(|_| spawn_member(&url, &topic, true)).collect();
    let deadline = Instant::now() + Duration::from_secs(45);
    for child in &mut finishers {
        loop {
            if let Some(status) = child.try_wait().expect("poll") {
                assert!(status.success(), "a finishing member failed: {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the group did not catch up in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for mut child in members {
        child.kill().ok();
        child.wait().ok();
    }

    assert!(kills >= 5, "only {kills} kills");
    assert_eq!(stored_records(&pool, &group).await, records.len() as i64);
    assert_eq!(differences(&pool).await, Vec::<String>::new());
    assert_eq!(overlaps_and_gaps(&pool).await, Vec::<String>::new());
    let (starts, applied): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE first_offset = 0), coalesce(sum(next_offset - first_offset), 0)::bigint FROM projection_batches",
    )
    .fetch_one(&pool)
    .await
    .expect("batch log");
    assert_eq!(starts, 6, "every partition's log starts at offset 0");
    assert_eq!(applied, records.len() as i64, "each record applied once");
    let writers: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT writer_epoch) FROM projection_batches")
            .fetch_one(&pool)
            .await
            .expect("writers");
    assert!(writers >= 4, "only {writers} members applied batches");
}
