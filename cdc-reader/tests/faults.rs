//! The fault suite: the whole pipeline keeps running while its servers are broken on purpose.
//!
//! ```text
//! producer ──> PostgreSQL ──> cdc-reader ──> Kafka ──> consumer ──> order_totals
//!                  ▲                           ▲
//!                  │ restart -m fast           │ restart (SIGTERM, start)
//!                  │ pg_terminate_backend(walsender)
//!                  │ restart -m immediate
//!                  │ kill -9 postmaster (crash recovery)
//! ```
//!
//! One producer run of creates, updates, cancels and deletes flows through cdc-reader and the
//! consumer, all three as separate processes, while the test breaks the servers one after
//! another with the same commands a learner types (`scripts/stack restart postgres fast`, ...).
//! Nobody restarts a binary by hand. At the end every binary still runs (the producer finished
//! its run and exited 0), and `order_totals` equals the GROUP BY over what PostgreSQL kept.
//!
//! The servers are a private stack (`db::private_stack`), so the restarts disturb no other test.
//! The stack runs `synchronous_commit=off`, like the playground: a crash may take the last few
//! hundred milliseconds of acknowledged commits with it. Logical decoding only ever sends WAL
//! that is flushed, so what was lost never reached Kafka either, and the totals still agree.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use db::private_stack::PrivateStack;

/// `target/debug`, where `cargo test --workspace` put the producer and consumer binaries.
fn binaries_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cdc-reader"))
        .parent()
        .map(Path::to_path_buf)
        .expect("the reader binary lives in target/<profile>")
}

fn binary(name: &str) -> PathBuf {
    let path = binaries_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: this test drives the built binaries; run `cargo build --workspace` \
         (scripts/test runs `cargo test --workspace`, which builds them)",
        path.display()
    );
    path
}

/// A binary running in the background, its stderr in a log file the test prints on failure.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(name: &'static str, mut command: Command, logs: &Path) -> Running {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = command
            .env("RUST_BACKTRACE", "0")
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Running { name, child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Panics, with the log, when the process has exited.
    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "{} exited ({status}) {when}; the last lines of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// SIGTERM, then the exit status (each binary finishes what is in flight and exits 0).
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not stop within 30 s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One query, tried again while the server is away (the test's own connections die too).
async fn query_i64(url: &str, sql: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let pool = db::connect(url, 1).await.ok()?;
            let value: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(&pool)
                .await
                .ok();
            pool.close().await;
            value
        };
        if let Some(value) = attempt.await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not answer `{sql}` for 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rows where order_totals and the GROUP BY over orders disagree.
const DIFFERENCES: &str = "
    WITH expected AS (SELECT customer_id, count(*)::bigint AS order_count, sum(total)::numeric AS total_amount
                        FROM orders GROUP BY customer_id),
         actual AS (SELECT customer_id, order_count, total_amount FROM order_totals)
    SELECT count(*) FROM ((SELECT * FROM expected EXCEPT SELECT * FROM actual)
                          UNION ALL (SELECT * FROM actual EXCEPT SELECT * FROM expected)) d";

/// Orders that lack their items or their outbox row: a partial write (must never happen).
const PARTIAL_ORDERS: &str = "
    SELECT count(*) FROM orders o
     WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)
        OR NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.aggregateid = o.id::text)";

/// A way to break the stack.
type Fault = Box<dyn Fn(&PrivateStack)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_rides_out_restarts_crashes_and_a_kafka_restart() {
    let stack = PrivateStack::up("faults");
    let url = stack.database_url("playground");
    let bootstrap = stack.kafka_bootstrap_servers();
    {
        let pool = db::connect(&url, 2).await.expect("the private PostgreSQL");
        db::migrate(&pool, &url).await.expect("migrations");
        pool.close().await;
    }
    // Outside the stack's folder, which goes with the stack: kept for a look after a failure.
    let logs =
        std::env::temp_dir().join(format!("pgcdc-{}-logs", db::testing::unique_name("faults")));
    std::fs::create_dir_all(&logs).unwrap();

    let mut reader_command = Command::new(binary("cdc-reader"));
    reader_command
        .args([
            "--database-url",
            &url,
            "--kafka-bootstrap-servers",
            &bootstrap,
        ])
        .args(["--status-interval", "200ms"])
        .env("RUST_LOG", "info");
    let mut reader = Running::start("cdc-reader", reader_command, &logs);

    let mut consumer_command = Command::new(binary("consumer"));
    consumer_command
        .args([
            "--database-url",
            &url,
            "--kafka-bootstrap-servers",
            &bootstrap,
        ])
        .env("RUST_LOG", "info");
    let mut consumer = Running::start("consumer", consumer_command, &logs);

    // Wait until the reader streams: the slot is active.
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_i64(
        &url,
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'playground_slot' AND active",
    )
    .await
        == 0
    {
        reader.assert_running("before streaming");
        assert!(
            Instant::now() < deadline,
            "the reader never started streaming"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // About 40 s of writes at 200 operations/s: the faults land in the middle of them.
    let mut producer_command = Command::new(binary("producer"));
    producer_command
        .args([
            "--database-url",
            &url,
            "--kafka-bootstrap-servers",
            &bootstrap,
        ])
        .args(["--orders", "8000", "--rate", "200", "--concurrency", "2"])
        .args([
            "--mix",
            "create=60,update=25,cancel=10,delete=5",
            "--seed",
            "19",
        ])
        .arg("--no-progress")
        .env("RUST_LOG", "info");
    let mut producer = Running::start("producer", producer_command, &logs);

    let pause = Duration::from_secs(5);
    let faults: [(&str, Fault); 5] = [
        (
            "PostgreSQL restarted (fast)",
            Box::new(|s| s.restart_postgres("fast")),
        ),
        ("the walsender terminated", Box::new(|_| {})),
        (
            "PostgreSQL restarted (immediate)",
            Box::new(|s| s.restart_postgres("immediate")),
        ),
        ("the postmaster killed -9", Box::new(|s| s.crash_postgres())),
        ("Kafka restarted", Box::new(|s| s.restart_kafka())),
    ];
    for (what, fault) in &faults {
        tokio::time::sleep(pause).await;
        for process in [&mut reader, &mut consumer] {
            process.assert_running(&format!("before: {what}"));
        }
        if *what == "the walsender terminated" {
            let terminated = query_i64(
                &url,
                "SELECT count(*) FROM (SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                  WHERE slot_name = 'playground_slot' AND active_pid IS NOT NULL) t",
            )
            .await;
            assert_eq!(terminated, 1, "one walsender to terminate");
        } else {
            fault(&stack);
        }
        eprintln!("fault injected: {what}");
    }

    // The producer finishes its run by itself.
    let deadline = Instant::now() + Duration::from_secs(180);
    let producer_status = loop {
        if let Some(status) = producer.child.try_wait().expect("try_wait") {
            break status;
        }
        for process in [&mut reader, &mut consumer] {
            process.assert_running("while the producer finishes");
        }
        assert!(
            Instant::now() < deadline,
            "the producer did not finish within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        producer_status.success(),
        "the producer rode out the faults and exited 0; its log:\n{}",
        producer.log_tail()
    );
    assert_eq!(
        query_i64(&url, PARTIAL_ORDERS).await,
        0,
        "no partial order was written"
    );

    // order_totals catches up with what PostgreSQL kept.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if query_i64(&url, DIFFERENCES).await == 0 {
            break;
        }
        for process in [&mut reader, &mut consumer] {
            process.assert_running("while order_totals catches up");
        }
        assert!(
            Instant::now() < deadline,
            "order_totals did not catch up within 180 s; consumer log:\n{}\ncdc-reader log:\n{}",
            consumer.log_tail(),
            reader.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let orders = query_i64(&url, "SELECT count(*) FROM orders").await;
    assert!(orders > 1000, "the run wrote orders ({orders})");

    // Both long-running binaries are still up, and stop cleanly.
    for process in [&mut reader, &mut consumer] {
        process.assert_running("at the end");
    }
    let reader_log = std::fs::read_to_string(&reader.log).unwrap_or_default();
    // The reader's own line per attempt; librdkafka's "retrying" lines would not prove it.
    assert!(
        reader_log.contains("lost PostgreSQL: retrying")
            && reader_log.contains("resuming from the slot"),
        "the reader's log says it lost PostgreSQL and resumed from the slot:\n{}",
        reader.log_tail()
    );
    assert!(
        consumer.terminate().success(),
        "consumer exits 0 on SIGTERM"
    );
    assert!(
        reader.terminate().success(),
        "cdc-reader exits 0 on SIGTERM"
    );
}
