//! Support for the tests that break servers: a private stack's database, consumer processes
//! that run forever (as the fault suite runs them), and the checks on `projection_batches`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use db::private_stack::PrivateStack;
use sqlx::PgPool;

/// The private stack's `playground` database, migrated, and a pool on it.
pub async fn private_database(stack: &PrivateStack) -> (String, PgPool) {
    let url = stack.database_url("playground");
    let pool = db::connect(&url, 4)
        .await
        .expect("connect to the private stack");
    db::migrate(&pool, &url)
        .await
        .expect("migrate the private stack");
    (url, pool)
}

/// A consumer process without `--until-caught-up`: it runs until killed. Killed on drop.
pub struct ConsumerProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl ConsumerProcess {
    pub fn spawn(url: &str, bootstrap: &str, topic: &str, log: &Path) -> ConsumerProcess {
        let file = std::fs::File::create(log).expect("create the consumer's log");
        let child = Command::new(env!("CARGO_BIN_EXE_consumer"))
            .env("DATABASE_URL", url)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("CONSUMER_TOPICS", topic)
            .env("CONSUMER_GROUP_ID", format!("group-{topic}"))
            .env("CONSUMER_BATCH_SIZE", "200")
            .env("CONSUMER_BATCH_TIMEOUT", "50ms")
            .env("CONSUMER_RETRY_BACKOFF", "200ms")
            .env("CONSUMER_RETRY_BACKOFF_MAX", "2s")
            .env("RUST_LOG", "info")
            .env_remove("CONSUMER_UNTIL_CAUGHT_UP")
            .env_remove("CONSUMER_REPLAY")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn the consumer binary");
        ConsumerProcess {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Whether it is still running (it must never exit on its own).
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("poll the consumer").is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records the projections reflect (the sum of the stored next offsets); `None` while
/// PostgreSQL does not answer.
pub async fn stored_records(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets")
        .fetch_one(pool)
        .await
        .ok()
}

/// Waits until the stored offsets reach `total` records, or panics after `timeout`.
pub async fn wait_for_stored(pool: &PgPool, total: i64, timeout: Duration, logs: &str) {
    let start = Instant::now();
    loop {
        if stored_records(pool).await == Some(total) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "the projections did not reach {total} records in {timeout:?} (at {:?}); logs:\n{logs}",
            stored_records(pool).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the stored offsets have moved past `at_least` records.
pub async fn wait_for_progress(pool: &PgPool, at_least: i64, timeout: Duration) {
    let start = Instant::now();
    while stored_records(pool).await.unwrap_or(0) < at_least && start.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything wrong with `projection_batches`, in words (empty: each offset of every
/// partition was applied exactly once, and the writers' epochs never went down along the
/// offsets). Expects a topic without gaps (no transaction markers), read from offset 0.
pub async fn batch_log_problems(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "WITH b AS ( \
           SELECT consumer, topic, partition, first_offset, next_offset, writer_epoch, \
                  lag(next_offset) OVER w AS previous_next, lag(writer_epoch) OVER w AS previous_epoch \
           FROM projection_batches \
           WINDOW w AS (PARTITION BY consumer, topic, partition ORDER BY first_offset, id)) \
         SELECT format('%s/%s: [%s, %s) applied by epoch %s after a range ending at %s by epoch %s', \
                       topic, partition, first_offset, next_offset, writer_epoch, \
                       coalesce(previous_next, 0), coalesce(previous_epoch, 0)) \
         FROM b \
         WHERE coalesce(previous_next, 0) <> first_offset OR previous_epoch > writer_epoch",
    )
    .fetch_all(pool)
    .await
    .expect("read projection_batches")
}

/// The writer epochs that applied batches, with how many offset ranges each.
pub async fn ranges_by_epoch(pool: &PgPool) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT writer_epoch, count(*) FROM projection_batches GROUP BY 1 ORDER BY 1")
        .fetch_all(pool)
        .await
        .expect("read projection_batches")
}
