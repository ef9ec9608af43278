//! # db: the playground's schema and the connection settings every binary shares
//!
//! The pipeline, in the order a learner reads it:
//!
//! ```text
//! producer ──(one transaction: order + items + outbox row)──> PostgreSQL
//!    PostgreSQL WAL ──(pgoutput logical replication)──> cdc-reader ──> Kafka topics
//!    Kafka topics ──> consumer ──(projections, offsets in the same transaction)──> order_totals
//! ```
//!
//! This crate is where that starts: the tables (as sqlx migrations in `db/migrations/`), how to
//! connect to the database (`DATABASE_URL`, shared by every binary through [`DatabaseArgs`]),
//! and the errors that tell a user what to do when the database is not there or not migrated.
//!
//! - [`DatabaseArgs`]: the `--database-url` / `DATABASE_URL` flag every binary flattens in.
//! - [`connect`]: a connection pool, with an error that names the database (never the password).
//! - [`migrate`] / [`reset`]: apply the schema; drop and recreate it.
//! - [`require_schema`]: fail early, saying "run `cargo run -p db -- migrate`", when tables are missing.
//! - [`check_args`]: `PGCDC_CHECK_ARGS=1` makes any binary check its command line and exit.
//! - [`metrics`]: `--metrics-listen`: the Prometheus `/metrics` page every long-running binary serves;
//!   [`metrics_text`]: reading such a page back (samples, histogram quantiles).
//! - [`testing`]: a fresh, migrated database per integration test, so tests never share rows;
//!   [`cuttable_proxy`]: a TCP proxy a test cuts off to take a server away from one binary.

pub mod check_args;
pub mod cuttable_proxy;
pub mod metrics;
pub mod metrics_text;
pub mod private_stack;
pub mod testing;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// The database `scripts/stack up` creates; binaries use it when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://playground:playground@127.0.0.1:55432/playground";

/// The Kafka broker `scripts/stack up` starts; binaries use it when `KAFKA_BOOTSTRAP_SERVERS` is not set.
pub const DEFAULT_KAFKA_BOOTSTRAP_SERVERS: &str = "127.0.0.1:59092";

/// The schema registry `scripts/stack up` starts (Apicurio's Confluent API); binaries use it when
/// `SCHEMA_REGISTRY_URL` is not set.
pub const DEFAULT_SCHEMA_REGISTRY_URL: &str = "http://127.0.0.1:58081/apis/ccompat/v7";

/// The tables the playground's migrations create, in dependency order.
pub const PLAYGROUND_TABLES: &[&str] = &["orders", "order_items", "outbox_events", "order_totals"];

/// The migrations in `db/migrations/`, compiled into every binary that links this crate.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Errors from connecting to and preparing the playground database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "DATABASE_URL is not a valid postgres URL ({0}); expected e.g. {DEFAULT_DATABASE_URL}"
    )]
    BadUrl(String),
    #[error(
        "cannot connect to PostgreSQL at {target}: {source}. \
         Is the stack running? Start it with `scripts/stack up`, or set DATABASE_URL"
    )]
    Connect { target: String, source: sqlx::Error },
    #[error(
        "the playground schema is missing in {target} (no table `{table}`): \
         run `cargo run -p db -- migrate`"
    )]
    SchemaMissing { target: String, table: String },
    #[error("migrating {target} failed: {source}")]
    Migrate {
        target: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("query on {target} failed: {source}")]
    Query { target: String, source: sqlx::Error },
}

/// `--database-url` with its `DATABASE_URL` twin; every binary flattens this into its arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL (the playground's own cluster by default).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// `host:port/database` of a URL, for messages: it never includes the password.
pub fn describe(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(options) => format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        ),
        Err(_) => "(unparsable DATABASE_URL)".to_string(),
    }
}

/// Connects a pool of up to `max_connections` to `url`.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| DbError::BadUrl(e.to_string()))?;
    let options = options.log_statements(tracing::log::LevelFilter::Trace);
    // One connection first: a refused connection or a bad password shows at once as what it
    // is, instead of as a pool timeout after retrying for the whole acquire timeout.
    let probe = options.connect().await.map_err(|source| DbError::Connect {
        target: describe(url),
        source,
    })?;
    probe.close().await.ok();
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|source| DbError::Connect {
            target: describe(url),
            source,
        })
}

/// Applies every migration not yet applied (idempotent).
pub async fn migrate(pool: &PgPool, url: &str) -> Result<(), DbError> {
    MIGRATOR.run(pool).await.map_err(|source| DbError::Migrate {
        target: describe(url),
        source,
    })
}

/// Drops everything in the `public` schema (tables, the migration history) and migrates again.
///
/// Replication slots and publications live outside the schema: slots are kept (a reader may
/// be attached); publications lose their tables with them, and cdc-reader adds them back.
pub async fn reset(pool: &PgPool, url: &str) -> Result<(), DbError> {
    let query_error = |source| DbError::Query {
        target: describe(url),
        source,
    };
    let mut tx = pool.begin().await.map_err(query_error)?;
    sqlx::query("DROP SCHEMA IF EXISTS public CASCADE")
        .execute(&mut *tx)
        .await
        .map_err(query_error)?;
    sqlx::query("CREATE SCHEMA public")
        .execute(&mut *tx)
        .await
        .map_err(query_error)?;
    tx.commit().await.map_err(query_error)?;
    migrate(pool, url).await
}

/// Fails with [`DbError::SchemaMissing`] unless every playground table exists.
pub async fn require_schema(pool: &PgPool, url: &str) -> Result<(), DbError> {
    for table in PLAYGROUND_TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("public.{table}"))
            .fetch_one(pool)
            .await
            .map_err(|source| DbError::Query {
                target: describe(url),
                source,
            })?;
        if !exists {
            return Err(DbError::SchemaMissing {
                target: describe(url),
                table: table.to_string(),
            });
        }
    }
    Ok(())
}

/// Sets up `tracing` logs for a binary: `RUST_LOG` filters (default `info`), to stderr.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether a database error may go away by itself, so that the same work is worth running
/// again on a new connection: the connection was lost (I/O, TLS, protocol, the pool), or the
/// server answered with a SQLSTATE of a class that means "try again": 08 connection exception,
/// 40 transaction rollback (serialization failure, deadlock), 53 insufficient resources,
/// 57 operator intervention (admin or crash shutdown, "the database system is starting up"),
/// 58 system error. Anything else (a missing table, a constraint) is not.
///
/// The consumer and the producer both decide their retries with it.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_retryable_sqlstate(&code)),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Whether a SQLSTATE says "the same statement may succeed later" (see [`is_transient`]).
pub fn is_retryable_sqlstate(code: &str) -> bool {
    ["08", "40", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_sqlstates() {
        for code in ["08006", "40001", "40P01", "53300", "57P01", "57P03"] {
            assert!(is_retryable_sqlstate(code), "{code}");
        }
        for code in ["42P01", "23505", "22003"] {
            assert!(!is_retryable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn lost_connections_are_transient_and_missing_rows_are_not() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn describe_never_shows_the_password() {
        let text = describe("postgres://alice:s3cret@db.example:6543/shop");
        assert_eq!(text, "db.example:6543/shop");
        assert!(!text.contains("s3cret"));
    }

    #[test]
    fn describe_an_unparsable_url() {
        assert_eq!(describe("not a url"), "(unparsable DATABASE_URL)");
    }
}
