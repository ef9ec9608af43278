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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgConnection;
use tokio::time::Instant;

use crate::direct_publish::{DirectPublisher, PublishError};
use crate::orders::{self, Committed, OrderError, OutboxMode};
use crate::report::{Summary, WorkerReport};
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
            Some(DirectPublisher::connect(&publish.bootstrap_servers, &publish.topic).await?)
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
    for (worker, mut connection) in (0..).zip(connections) {
        let (config, progress, publisher, stop) = (
            config.clone(),
            progress.clone(),
            publisher.clone(),
            stop.clone(),
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
            };
            let result = run_worker(context, &mut connection).await;
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
}

async fn run_worker(
    context: WorkerContext<'_>,
    connection: &mut PgConnection,
) -> Result<WorkerReport, RunError> {
    let WorkerContext {
        worker,
        config,
        started,
        progress,
        publisher,
        stop,
        event_id_salt,
    } = context;
    let mut workload = Workload::new(config.seed, worker, config.shape);
    // The failure draw has its own stream so the operations do not depend on it.
    let mut failure_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_fa11 ^ u64::from(worker));
    // OrderRef (creation ordinal in this worker) -> order id the database assigned.
    let mut order_ids: Vec<i64> = Vec::new();
    let mut report = WorkerReport::default();
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
        let committed = apply(
            connection,
            &planned.operation,
            event_id,
            &order_ids,
            config.outbox_mode,
        )
        .await
        .map_err(|source| RunError::Operation {
            worker,
            index,
            kind,
            source,
        })?;
        report.record(kind, began.elapsed());
        if let Operation::Create(_) = planned.operation {
            order_ids.push(committed.order.order_id);
        }
        if let (Some(publisher), Some(publish)) = (publisher, &config.direct_publish) {
            if failure_rng.random_bool(publish.fail_probability) {
                tracing::debug!(event = %committed.event.id, "lost between commit and publish (simulated)");
                report.publish_failures += 1;
            } else {
                publisher.publish(&committed.event).await?;
                report.published += 1;
            }
        }
        progress.inc(1);
    }
    Ok(report)
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
