//! The CLI run: `--concurrency` workers, each applying its seeded [`Workload`] to the database
//! through its own connection, paced to `--rate`, until `--orders` or `--duration` is reached.
//!
//! ```text
//! run ──> worker 0: Workload(seed, 0) ──> orders::create_order / change_status / ... ──> PostgreSQL
//!     ──> worker 1: Workload(seed, 1) ──> ...                        [──> DirectPublisher ──> Kafka]
//!     ──> progress bar (ops/s) ... Summary (counts, rate, p50/p99)
//! ```
//!
//! Each worker owns one pooled connection for the whole run (no acquire per transaction) and
//! runs its operations one after another: with K workers, K transactions are in flight.
//!
//! When PostgreSQL goes away (restart, crash) a worker waits, takes a new connection and runs
//! the failed operation again; a COMMIT that got no answer is *in doubt* and is resolved by
//! looking the order up before going on ([`crate::retry`]). After such a fault, an operation
//! that finds its order gone or not in the status it was left in is skipped and counted: the
//! stack runs `synchronous_commit=off`, so a crash can take back the last acknowledged
//! commits. The summary reports all of it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::time::Instant;

use crate::direct_publish::{DirectPublisher, PublishError, PublishFormat};
use crate::orders::{self, Committed, OrderError, OutboxMode};
use crate::report::{Summary, WorkerReport};
use crate::retry::RetryPolicy;
use crate::workload::{
    salted_event_id, Operation, OperationKind, OrderRef, Workload, WorkloadShape,
};

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// This many operations in total (each one order transaction), split across the workers.
    Operations(u64),
    /// This much wall-clock time.
    Duration(Duration),
}

/// `--rate`: operations per second over all workers, or as fast as the database allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Unlimited,
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(text: &str) -> Result<Rate, String> {
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        match text.parse::<f64>() {
            Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(Rate::PerSecond(rate)),
            _ => Err(format!(
                "`{text}` is not a rate: use operations per second (e.g. 200) or `unlimited`"
            )),
        }
    }
}

/// Direct-publish settings (`--direct-publish`).
#[derive(Debug, Clone, PartialEq)]
pub struct DirectPublishConfig {
    pub bootstrap_servers: String,
    pub topic: String,
    /// Probability (0..=1) that an event is lost between COMMIT and publish.
    pub fail_probability: f64,
    /// JSON (the outbox payload) or Avro (`OrderEvent`, schema in the registry).
    pub format: PublishFormat,
    /// The registry's Confluent API, for [`PublishFormat::Avro`].
    pub schema_registry_url: String,
}

/// Everything a CLI run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub database_url: String,
    pub stop_after: StopAfter,
    pub rate: Rate,
    pub shape: WorkloadShape,
    pub seed: u64,
    pub concurrency: u32,
    pub outbox_mode: OutboxMode,
    pub direct_publish: Option<DirectPublishConfig>,
    /// Draw a progress bar on stderr (it hides itself when stderr is not a terminal).
    pub progress: bool,
    /// How failed operations (the database or Kafka away) are retried.
    pub retry: RetryPolicy,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("worker {worker}, operation #{index} ({kind}) failed: {source}")]
    Operation {
        worker: u32,
        index: u64,
        kind: OperationKind,
        source: OrderError,
    },
    #[error("--concurrency must be at least 1")]
    NoWorkers,
    #[error("--fail-between-commit-and-publish must be between 0 and 1 (got {0})")]
    BadProbability(f64),
    #[error("a worker stopped unexpectedly: {0}")]
    WorkerPanicked(String),
    #[error("worker {worker}: gave up after {attempts} failed attempts in a row (--max-retries): {last}")]
    GaveUp {
        worker: u32,
        attempts: u32,
        last: String,
    },
}

/// Runs the workload and returns its summary (which `main` prints).
pub async fn run(config: RunConfig) -> Result<Summary, RunError> {
    if config.concurrency == 0 {
        return Err(RunError::NoWorkers);
    }
    let publisher = match &config.direct_publish {
        Some(publish) => {
            if !(0.0..=1.0).contains(&publish.fail_probability) {
                return Err(RunError::BadProbability(publish.fail_probability));
            }
            Some(
                DirectPublisher::connect(
                    &publish.bootstrap_servers,
                    &publish.topic,
                    publish.format,
                    &publish.schema_registry_url,
                )
                .await?,
            )
        }
        None => None,
    };
    let pool = db::connect(&config.database_url, config.concurrency).await?;
    db::require_schema(&pool, &config.database_url).await?;
    let event_id_salt = orders_sequence_position(&pool, &config.database_url).await?;

    // Every worker's connection is opened before the clock starts.
    let mut connections = Vec::new();
    for _ in 0..config.concurrency {
        let connection = pool
            .acquire()
            .await
            .map_err(|source| db::DbError::Connect {
                target: db::describe(&config.database_url),
                source,
            })?;
        connections.push(connection);
    }

    // Ctrl-C (or a failing worker) asks every worker to stop after its current transaction; the
    // summary still prints.
    let stop = Arc::new(AtomicBool::new(false));
    let ctrl_c = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    let progress = progress_bar(&config);
    let config = Arc::new(config);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (worker, connection) in (0..).zip(connections) {
        let (config, progress, publisher, stop, pool) = (
            config.clone(),
            progress.clone(),
            publisher.clone(),
            stop.clone(),
            pool.clone(),
        );
        workers.push(tokio::spawn(async move {
            let context = WorkerContext {
                worker,
                config: &config,
                started,
                progress: &progress,
                publisher: publisher.as_ref(),
                stop: &stop,
                event_id_salt,
                pool,
            };
            let result = run_worker(context, connection).await;
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    let mut reports = Vec::new();
    let mut first_error = None;
    for handle in workers {
        match handle.await {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(join_error) => {
                first_error.get_or_insert(RunError::WorkerPanicked(join_error.to_string()));
            }
        }
    }
    let elapsed = started.elapsed();
    ctrl_c.abort();
    progress.finish_and_clear();
    pool.close().await;
    if let Some(error) = first_error {
        return Err(error);
    }
    let topic = config
        .direct_publish
        .as_ref()
        .map(|publish| publish.topic.as_str());
    Ok(Summary::new(
        reports,
        elapsed,
        config.concurrency,
        config.seed,
        topic,
    ))
}

fn progress_bar(config: &RunConfig) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match config.stop_after {
        StopAfter::Operations(total) => (
            ProgressBar::new(total),
            "{bar:40} {pos}/{len} ops  {rate}  eta {eta}",
        ),
        StopAfter::Duration(_) => (
            ProgressBar::new_spinner(),
            "{spinner} {elapsed} {pos} ops  {rate}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0} ops/s", state.per_sec());
            },
        );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.with_style(style)
}

/// How many operations worker `worker` of `workers` runs out of `total`: an even split, the
/// first workers taking one more when it does not divide.
pub fn share_of(total: u64, worker: u32, workers: u32) -> u64 {
    let workers = u64::from(workers.max(1));
    total / workers + u64::from(u64::from(worker) < total % workers)
}

/// What a worker shares with the run.
struct WorkerContext<'a> {
    worker: u32,
    config: &'a RunConfig,
    started: Instant,
    progress: &'a ProgressBar,
    publisher: Option<&'a DirectPublisher>,
    stop: &'a AtomicBool,
    /// See [`salted_event_id`].
    event_id_salt: u64,
    /// Where a new connection comes from when the worker's own is lost.
    pool: PgPool,
}

async fn run_worker(
    context: WorkerContext<'_>,
    connection: PoolConnection<Postgres>,
) -> Result<WorkerReport, RunError> {
    let WorkerContext {
        worker,
        config,
        started,
        progress,
        publisher,
        stop,
        event_id_salt,
        pool,
    } = context;
    let mut workload = Workload::new(config.seed, worker, config.shape);
    // The failure draw has its own stream so the operations do not depend on it.
    let mut failure_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_fa11 ^ u64::from(worker));
    // OrderRef (creation ordinal in this worker) -> order id the database assigned.
    let mut order_ids: Vec<i64> = Vec::new();
    let mut report = WorkerReport::default();
    let mut link = Link {
        worker,
        connection: Some(connection),
        pool,
        retry: config.retry,
        stop,
        faulted: false,
    };
    let quota = match config.stop_after {
        StopAfter::Operations(total) => Some(share_of(total, worker, config.concurrency)),
        StopAfter::Duration(_) => None,
    };
    let deadline = match config.stop_after {
        StopAfter::Duration(duration) => Some(started + duration),
        StopAfter::Operations(_) => None,
    };
    let interval = match config.rate {
        Rate::PerSecond(rate) => Some(Duration::from_secs_f64(
            f64::from(config.concurrency) / rate,
        )),
        Rate::Unlimited => None,
    };
    for index in 0u64.. {
        if quota.is_some_and(|quota| index >= quota) {
            break;
        }
        if let Some(interval) = interval {
            // Operation i of this worker is due at start + i * interval; late ones go at once.
            tokio::time::sleep_until(started + interval.mul_f64(index as f64)).await;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline)
            || stop.load(Ordering::Relaxed)
        {
            break;
        }
        let planned = workload.next_operation();
        let event_id = salted_event_id(planned.event_id, event_id_salt);
        let kind = planned.operation.kind();
        let began = Instant::now();
        let outcome = apply_with_retries(
            &mut link,
            &mut report,
            &planned.operation,
            event_id,
            &order_ids,
            config.outbox_mode,
        )
        .await
        .map_err(|failure| match failure {
            Failed::Operation(source) => RunError::Operation {
                worker,
                index,
                kind,
                source,
            },
            Failed::Run(error) => error,
        })?;
        let committed = match outcome {
            Applied::Committed(committed) => committed,
            Applied::Stopped => break,
            Applied::LostOrder(problem) => {
                tracing::warn!(
                    "worker {worker}: operation #{index} ({kind}) skipped: {problem} \
                     (a commit acknowledged before the crash was lost: synchronous_commit=off)"
                );
                report.lost_orders += 1;
                if let Some(order) = planned.operation.order() {
                    workload.forget(order);
                }
                progress.inc(1);
                continue;
            }
        };
        report.record(kind, began.elapsed());
        if let Operation::Create(_) = planned.operation {
            order_ids.push(committed.order.order_id);
        }
        if let (Some(publisher), Some(publish)) = (publisher, &config.direct_publish) {
            if failure_rng.random_bool(publish.fail_probability) {
                tracing::debug!(event = %committed.event.id, "lost between commit and publish (simulated)");
                report.publish_failures += 1;
            } else {
                publish_with_retries(publisher, &committed, &link, &mut report).await?;
                report.published += 1;
            }
        }
        progress.inc(1);
    }
    Ok(report)
}

/// A worker's connection to PostgreSQL, and what it needs to replace it.
struct Link<'a> {
    worker: u32,
    /// `None` between losing a connection and getting the next.
    connection: Option<PoolConnection<Postgres>>,
    pool: PgPool,
    retry: RetryPolicy,
    stop: &'a AtomicBool,
    /// Whether this worker has seen the database go away during the run.
    faulted: bool,
}

impl Link<'_> {
    /// Waits the backoff of `attempt`, then replaces the connection, trying again (each try
    /// one more attempt) until one works. `Ok(false)` when the run was stopped meanwhile.
    async fn reconnect(&mut self, attempt: &mut u32, problem: &str) -> Result<bool, RunError> {
        self.faulted = true;
        // Give the broken connection back first: the pool has one per worker.
        if let Some(mut broken) = self.connection.take() {
            broken.close_on_drop();
        }
        let mut problem = problem.to_string();
        loop {
            *attempt += 1;
            if *attempt > self.retry.max_retries {
                return Err(RunError::GaveUp {
                    worker: self.worker,
                    attempts: *attempt - 1,
                    last: problem.to_string(),
                });
            }
            let wait = self.retry.backoff(*attempt);
            tracing::warn!(
                "worker {}: {problem}; attempt {} of {} in {wait:?} on a new connection",
                self.worker,
                *attempt,
                self.retry.max_retries
            );
            tokio::time::sleep(wait).await;
            if self.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            match self.pool.acquire().await {
                Ok(connection) => {
                    self.connection = Some(connection);
                    return Ok(true);
                }
                Err(error) => problem = format!("no connection to PostgreSQL yet ({error})"),
            }
        }
    }
}

/// What happened to one planned operation.
enum Applied {
    Committed(Committed),
    /// After a fault: the order is not what this run left it as (see the module comment).
    LostOrder(OrderError),
    /// Ctrl-C (or another worker's failure) while waiting for the database.
    Stopped,
}

/// Why an operation could not be applied at all.
enum Failed {
    Operation(OrderError),
    Run(RunError),
}

/// Applies one operation, riding out the database going away: transient failures are
/// retried on a new connection; an in-doubt COMMIT is resolved by looking the order up.
async fn apply_with_retries(
    link: &mut Link<'_>,
    report: &mut WorkerReport,
    operation: &Operation,
    event_id: uuid::Uuid,
    order_ids: &[i64],
    mode: OutboxMode,
) -> Result<Applied, Failed> {
    let mut attempt = 0;
    loop {
        let Some(connection) = link.connection.as_mut() else {
            match link.reconnect(&mut attempt, "no connection").await {
                Ok(true) => continue,
                Ok(false) => return Ok(Applied::Stopped),
                Err(error) => return Err(Failed::Run(error)),
            }
        };
        let started = std::time::Instant::now();
        let error = match apply(connection, operation, event_id, order_ids, mode).await {
            Ok(committed) => {
                crate::metrics::operation(operation.kind().as_str(), "ok", started.elapsed());
                return Ok(Applied::Committed(committed));
            }
            Err(error) => error,
        };
        match error {
            OrderError::CommitInDoubt { committed, source } => {
                report.in_doubt += 1;
                let problem = format!("COMMIT got no answer ({source}): in doubt");
                match resolve_in_doubt(link, &mut attempt, &committed, mode, &problem).await {
                    Ok(Some(true)) => {
                        report.in_doubt_committed += 1;
                        tracing::info!(
                            "worker {}: the in-doubt {} of order {} was committed",
                            link.worker,
                            committed.event.event_type.as_str(),
                            committed.order.order_id
                        );
                        return Ok(Applied::Committed(*committed));
                    }
                    Ok(Some(false)) => {
                        report.in_doubt_not_committed += 1;
                        tracing::info!("worker {}: the in-doubt {} of order {} was not committed; running it again", link.worker, committed.event.event_type.as_str(), committed.order.order_id);
                    }
                    Ok(None) => return Ok(Applied::Stopped),
                    Err(error) => return Err(Failed::Run(error)),
                }
            }
            error if error.is_transient() => {
                report.retries += 1;
                let problem = format!("PostgreSQL unavailable ({error})");
                match link.reconnect(&mut attempt, &problem).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(Applied::Stopped),
                    Err(error) => return Err(Failed::Run(error)),
                }
            }
            error @ (OrderError::NotFound(_)
            | OrderError::IllegalTransition { .. }
            | OrderError::ItemsLocked { .. }
            | OrderError::NoSuchLine { .. })
                if link.faulted =>
            {
                return Ok(Applied::LostOrder(error));
            }
            error => return Err(Failed::Operation(error)),
        }
    }
}

/// Looks up whether an in-doubt change was committed, on a new connection, retrying while
/// the database is still away. `None` when the run was stopped meanwhile.
async fn resolve_in_doubt(
    link: &mut Link<'_>,
    attempt: &mut u32,
    committed: &Committed,
    mode: OutboxMode,
    problem: &str,
) -> Result<Option<bool>, RunError> {
    let mut problem = problem.to_string();
    loop {
        if !link.reconnect(attempt, &problem).await? {
            return Ok(None);
        }
        let Some(connection) = link.connection.as_mut() else {
            continue;
        };
        match orders::was_committed(connection, committed, mode).await {
            Ok(found) => return Ok(Some(found)),
            Err(error) => {
                problem = format!("cannot resolve an in-doubt COMMIT yet ({error})");
            }
        }
    }
}

/// Publishes a committed event (`--direct-publish`), sending it again while Kafka is away
/// (a broker restart): at least once, so Kafka may get it twice.
async fn publish_with_retries(
    publisher: &DirectPublisher,
    committed: &Committed,
    link: &Link<'_>,
    report: &mut WorkerReport,
) -> Result<(), RunError> {
    let mut attempt = 0;
    loop {
        let error = match publisher.publish(&committed.event).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        attempt += 1;
        if attempt > link.retry.max_retries || link.stop.load(Ordering::Relaxed) {
            return Err(error.into());
        }
        report.publish_retries += 1;
        let wait = link.retry.backoff(attempt);
        tracing::warn!(
            "worker {}: {error}; attempt {attempt} of {} in {wait:?}",
            link.worker,
            link.retry.max_retries
        );
        tokio::time::sleep(wait).await;
    }
}

/// The last order id the database handed out (0 on a fresh database): the event id salt.
async fn orders_sequence_position(pool: &sqlx::PgPool, url: &str) -> Result<u64, db::DbError> {
    let position: i64 = sqlx::query_scalar(
        "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('orders', 'id')::regclass), 0)",
    )
    .fetch_one(pool)
    .await
    .map_err(|source| db::DbError::Query { target: db::describe(url), source })?;
    Ok(position.unsigned_abs())
}

/// Applies one planned operation as one transaction.
async fn apply(
    connection: &mut PgConnection,
    operation: &Operation,
    event_id: uuid::Uuid,
    order_ids: &[i64],
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    let id_of = |order: &OrderRef| {
        order_ids
            .get(order.0)
            .copied()
            .ok_or_else(|| OrderError::Unreadable {
                order_id: -1,
                problem: format!(
                    "the workload refers to order #{} before creating it",
                    order.0
                ),
            })
    };
    match operation {
        Operation::Create(order) => orders::create_order(connection, event_id, order, mode).await,
        Operation::AdvanceStatus { order, to } => {
            orders::change_status(connection, event_id, id_of(order)?, *to, mode).await
        }
        Operation::ChangeQuantity {
            order,
            line_no,
            quantity,
        } => {
            orders::change_item_quantity(
                connection,
                event_id,
                id_of(order)?,
                *line_no,
                *quantity,
                mode,
            )
            .await
        }
        Operation::Cancel { order } => {
            orders::cancel_order(connection, event_id, id_of(order)?, mode).await
        }
        Operation::Delete { order } => {
            orders::delete_order(connection, event_id, id_of(order)?, mode).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!("200".parse::<Rate>(), Ok(Rate::PerSecond(200.0)));
        assert_eq!("unlimited".parse::<Rate>(), Ok(Rate::Unlimited));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn splits_operations_evenly() {
        let shares: Vec<u64> = (0..4).map(|w| share_of(10, w, 4)).collect();
        assert_eq!(shares, vec![3, 3, 2, 2]);
        assert_eq!((0..3).map(|w| share_of(2, w, 3)).sum::<u64>(), 2);
    }
}
