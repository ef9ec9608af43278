//! kill -9 the consumer binary at random moments during a run (at least 5 times); after a
//! final run to the end, the projections equal the oracle as if nothing had happened.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use projections::synthetic::{
    debezium_records, random_history, with_redeliveries, Record, SplitMix64,
};
use sqlx::PgPool;

fn spawn_consumer(url: &str, topic: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("DATABASE_URL", url)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("CONSUMER_TOPICS", topic)
        .env("CONSUMER_GROUP_ID", format!("group-{topic}"))
        .env("CONSUMER_BATCH_SIZE", "300")
        .env("CONSUMER_BATCH_TIMEOUT", "50ms")
        .env("CONSUMER_UNTIL_CAUGHT_UP", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the consumer binary")
}

async fn stored_records(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets")
        .fetch_one(pool)
        .await
        .expect("read offsets")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_changes_nothing() {
    let (url, pool) = db::testing::fresh_database("consumer_kill_9")
        .await
        .expect("database");
    let topic = unique_topic("kill");
    create_topic(&topic, 3).await;
    let (events, final_rows) = random_history(5, 500, 40_000, 80).finish();
    let delivered = with_redeliveries(&events, 6, 10, 500);
    let records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    produce(&topic, &records).await;
    write_final_orders(&pool, &final_rows).await;

    let mut rng = SplitMix64(2026);
    let mut kills = 0;
    let mut rounds = 0;
    while kills < 5 {
        rounds += 1;
        assert!(
            rounds < 50,
            "the consumer kept finishing before it could be killed"
        );
        let before = stored_records(&pool).await;
        let mut child = spawn_consumer(&url, &topic);
        let wait = Duration::from_millis(300 + rng.below(900));
        let start = Instant::now();
        while start.elapsed() < wait {
            if child.try_wait().expect("poll child").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if child.try_wait().expect("poll child").is_none() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
            kills += 1;
            let after = stored_records(&pool).await;
            eprintln!(
                "kill {kills} after {wait:?}: stored offsets {before} -> {after} of {}",
                records.len()
            );
        } else {
            // It finished; start over from scratch so the next kill lands mid-run.
            let mut replay = spawn_replay(&url, &topic);
            replay.kill().ok();
            replay.wait().ok();
        }
    }
    let mut last = spawn_consumer(&url, &topic);
    let status = last.wait().expect("final run");
    assert!(status.success(), "final run failed: {status}");
    assert_eq!(stored_records(&pool).await, records.len() as i64);
    assert_eq!(differences(&pool).await, Vec::<String>::new());
}

/// A replay killed right away: the next run starts over (or not: both are fine).
fn spawn_replay(url: &str, topic: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_consumer"));
    command
        .env("DATABASE_URL", url)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("CONSUMER_TOPICS", topic)
        .env("CONSUMER_REPLAY", "true")
        .env("CONSUMER_UNTIL_CAUGHT_UP", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().expect("spawn replay");
    std::thread::sleep(Duration::from_millis(200));
    child
}
