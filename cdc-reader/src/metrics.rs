//! cdc-reader's `/metrics` (with `--metrics-listen`, see [`db::metrics`]): what was read, sent
//! and acknowledged, the LSNs, the WAL the slot holds back, and how long a commit takes to
//! be safe in Kafka.
//!
//! ```text
//! PostgreSQL COMMIT (pgoutput Commit.commit_timestamp)
//!   └─ records sent ─> Kafka acks every one (and every earlier transaction's) ─> confirmable
//!      pgcdc_reader_commit_to_ack_seconds = that moment - the commit timestamp
//! ```
//!
//! | name | type | labels |
//! |---|---|---|
//! | `pgcdc_reader_changes_total` | counter | `table`, `op` (c, u, d, t, m) |
//! | `pgcdc_reader_records_sent_total` | counter | `topic` |
//! | `pgcdc_reader_sent_bytes_total` (key + value as written, before compression) | counter | `topic` (Kafka sink) |
//! | `pgcdc_reader_records_acknowledged_total` | counter | `topic` (Kafka sink) |
//! | `pgcdc_reader_records_in_flight` | gauge | |
//! | `pgcdc_reader_received_lsn`, `pgcdc_reader_confirmed_lsn` | gauge (LSN as a number) | |
//! | `pgcdc_reader_slot_retained_wal_bytes` | gauge | `slot` |
//! | `pgcdc_reader_commit_to_ack_seconds` | histogram | |
//! | `pgcdc_reader_errors_total` | counter | `kind` |
//!
//! The slot's retained WAL (`pg_current_wal_lsn() - restart_lsn`) is queried every few seconds
//! on a normal SQL connection of its own ([`watch_slot`]), so it is known even while the
//! replication connection is down.

use std::collections::VecDeque;
use std::time::Duration;

use crate::lsn::Lsn;

/// Whether `--metrics-listen` is on (labels are only formatted then).
pub fn enabled() -> bool {
    db::metrics::enabled()
}

/// One row change read from the WAL.
pub fn change_read(table: &str, op: &'static str) {
    if enabled() {
        metrics::counter!("pgcdc_reader_changes_total", "table" => table.to_string(), "op" => op)
            .increment(1);
    }
}

/// One record handed to the sink.
pub fn record_sent(topic: &str) {
    if enabled() {
        metrics::counter!("pgcdc_reader_records_sent_total", "topic" => topic.to_string())
            .increment(1);
    }
}

/// The Kafka sink queued a record of `bytes` (key + value as written: Avro with `--format avro`).
pub fn bytes_sent(topic: &str, bytes: usize) {
    if enabled() {
        metrics::counter!("pgcdc_reader_sent_bytes_total", "topic" => topic.to_string())
            .increment(bytes as u64);
    }
}

/// Kafka acknowledged one record of `topic`.
pub fn record_acknowledged(topic: &str) {
    if enabled() {
        metrics::counter!("pgcdc_reader_records_acknowledged_total", "topic" => topic.to_string())
            .increment(1);
    }
}

/// The positions and what is in flight, after each step of the loop.
pub fn positions(received: Lsn, confirmed: Lsn, in_flight: u64) {
    if enabled() {
        metrics::gauge!("pgcdc_reader_received_lsn").set(received.0 as f64);
        metrics::gauge!("pgcdc_reader_confirmed_lsn").set(confirmed.0 as f64);
        metrics::gauge!("pgcdc_reader_records_in_flight").set(in_flight as f64);
    }
}

/// An error that ended a replication session (`kind`: the [`crate::ReaderError`] variant).
pub fn error(kind: &'static str) {
    metrics::counter!("pgcdc_reader_errors_total", "kind" => kind).increment(1);
}

/// Commits waiting to be confirmable: `(end LSN, commit time in Unix microseconds)`, in commit
/// order. [`CommitClock::confirmed`] observes the latency of every commit the confirmed LSN
/// has passed.
#[derive(Debug, Default)]
pub struct CommitClock {
    waiting: VecDeque<(Lsn, i64)>,
}

impl CommitClock {
    /// A transaction committed at `commit_unix_micros` and ends at `end_lsn`.
    pub fn committed(&mut self, end_lsn: Lsn, commit_unix_micros: i64) {
        if enabled() {
            // Bounded: a reader far behind measures the newest 100k commits, not all of them.
            if self.waiting.len() >= 100_000 {
                self.waiting.pop_front();
            }
            self.waiting.push_back((end_lsn, commit_unix_micros));
        }
    }

    /// The confirmable LSN moved to `confirmed`.
    pub fn confirmed(&mut self, confirmed: Lsn) {
        while let Some(&(end, commit_us)) = self.waiting.front() {
            if end > confirmed {
                break;
            }
            self.waiting.pop_front();
            if let Some(seconds) = db::metrics::seconds_since_unix_micros(commit_us) {
                metrics::histogram!("pgcdc_reader_commit_to_ack_seconds").record(seconds);
            }
        }
    }
}

/// Every few seconds, the WAL `slot` keeps: `pg_current_wal_lsn() - restart_lsn`, in bytes.
/// Runs until the process ends; a failed query is logged at debug level and tried again.
pub async fn watch_slot(database_url: String, slot: String) {
    let mut pool = None;
    loop {
        if pool.is_none() {
            pool = db::connect(&database_url, 1).await.ok();
        }
        if let Some(p) = &pool {
            let retained: Result<Option<(Option<f64>,)>, sqlx::Error> = sqlx::query_as(
                "SELECT (pg_current_wal_lsn() - restart_lsn)::float8 FROM pg_replication_slots WHERE slot_name = $1",
            )
            .bind(&slot)
            .fetch_optional(p)
            .await;
            match retained {
                Ok(Some((Some(bytes),))) => {
                    metrics::gauge!("pgcdc_reader_slot_retained_wal_bytes", "slot" => slot.clone())
                        .set(bytes)
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!("slot retained WAL: {error}");
                    pool = None;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_leave_the_clock_in_order() {
        let mut clock = CommitClock::default();
        clock.waiting.push_back((Lsn(100), 1));
        clock.waiting.push_back((Lsn(200), 2));
        clock.confirmed(Lsn(150));
        assert_eq!(clock.waiting.len(), 1);
        clock.confirmed(Lsn(200));
        assert!(clock.waiting.is_empty());
    }
}
