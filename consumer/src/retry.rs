//! When a session fails: what kind of failure it was, and how long to wait before the next.
//!
//! The consume loop runs in *sessions* ([`crate::consume`]): claim the writer, seek to the
//! stored offsets, apply batches. Whatever breaks a session (PostgreSQL restarted or crashed,
//! a connection lost in the middle of a batch or of its COMMIT, a serialization failure or a
//! deadlock, the broker away while a dead letter is sent, the claim lost to another consumer)
//! ends it; the batch in flight is rolled back with its offsets, so the next session reads it
//! again from what PostgreSQL committed: nothing is skipped, nothing applied twice.
//!
//! ```text
//! Failure::Fenced     the claim is gone (lock lost, or another consumer claimed):
//!                     claim again at once (waiting for the lock if someone holds it)
//! Failure::Transient  PostgreSQL or Kafka away, a retryable SQLSTATE (08, 40, 53, 57, 58),
//!                     a Kafka client that stopped delivering (KafkaStalled):
//!                     wait (capped exponential backoff, a log line per attempt) and start over
//! Failure::Permanent  retrying cannot fix it (a table missing, totals that would overflow):
//!                     stop with the error
//! ```

use std::time::Duration;

use crate::projection_writer::FenceError;

/// What ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Fenced,
    Transient,
    Permanent,
}

/// The Kafka client delivered nothing for a long while although the partitions have records
/// beyond its position (seen after a broker restart): the session ends, and the next one
/// starts with a new client.
#[derive(Debug, thiserror::Error)]
#[error(
    "Kafka delivered nothing for {idle_seconds} s although {behind} record(s) are waiting: \
     reconnecting to Kafka"
)]
pub struct KafkaStalled {
    pub idle_seconds: u64,
    pub behind: i64,
}

/// Classifies an error chain: a fence error, else the first `sqlx` error it holds (by its
/// SQLSTATE), else a Kafka error (transient), else permanent.
pub fn classify(error: &anyhow::Error) -> Failure {
    for cause in error.chain() {
        if cause.downcast_ref::<KafkaStalled>().is_some() {
            return Failure::Transient;
        }
        if let Some(fence) = cause.downcast_ref::<crate::group::GroupFenceError>() {
            return match fence {
                crate::group::GroupFenceError::Database(sql) => classify_sqlx(sql),
                _ => Failure::Transient,
            };
        }
        if let Some(fence) = cause.downcast_ref::<FenceError>() {
            return match fence {
                FenceError::Database(sql) => classify_sqlx(sql),
                _ => Failure::Fenced,
            };
        }
        if let Some(sql) = cause.downcast_ref::<sqlx::Error>() {
            return classify_sqlx(sql);
        }
        if let Some(db) = cause.downcast_ref::<db::DbError>() {
            return match db {
                db::DbError::Connect { .. } => Failure::Transient,
                db::DbError::Query { source, .. } => classify_sqlx(source),
                _ => Failure::Permanent,
            };
        }
        if cause.downcast_ref::<rdkafka::error::KafkaError>().is_some() {
            return Failure::Transient;
        }
    }
    Failure::Permanent
}

/// A database error by kind: transient when [`db::is_transient`] says so (a lost connection,
/// a "try again" SQLSTATE), else permanent (a missing table, a constraint).
pub fn classify_sqlx(error: &sqlx::Error) -> Failure {
    if db::is_transient(error) {
        Failure::Transient
    } else {
        Failure::Permanent
    }
}

/// Capped exponential backoff: `first`, twice that, ... up to `max`; [`Backoff::reset`] after
/// a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            attempt: 0,
        }
    }

    /// The wait before the next attempt, and how many attempts have failed so far.
    pub fn next_wait(&mut self) -> (Duration, u32) {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        self.attempt = self.attempt.saturating_add(1);
        (
            self.first.saturating_mul(factor).min(self.max),
            self.attempt,
        )
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let waits: Vec<u64> = (0..5)
            .map(|_| backoff.next_wait().0.as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![500, 1000, 2000, 3000, 3000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), (Duration::from_millis(500), 1));
    }

    #[test]
    fn errors_are_classified_through_their_context() {
        let lost =
            anyhow::Error::new(sqlx::Error::PoolTimedOut).context("cannot start a transaction");
        assert_eq!(classify(&lost), Failure::Transient);
        let fenced = anyhow::Error::new(FenceError::LockLost { epoch: 1 }).context("batch");
        assert_eq!(classify(&fenced), Failure::Fenced);
        assert_eq!(
            classify(&anyhow::anyhow!("the totals would overflow")),
            Failure::Permanent
        );
    }
}
