//! Three Kafka brokers (replication factor 3, min.insync.replicas 2) on a private stack, while
//! orders are created, updated and deleted and the consumer follows along:
//!
//! 1. kill -9 the broker leading partition 0 of the orders topic, bring it back later: the
//!    reader keeps confirming (two in-sync replicas are enough), the consumer follows the new
//!    leaders and keeps applying;
//! 2. two brokers down (below min.insync.replicas, and the controller quorum lost): the reader
//!    confirms nothing past what Kafka acknowledged, says why in its log, and resumes once one
//!    broker is back;
//! 3. at the end `order_totals` equals the GROUP BY over `orders`: nothing lost, nothing twice.
//!
//! One cluster for the whole file: three JVMs take a while to start.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{confirmed_flush_lsn, current_wal_lsn, slot_name, unique_prefix};
use db::private_stack::PrivateStack;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use sqlx::PgPool;

/// The reader process, killed when the test ends (also when it fails).
struct ReaderProcess(Child);

impl Drop for ReaderProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_reader(stack: &PrivateStack, name: &str, prefix: &str, url: &str) -> ReaderProcess {
    let log = std::fs::File::create(stack.dir().join("reader.log")).expect("reader log");
    Command::new(env!("CARGO_BIN_EXE_cdc-reader"))
        .args(["--database-url", url])
        .args([
            "--kafka-bootstrap-servers",
            &stack.kafka_bootstrap_servers(),
        ])
        .args(["--slot-name", &slot_name(name)])
        .args(["--publication-name", &format!("{name}_pub")])
        .args(["--topic-prefix", prefix, "--status-interval", "200ms"])
        .args(["--topic-partitions", "6"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(ReaderProcess)
        .expect("spawn cdc-reader")
}

fn leader_of(bootstrap: &str, topic: &str, partition: i32) -> Option<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let found = metadata.topics().iter().find(|t| t.name() == topic)?;
    let leader = found
        .partitions()
        .iter()
        .find(|p| p.id() == partition)?
        .leader();
    (leader > 0).then_some(leader)
}

async fn stored(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_brokers_loses_nothing() {
    let started = Instant::now();
    let name = "three_brokers";
    let stack = PrivateStack::up_with_brokers(name, 3);
    eprintln!("three brokers up in {:?}", started.elapsed());
    let url = stack.database_url("playground");
    let pool = db::connect(&url, 4).await.expect("connect");
    db::migrate(&pool, &url).await.expect("migrate");
    let bootstrap = stack.kafka_bootstrap_servers();
    let prefix = unique_prefix(name);
    let topic = format!("{prefix}.public.orders");
    let slot = slot_name(name);

    let mut reader = spawn_reader(&stack, name, &prefix, &url);
    common::wait_until_streaming(&pool, &slot).await;

    // The producer: creates, updates, cancels and deletes until told to stop.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = {
        let pool = pool.clone();
        let stop = stop_writing.clone();
        tokio::spawn(async move {
            let mut round = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                sqlx::query("INSERT INTO orders (customer_id, total) SELECT 1 + (g % 17), 1.25 * g FROM generate_series(1, 20) g")
                    .execute(&pool).await.expect("insert");
                sqlx::query("UPDATE orders SET total = total + 1, status = 'PAID' WHERE id > (SELECT max(id) - 60 FROM orders) AND id % 7 = $1 % 7")
                    .bind(round).execute(&pool).await.expect("update");
                sqlx::query("UPDATE orders SET status = 'CANCELLED' WHERE id > (SELECT max(id) - 60 FROM orders) AND id % 11 = $1 % 11")
                    .bind(round).execute(&pool).await.expect("cancel");
                sqlx::query("DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE id > (SELECT max(id) - 60 FROM orders) AND id % 13 = $1 % 13 LIMIT 3)")
                    .bind(round).execute(&pool).await.expect("delete");
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };

    // The consumer, in-process, for as long as the faults last (aborted at the end).
    let cli = consumer::Cli::try_parse_from([
        "consumer",
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--topics",
        &topic,
        "--group-id",
        "three-brokers",
        "--batch-timeout",
        "100ms",
    ])
    .expect("consumer flags");
    let follower = {
        let url = url.clone();
        let args = cli.consumer.clone();
        tokio::spawn(async move { consumer::consume(&url, &args).await })
    };
    wait_until("the consumer applies", Duration::from_secs(30), || async {
        stored(&pool).await > 0
    })
    .await;

    // 1. The leader of partition 0 dies.
    let leader = leader_of(&bootstrap, &topic, 0).expect("partition 0 has a leader") as u16;
    let applied_before = stored(&pool).await;
    let confirmed_before = confirmed_flush_lsn(&pool, &slot).await;
    tokio::task::block_in_place(|| stack.kill_broker(leader));
    eprintln!(
        "killed broker {leader} (leader of {topic}/0) at {:?}",
        started.elapsed()
    );
    // The controller notices the dead broker (broker.session.timeout.ms) and moves leaders.
    wait_until(
        "partition 0 gets a new leader",
        Duration::from_secs(40),
        || async { leader_of(&bootstrap, &topic, 0).is_some_and(|l| l as u16 != leader) },
    )
    .await;
    wait_until(
        "the reader confirms with two brokers",
        Duration::from_secs(40),
        || async { confirmed_flush_lsn(&pool, &slot).await > confirmed_before },
    )
    .await;
    let applied_then = stored(&pool).await.max(applied_before);
    wait_until(
        "the consumer follows the new leaders",
        Duration::from_secs(40),
        || async { stored(&pool).await > applied_then + 200 },
    )
    .await;
    eprintln!(
        "partition 0 has a new leader; reader and consumer go on ({:?})",
        started.elapsed()
    );
    tokio::task::block_in_place(|| stack.start_broker(leader));
    eprintln!("broker {leader} back at {:?}", started.elapsed());

    // 2. Two brokers down: below min.insync.replicas.
    let survivor = if leader == 1 { 2 } else { 1 };
    let down: Vec<u16> = (1..=3).filter(|b| *b != survivor).collect();
    for broker in &down {
        tokio::task::block_in_place(|| stack.kill_broker(*broker));
    }
    eprintln!("brokers {down:?} down at {:?}", started.elapsed());
    // What was acknowledged before the kill may still be confirmed; then the slot stands still.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let confirmed_at_outage = confirmed_flush_lsn(&pool, &slot).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let confirmed_during = confirmed_flush_lsn(&pool, &slot).await;
    let written = current_wal_lsn(&pool).await.0;
    assert_eq!(
        confirmed_during, confirmed_at_outage,
        "the slot moved although Kafka could not acknowledge"
    );
    assert!(
        confirmed_during < written,
        "the changes written meanwhile are not confirmed"
    );
    let log = std::fs::read_to_string(stack.dir().join("reader.log")).unwrap_or_default();
    assert!(
        log.contains("min.insync.replicas"),
        "the reader's log does not say why it waits:\n{log}"
    );
    assert!(
        reader.0.try_wait().expect("poll reader").is_none(),
        "the reader waits instead of exiting"
    );
    tokio::task::block_in_place(|| stack.start_broker(down[0]));
    eprintln!("broker {} back at {:?}", down[0], started.elapsed());
    wait_until(
        "the reader resumes confirming",
        Duration::from_secs(60),
        || async { confirmed_flush_lsn(&pool, &slot).await > written },
    )
    .await;
    tokio::task::block_in_place(|| stack.start_broker(down[1]));

    // 3. Stop writing; everything is delivered and applied once.
    stop_writing.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let end = current_wal_lsn(&pool).await.0;
    wait_until(
        "the reader confirms everything",
        Duration::from_secs(60),
        || async { confirmed_flush_lsn(&pool, &slot).await >= end },
    )
    .await;
    follower.abort();
    let _ = follower.await;
    let mut last = cli.consumer.clone();
    last.until_caught_up = true;
    let summary = consumer::consume(&url, &last)
        .await
        .expect("final consumer run");
    eprintln!("final run: {summary:?} at {:?}", started.elapsed());
    let differences: Vec<String> = sqlx::query_scalar(
        "WITH oracle AS (SELECT customer_id, count(*) AS order_count, sum(total) AS total_amount FROM orders GROUP BY customer_id), \
              d AS ((TABLE oracle EXCEPT SELECT customer_id, order_count, total_amount FROM order_totals) \
                    UNION ALL (SELECT customer_id, order_count, total_amount FROM order_totals EXCEPT TABLE oracle)) \
         SELECT format('customer %s: %s orders, %s', customer_id, order_count, total_amount) FROM d",
    )
    .fetch_all(&pool)
    .await
    .expect("compare");
    assert_eq!(differences, Vec::<String>::new());
    drop(reader);
}
