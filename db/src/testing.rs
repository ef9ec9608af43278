//! Test support: a fresh, migrated database for each integration test.
//!
//! Integration tests talk to the real PostgreSQL of `scripts/stack`, and `cargo test` runs them
//! in parallel. So that they never see each other's rows, slots or publications, each test asks
//! for a database of its own: `CREATE DATABASE <name>` (the playground role has CREATEDB), then
//! the playground migrations. The database is dropped first if a previous run left it behind.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::{connect, describe, migrate, DbError, DEFAULT_DATABASE_URL};

/// The server the tests use: `DATABASE_URL`, or the playground's default.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
}

/// A name for test `name` that no other test process uses at the same time: `<name>_<pid>`.
/// Use it for anything cluster-wide (replication slots, publications, topics).
pub fn unique_name(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

/// A child process (a binary under test) killed (-9) and reaped when dropped, so a failing
/// test leaves none behind.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Kafka the tests use: `KAFKA_BOOTSTRAP_SERVERS`, or the playground's default.
pub fn kafka_bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| crate::DEFAULT_KAFKA_BOOTSTRAP_SERVERS.into())
}

/// The schema registry the tests use: `SCHEMA_REGISTRY_URL`, or the playground's default.
pub fn schema_registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| crate::DEFAULT_SCHEMA_REGISTRY_URL.into())
}

/// A topic prefix for test `name` that no earlier run used (Kafka keeps topics between runs).
pub fn unique_topic_prefix(name: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{name}_{millis}")
}

/// The replication slot of test `name` (unique per test process: slots are cluster-wide).
pub fn slot_name(name: &str) -> String {
    format!("{}_slot", unique_name(name))
}

/// Waits (up to 60 s) until the reader of `slot` is streaming, so that what a test writes next
/// arrives as streamed changes. While the slot is being created it is active but has no
/// confirmed_flush_lsn yet; during the snapshot it is idle; once START_REPLICATION runs it is
/// active with a position.
pub async fn wait_until_streaming(pool: &PgPool, slot: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if is_streaming(pool, slot).await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reader of {slot} never started streaming"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Is a reader streaming from `slot` now (active, with a confirmed position)?
pub async fn is_streaming(pool: &PgPool, slot: &str) -> bool {
    let streaming: Option<bool> = sqlx::query_scalar(
        "SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .fetch_optional(pool)
    .await
    .expect("pg_replication_slots");
    streaming == Some(true)
}

/// A migrated database named `test_<name>_<pid>` on the test server; returns its URL and a pool.
///
/// `name` must be unique per test (letters, digits and `_`). The process id keeps two test
/// runs at once (two terminals, two developers' checkouts) apart; databases (and their
/// replication slots) left by earlier runs of the same test whose process is gone are dropped.
pub async fn fresh_database(name: &str) -> Result<(String, PgPool), DbError> {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "test database names use letters, digits and _ only"
    );
    let database = format!("test_{}", unique_name(name));
    let base = server_url();
    let options: PgConnectOptions = base
        .parse()
        .map_err(|e: sqlx::Error| DbError::BadUrl(e.to_string()))?;
    let query_error = |source| DbError::Query {
        target: describe(&base),
        source,
    };
    let mut admin = options.connect().await.map_err(|source| DbError::Connect {
        target: describe(&base),
        source,
    })?;
    let earlier: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
            .bind(format!("test_{name}\\_%"))
            .fetch_all(&mut admin)
            .await
            .map_err(query_error)?;
    // Slots of any test database whose process is gone (a test that crashed, or was killed,
    // before dropping its slot): slots are cluster-wide and max_replication_slots is finite.
    let stale_slots: Vec<(String, String)> = sqlx::query_as(
        "SELECT slot_name::text, database::text FROM pg_replication_slots \
         WHERE NOT active AND database LIKE 'test\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .map_err(query_error)?;
    for (slot, owner) in stale_slots {
        let pid = owner.rsplit('_').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }) {
            // Best effort: its walsender may still be letting go of it; a later run drops it.
            let _ = sqlx::query("SELECT pg_drop_replication_slot($1)")
                .bind(&slot)
                .execute(&mut admin)
                .await;
        }
    }
    for old in earlier {
        let pid = old.rsplit('_').next().and_then(|p| p.parse::<u32>().ok());
        let ours = old == database;
        let abandoned =
            pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !(ours || abandoned) || !old.starts_with(&format!("test_{name}_")) {
            continue;
        }
        // A slot keeps its database from being dropped; a walsender that is just exiting may
        // still hold one for a moment, so wait for it (up to 10 s).
        for _ in 0..50 {
            let active: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND active",
            )
            .bind(&old)
            .fetch_one(&mut admin)
            .await
            .map_err(query_error)?;
            if active == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE database = $1 AND NOT active",
        )
        .bind(&old)
        .execute(&mut admin)
        .await
        .map_err(query_error)?;
        let drop = format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut admin)
            .await
            .map_err(query_error)?;
    }
    let create = format!("CREATE DATABASE \"{database}\"");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await
        .map_err(query_error)?;
    admin.close().await.map_err(query_error)?;

    let url = with_database(&base, &database);
    let pool = connect(&url, 8).await?;
    migrate(&pool, &url).await?;
    Ok((url, pool))
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let scheme_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match without_query[scheme_end..].find('/') {
        Some(slash) => &without_query[..scheme_end + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:1/playground", "test_x"),
            "postgres://u:p@h:1/test_x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/playground?sslmode=disable", "t"),
            "postgres://u:p@h:1/t?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1", "t"),
            "postgres://u:p@h:1/t"
        );
    }
}
