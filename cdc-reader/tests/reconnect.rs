//! PostgreSQL goes away under a running reader, in every way a learner can make it go away,
//! while rows are being inserted; the reader connects again by itself each time, and at the
//! end every inserted row is on the topic (duplicates allowed, nothing lost).
//!
//! The faults, against a private stack of its own (`db::private_stack`: they would break every
//! other test on the shared one):
//!
//! ```text
//! scripts/stack restart postgres fast        the walsender ends the stream, the server goes down
//! scripts/stack restart postgres immediate   connections cut without a word, crash recovery
//! scripts/stack crash postgres               kill -9 the postmaster, crash recovery
//! pg_terminate_backend(walsender)            an operator ends the replication connection
//! pg_terminate_backend(catalog connection)   noticed at the next Relation message (ALTER TABLE)
//! kill -STOP walsender                       a silent connection: no frame, no keepalive answer,
//!                                            until --connection-timeout; the frozen walsender
//!                                            holds the slot until it is woken (SIGCONT)
//! ```
//!
//! (Kafka restarts are tests/kafka_outage.rs: the sink waits them out, no reconnect needed.)
//!
//! A second test drops the slot while the reader runs: that no retry can fix, and the reader
//! stops with the fix.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use db::private_stack::PrivateStack;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Inserts one order per transaction until told to stop, riding out the outages itself: a
/// failed insert is tried again (ON CONFLICT DO NOTHING: its COMMIT may have happened).
async fn insert_orders(url: String, stop: Arc<AtomicBool>, inserted: Arc<AtomicI64>) {
    let mut pool = None;
    let mut id = 1i64;
    while !stop.load(Ordering::Relaxed) {
        if pool.is_none() {
            pool = db::connect(&url, 1).await.ok();
        }
        let Some(current) = &pool else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let done = sqlx::query(
            "INSERT INTO orders (id, customer_id, total) VALUES ($1, 1, 1.00) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .execute(current)
        .await;
        match done {
            Ok(_) => {
                inserted.store(id, Ordering::Relaxed);
                id += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                pool = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The ids of every `orders` record on `topic` of the private Kafka.
fn ids_on_topic(
    bootstrap: &str,
    topic: &str,
    want: &BTreeSet<i64>,
    timeout: Duration,
) -> BTreeSet<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reconnect-test-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut seen = BTreeSet::new();
    while !want.is_subset(&seen) && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let Some(value) = message.payload() else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_slice(value).expect("JSON record");
        if let Some(id) = value["payload"]["after"]["id"].as_i64() {
            seen.insert(id);
        }
    }
    seen
}

async fn walsender_pid(pool: &sqlx::PgPool, slot: &str) -> Option<i32> {
    sqlx::query_scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1")
        .bind(slot)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
        .flatten()
}

/// Waits until the reader streams again (its walsender holds the slot) and has confirmed a row
/// inserted after the fault, so each fault hits a reader that recovered from the one before.
async fn wait_until_recovered(url: &str, slot: &str, inserted: &AtomicI64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let target = inserted.load(Ordering::Relaxed) + 5;
    // First the writer gets row `target` in; the WAL position then is past its commit.
    let after_row: u64 = loop {
        assert!(
            Instant::now() < deadline,
            "the writer did not recover from {what}"
        );
        if let Ok(pool) = db::connect(url, 1).await {
            let lsn: Option<String> = sqlx::query_scalar(
                "SELECT pg_current_wal_insert_lsn()::text WHERE EXISTS (SELECT FROM orders WHERE id = $1)",
            )
            .bind(target)
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
            pool.close().await;
            if let Some(lsn) = lsn {
                break lsn.parse::<cdc_reader::lsn::Lsn>().expect("lsn").0;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Then the reader streams again and confirms past it: the row is delivered.
    loop {
        assert!(
            Instant::now() < deadline,
            "the reader did not recover from {what}"
        );
        if let Ok(pool) = db::connect(url, 1).await {
            let confirmed = common::confirmed_flush_lsn(&pool, slot).await;
            let active = walsender_pid(&pool, slot).await.is_some();
            pool.close().await;
            if active && confirmed >= after_row {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The reader process; killed if the test fails before it stops it (it would retry forever).
struct ReaderProcess(Option<Child>);

impl Drop for ReaderProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_reader(
    stack: &PrivateStack,
    url: &str,
    slot: &str,
    prefix: &str,
    log: &std::path::Path,
) -> Child {
    let log_file = std::fs::File::create(log).expect("reader log");
    Command::new(env!("CARGO_BIN_EXE_cdc-reader"))
        .args(["--database-url", url])
        .args([
            "--kafka-bootstrap-servers",
            &stack.kafka_bootstrap_servers(),
        ])
        .args(["--slot-name", slot, "--publication-name", "reconnect_pub"])
        .args(["--tables", "public.orders", "--topic-prefix", prefix])
        .args(["--status-interval", "100ms", "--connection-timeout", "4s"])
        .args(["--retry-backoff", "100ms", "--retry-backoff-max", "1s"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start cdc-reader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_rides_out_restarts_a_crash_a_killed_and_a_frozen_walsender() {
    let stack = tokio::task::spawn_blocking(|| PrivateStack::up("reader_reconnect"))
        .await
        .unwrap();
    let stack = Arc::new(stack);
    let admin = db::connect(&stack.database_url("playground"), 1)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE reconnect")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = stack.database_url("reconnect");
    let pool = db::connect(&url, 2).await.unwrap();
    db::migrate(&pool, &url).await.unwrap();
    pool.close().await;

    let slot = "reconnect_slot";
    let prefix = "reconnect";
    let log = stack.dir().join("cdc-reader.log");
    let mut reader = ReaderProcess(Some(spawn_reader(&stack, &url, slot, prefix, &log)));
    {
        let pool = db::connect(&url, 1).await.unwrap();
        common::wait_until_streaming(&pool, slot).await;
        pool.close().await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicI64::new(0));
    let writer = tokio::spawn(insert_orders(url.clone(), stop.clone(), inserted.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let fault = |args: &'static [&'static str]| {
        let stack = stack.clone();
        async move {
            tokio::task::spawn_blocking(move || stack.run(args))
                .await
                .unwrap()
        }
    };
    fault(&["restart", "postgres", "fast"]).await;
    wait_until_recovered(&url, slot, &inserted, "a fast restart").await;
    fault(&["restart", "postgres", "immediate"]).await;
    wait_until_recovered(&url, slot, &inserted, "an immediate restart").await;
    fault(&["crash", "postgres"]).await;
    wait_until_recovered(&url, slot, &inserted, "a crash").await;

    let pool = db::connect(&url, 1).await.unwrap();
    let pid = walsender_pid(&pool, slot).await.expect("a walsender");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ended);
    pool.close().await;
    wait_until_recovered(&url, slot, &inserted, "pg_terminate_backend").await;

    // The catalog connection alone: the next Relation message (after an ALTER TABLE) needs it.
    let pool = db::connect(&url, 1).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(cdc_reader::catalog::APPLICATION_NAME)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ended, [true], "one catalog connection");
    sqlx::query("ALTER TABLE orders ADD COLUMN note text")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    wait_until_recovered(&url, slot, &inserted, "a lost catalog connection").await;

    // Frozen: the TCP connection stays up, nothing comes through it.
    let pool = db::connect(&url, 1).await.unwrap();
    let pid = walsender_pid(&pool, slot).await.expect("a walsender");
    pool.close().await;
    let signal = |name: &str| {
        assert!(Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .unwrap()
            .success())
    };
    signal("-STOP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("nothing arrived on the replication connection")
    {
        assert!(
            Instant::now() < deadline,
            "the reader never noticed the silent connection"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // it retries while the slot stays busy
    signal("-CONT");
    wait_until_recovered(&url, slot, &inserted, "a frozen walsender").await;

    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let pool = db::connect(&url, 1).await.unwrap();
    let in_table: BTreeSet<i64> = sqlx::query_scalar::<_, i64>("SELECT id FROM orders")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    pool.close().await;
    assert!(
        in_table.len() > 100,
        "the writer got {} rows in",
        in_table.len()
    );
    let bootstrap = stack.kafka_bootstrap_servers();
    let topic = format!("{prefix}.public.orders");
    let want = in_table.clone();
    let on_topic = tokio::task::spawn_blocking(move || {
        ids_on_topic(&bootstrap, &topic, &want, Duration::from_secs(60))
    })
    .await
    .unwrap();
    let missing: Vec<_> = in_table.difference(&on_topic).collect();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        missing.is_empty(),
        "rows missing from the topic: {missing:?}\nreader log:\n{text}"
    );

    let child = reader.0.as_mut().expect("the reader process");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the reader exited:\n{text}"
    );
    eprintln!("reader log:\n{text}");
    let retries = text.matches("lost PostgreSQL: retrying in").count();
    assert!(
        retries >= 5,
        "one retry line per fault at least, got {retries}:\n{text}"
    );
    assert!(text.contains("waiting for"), "{text}");
    let child = reader.0.take().expect("the reader process");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(status.status.success(), "exit status {:?}", status.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_dropped_while_the_reader_runs_stops_it_with_the_fix() {
    let name = "reader_slot_dropped";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let slot = common::slot_name(name);
    // A slow first retry leaves a window to drop the slot between the reader's attempts.
    let args = common::reader_args(
        name,
        name,
        &url,
        &["--sink", "stdout", "--retry-backoff", "500ms"],
    );
    let (handle, _stop) = common::start_reader(args);
    common::wait_until_streaming(&pool, &slot).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "could not drop the slot");
        if let Some(pid) = walsender_pid(&pool, &slot).await {
            let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&pool)
                .await;
        }
        let dropped = sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
        )
        .bind(&slot)
        .execute(&pool)
        .await
        .map(|done| done.rows_affected() == 1)
        .unwrap_or(false);
        if dropped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("the reader stops")
        .unwrap()
        .expect_err("a dropped slot is fatal")
        .to_string();
    assert!(
        error.contains("was dropped while the reader ran"),
        "{error}"
    );
    assert!(error.contains("Fix: start the reader again"), "{error}");
}
