//! What the producer does when PostgreSQL (or Kafka, for `--direct-publish`) goes away.
//!
//! ```text
//! an operation fails ──connection lost / retryable SQLSTATE──> wait (capped backoff, a log line),
//!                                                              new connection, same operation again
//!                    ──the connection died during COMMIT────> "in doubt": new connection, look the
//!                                                              order up, then either move on
//!                                                              (committed) or run it again (not)
//!                    ──anything else──────────────────────────> the run stops with the error
//! ```
//!
//! Every retry runs the whole transaction again, so an order is still written whole or not at
//! all. Which database errors are worth a retry is `db::is_transient`, shared with the consumer:
//! a lost connection, or a SQLSTATE of class 08, 40, 53, 57 or 58.

use std::time::Duration;

/// Whether an error means the server never answered (as opposed to answering with an
/// error): for a COMMIT, that leaves its outcome unknown.
pub fn is_unanswered(error: &sqlx::Error) -> bool {
    !matches!(error, sqlx::Error::Database(_)) && db::is_transient(error)
}

/// Retry settings (`--max-retries`, `--retry-backoff`, `--retry-backoff-max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed attempts in a row after which the run gives up.
    pub max_retries: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 100,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (1 for the first retry): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff.max(self.first_backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_retries: 10,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn a_lost_connection_leaves_the_answer_unknown() {
        assert!(is_unanswered(&sqlx::Error::Io(
            std::io::ErrorKind::UnexpectedEof.into()
        )));
        assert!(!is_unanswered(&sqlx::Error::RowNotFound));
    }
}
