//! The end-of-run summary: operations by kind, achieved rate, transaction latency percentiles,
//! and (in direct-publish mode) how many events reached Kafka.
//!
//! Pure: workers hand in their counts and latencies, [`Summary`] merges them and prints:
//!
//! ```text
//! 10000 operations in 2.01 s: 4975 ops/s (concurrency 4, seed 42)
//!   create   7012
//!   update   1990
//!   cancel    499
//!   delete    499
//!   transaction latency: p50 0.71 ms, p99 3.20 ms
//!   direct publish to outbox.events: 9500 published, 500 lost between commit and publish
//!   faults: 12 retries on a new connection, 1 COMMIT in doubt (1 committed, 0 not committed),
//!           2 operations skipped on orders a crash took back, 3 publishes sent again
//! ```
//!
//! The `faults` line appears only when the database (or Kafka) went away during the run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::workload::OperationKind;

/// What one worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    pub counts: BTreeMap<OperationKind, u64>,
    /// How long each transaction took, BEGIN to COMMIT.
    pub latencies: Vec<Duration>,
    pub published: u64,
    pub publish_failures: u64,
    /// Operations run again on a new connection after a transient failure.
    pub retries: u64,
    /// COMMITs that got no answer, and how looking the order up resolved them.
    pub in_doubt: u64,
    pub in_doubt_committed: u64,
    pub in_doubt_not_committed: u64,
    /// Operations skipped because a crash took back the order they were for.
    pub lost_orders: u64,
    /// Direct publishes sent again (Kafka away).
    pub publish_retries: u64,
}

/// What the run did when a server went away (summed over the workers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSummary {
    pub retries: u64,
    pub in_doubt: u64,
    pub in_doubt_committed: u64,
    pub in_doubt_not_committed: u64,
    pub lost_orders: u64,
    pub publish_retries: u64,
}

impl FaultSummary {
    fn add(&mut self, worker: &WorkerReport) {
        self.retries += worker.retries;
        self.in_doubt += worker.in_doubt;
        self.in_doubt_committed += worker.in_doubt_committed;
        self.in_doubt_not_committed += worker.in_doubt_not_committed;
        self.lost_orders += worker.lost_orders;
        self.publish_retries += worker.publish_retries;
    }

    /// Whether nothing went wrong.
    pub fn is_empty(&self) -> bool {
        *self == FaultSummary::default()
    }
}

impl WorkerReport {
    pub fn record(&mut self, kind: OperationKind, latency: Duration) {
        *self.counts.entry(kind).or_default() += 1;
        self.latencies.push(latency);
    }
}

/// Direct-publish counts for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSummary {
    pub topic: String,
    pub published: u64,
    pub failed: u64,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub counts: BTreeMap<OperationKind, u64>,
    pub elapsed: Duration,
    pub concurrency: u32,
    pub seed: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub direct_publish: Option<PublishSummary>,
    pub faults: FaultSummary,
}

impl Summary {
    /// Merges the workers' reports.
    pub fn new(
        workers: Vec<WorkerReport>,
        elapsed: Duration,
        concurrency: u32,
        seed: u64,
        topic: Option<&str>,
    ) -> Summary {
        let mut counts = BTreeMap::new();
        let mut latencies = Vec::new();
        let (mut published, mut failed) = (0, 0);
        let mut faults = FaultSummary::default();
        for worker in workers {
            faults.add(&worker);
            for (kind, n) in worker.counts {
                *counts.entry(kind).or_default() += n;
            }
            latencies.extend(worker.latencies);
            published += worker.published;
            failed += worker.publish_failures;
        }
        latencies.sort_unstable();
        Summary {
            counts,
            elapsed,
            concurrency,
            seed,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            direct_publish: topic.map(|topic| PublishSummary {
                topic: topic.to_string(),
                published,
                failed,
            }),
            faults,
        }
    }

    /// All operations, every kind.
    pub fn operations(&self) -> u64 {
        self.counts.values().sum()
    }

    /// How many operations of `kind` ran.
    pub fn count(&self, kind: OperationKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Achieved operations (transactions) per second.
    pub fn ops_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.operations() as f64 / seconds
        } else {
            0.0
        }
    }
}

/// The `pct` percentile of sorted `values` (nearest rank); zero when there are none.
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "{} operations in {:.2} s: {:.0} ops/s (concurrency {}, seed {})",
            self.operations(),
            self.elapsed.as_secs_f64(),
            self.ops_per_second(),
            self.concurrency,
            self.seed
        )?;
        for kind in OperationKind::ALL {
            writeln!(f, "  {:<8} {:>6}", kind.as_str(), self.count(kind))?;
        }
        write!(
            f,
            "  transaction latency: p50 {:.2} ms, p99 {:.2} ms",
            ms(self.p50),
            ms(self.p99)
        )?;
        if let Some(publish) = &self.direct_publish {
            write!(
                f,
                "\n  direct publish to {}: {} published, {} lost between commit and publish",
                publish.topic, publish.published, publish.failed
            )?;
        }
        let faults = &self.faults;
        if !faults.is_empty() {
            write!(
                f,
                "\n  faults: {} retries on a new connection, {} COMMIT(s) in doubt ({} committed, {} not committed),\n          \
                 {} operation(s) skipped on orders a crash took back, {} publish(es) sent again",
                faults.retries,
                faults.in_doubt,
                faults.in_doubt_committed,
                faults.in_doubt_not_committed,
                faults.lost_orders,
                faults.publish_retries
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn merges_workers_and_prints_a_summary() {
        let mut a = WorkerReport::default();
        a.record(OperationKind::Create, Duration::from_millis(1));
        a.record(OperationKind::Create, Duration::from_millis(3));
        let mut b = WorkerReport::default();
        b.record(OperationKind::Delete, Duration::from_millis(2));
        b.published = 2;
        b.publish_failures = 1;
        let summary = Summary::new(
            vec![a, b],
            Duration::from_secs(1),
            2,
            42,
            Some("outbox.events"),
        );
        assert_eq!(summary.operations(), 3);
        assert_eq!(summary.count(OperationKind::Create), 2);
        assert_eq!(summary.p50, Duration::from_millis(2));
        let text = summary.to_string();
        assert!(
            text.starts_with("3 operations in 1.00 s: 3 ops/s (concurrency 2, seed 42)"),
            "{text}"
        );
        assert!(text.contains("  create        2\n"), "{text}");
        assert!(
            text.contains("2 published, 1 lost between commit and publish"),
            "{text}"
        );
        assert!(!text.contains("faults"), "{text}");
    }

    #[test]
    fn reports_faults_when_there_were_some() {
        let worker = WorkerReport {
            retries: 3,
            in_doubt: 2,
            in_doubt_committed: 1,
            in_doubt_not_committed: 1,
            ..WorkerReport::default()
        };
        let summary = Summary::new(vec![worker], Duration::from_secs(1), 1, 42, None);
        let text = summary.to_string();
        assert!(
            text.contains("faults: 3 retries on a new connection, 2 COMMIT(s) in doubt (1 committed, 1 not committed)"),
            "{text}"
        );
    }
}
