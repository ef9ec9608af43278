//! Riding out restarts: which errors are worth a new connection, and how long to wait first.
//!
//! PostgreSQL goes away now and then: `pg_ctl restart`, a crash and its recovery, a network
//! cut, an operator's `pg_terminate_backend`. None of that loses anything (the slot keeps its
//! `confirmed_flush_lsn` and the WAL after it), so the reader connects again and resumes from
//! the slot, as Debezium's connector does for its retriable errors. Other errors no wait can
//! fix: a dropped or invalidated slot, a removed privilege, a wrong password, a bad record.
//! Those stop the reader with the fix in the message, at once.
//!
//! This module decides which is which, in one place ([`classify`]), and paces the attempts
//! ([`Retrier`]): capped exponential backoff (Debezium waits `retriable.restart.connector.wait.ms`,
//! 10 s, between restarts; we start at `--retry-backoff`, 100 ms, and double up to
//! `--retry-backoff-max`, 10 s) and `--max-retries` (Debezium's `errors.max.retries`: -1 is
//! unlimited, the default; 0 stops at the first error). Pure logic, no I/O, no clock of its
//! own: the caller passes `now`.
//!
//! ```text
//! error ──classify──> Fatal            -> stop, the message says what to do
//!                     Retriable(why)   -> wait 100ms, 200ms, 400ms ... 10s, reconnect
//!                     SlotBusy         -> the same, but only after a lost connection and only
//!                                         for `slot_busy_grace` (the old walsender has not
//!                                         noticed yet); at start-up it is another reader: stop
//! ```

use std::time::{Duration, Instant};

use crate::catalog::CatalogError;
use crate::replication::connection::ConnectionError;
use crate::replication::slot::SlotError;
use crate::snapshot::SnapshotError;
use crate::ReaderError;

/// What kind of failure an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Waiting and connecting again can fix it; the text says what the reader waits for.
    Retriable(String),
    /// The slot is held by another process: after a lost connection usually our own old
    /// walsender that has not exited yet.
    SlotBusy,
    /// Nothing but a person can fix it.
    Fatal,
}

/// SQLSTATEs that mean "the server (or this connection to it) is going away or not back yet".
fn retriable_sqlstate(code: &str) -> Option<&'static str> {
    Some(match code {
        "57P01" => "the server to come back (it is shutting down, or an administrator ended our connection)",
        "57P02" => "the server to recover from a crash",
        "57P03" => "the server to finish starting up (or shutting down)",
        "57P05" => "a new connection (the server closed an idle session)",
        "53300" => "a free connection slot on the server (too many connections)",
        "53000" | "53100" | "53200" => "the server to have resources again (disk full or out of memory)",
        "40001" | "40P01" => "a retry of a transaction the server rolled back",
        _ if code.starts_with("08") => "the connection to the server to come back",
        _ => return None,
    })
}

const WAIT_FOR_CONNECTION: &str = "PostgreSQL to accept connections again";

fn classify_connection(error: &ConnectionError) -> ErrorClass {
    match error {
        ConnectionError::Io(_) | ConnectionError::Closed => {
            ErrorClass::Retriable(WAIT_FOR_CONNECTION.into())
        }
        ConnectionError::Timeout(_) => {
            ErrorClass::Retriable("a new connection (the old one went silent)".into())
        }
        ConnectionError::Server(server) => match retriable_sqlstate(&server.code) {
            Some(why) => ErrorClass::Retriable(why.into()),
            None => ErrorClass::Fatal,
        },
        ConnectionError::BadUrl(_) | ConnectionError::Auth(_) | ConnectionError::Protocol(_) => {
            ErrorClass::Fatal
        }
    }
}

/// tokio-postgres errors (the catalog connection, the snapshot's queries).
fn classify_sql(error: &tokio_postgres::Error) -> ErrorClass {
    if let Some(code) = error.code() {
        return match retriable_sqlstate(code.code()) {
            Some(why) => ErrorClass::Retriable(why.into()),
            None => ErrorClass::Fatal,
        };
    }
    if error.is_closed() {
        return ErrorClass::Retriable(WAIT_FOR_CONNECTION.into());
    }
    // I/O (refused, reset, timed out) shows as an io::Error somewhere in the source chain.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return ErrorClass::Retriable(WAIT_FOR_CONNECTION.into());
        }
        source = cause.source();
    }
    if error.to_string().starts_with("timeout") {
        return ErrorClass::Retriable(WAIT_FOR_CONNECTION.into());
    }
    ErrorClass::Fatal
}

fn classify_catalog(error: &CatalogError) -> ErrorClass {
    match error {
        CatalogError::Connect { source, .. } | CatalogError::Query { source, .. } => {
            classify_sql(source)
        }
        CatalogError::Lost(_) => ErrorClass::Retriable(WAIT_FOR_CONNECTION.into()),
    }
}

/// The one place that says which errors the reader retries.
pub fn classify(error: &ReaderError) -> ErrorClass {
    match error {
        ReaderError::Connection(inner) => classify_connection(inner),
        ReaderError::Slot(SlotError::Connection(inner)) => classify_connection(inner),
        ReaderError::Slot(SlotError::SlotBusy { .. }) => ErrorClass::SlotBusy,
        ReaderError::Slot(_) => ErrorClass::Fatal,
        ReaderError::Catalog(inner) => classify_catalog(inner),
        ReaderError::Snapshot(SnapshotError::Query { source, .. }) => classify_sql(source),
        ReaderError::Snapshot(SnapshotError::Catalog(inner)) => classify_catalog(inner),
        ReaderError::Snapshot(SnapshotError::MissingTable(_) | SnapshotError::Incremental(_)) => {
            ErrorClass::Fatal
        }
        // Bad bytes, bad bookkeeping, Kafka's final refusal: a new connection changes nothing.
        // (Kafka outages themselves never reach here: the sink waits them out.)
        ReaderError::Protocol(_)
        | ReaderError::Decode(_)
        | ReaderError::Changes(_)
        | ReaderError::Sink(_)
        | ReaderError::Delivery(_)
        | ReaderError::Kafka(_)
        | ReaderError::Tracker(_)
        | ReaderError::Stream(_)
        | ReaderError::Transforms(_)
        | ReaderError::Registry(_) => ErrorClass::Fatal,
    }
}

/// `--max-retries`, `--retry-backoff`, `--retry-backoff-max`, and how long a busy slot is
/// waited for after a lost connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// None: unlimited (Debezium's -1).
    pub max_retries: Option<u32>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub slot_busy_grace: Duration,
}

impl RetryPolicy {
    /// From the flags: `max_retries` < 0 is unlimited. A busy slot is waited for twice the
    /// connection timeout: the server drops a silent walsender after its own wal_sender_timeout
    /// (60 s by default, the same as ours).
    pub fn from_flags(
        max_retries: i64,
        initial_backoff: Duration,
        max_backoff: Duration,
        connection_timeout: Duration,
    ) -> Self {
        RetryPolicy {
            max_retries: u32::try_from(max_retries).ok(),
            initial_backoff: initial_backoff.max(Duration::from_millis(1)),
            max_backoff: max_backoff.max(initial_backoff),
            slot_busy_grace: connection_timeout * 2,
        }
    }

    /// "unlimited" or the number, for log lines.
    pub fn limit(&self) -> String {
        match self.max_retries {
            None => "unlimited".into(),
            Some(n) => n.to_string(),
        }
    }
}

/// The next attempt: how long to wait and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub delay: Duration,
    /// 1 for the first retry after a failure, counting up until a session streams again.
    pub attempt: u32,
    pub waiting_for: String,
}

/// Why the reader stops retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// The error is not retriable.
    Fatal,
    /// `--max-retries` attempts in a row failed.
    OutOfRetries(u32),
    /// The slot stayed busy longer than the grace period (or was busy at start-up).
    SlotStaysBusy,
}

/// Counts consecutive failures and computes the backoff. [`Retrier::recovered`] resets it once
/// a new session streams.
#[derive(Debug, Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    attempts: u32,
    slot_busy_since: Option<Instant>,
}

impl Retrier {
    pub fn new(policy: RetryPolicy) -> Self {
        Retrier {
            policy,
            attempts: 0,
            slot_busy_since: None,
        }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The reader streams again: the next failure starts from the first backoff.
    pub fn recovered(&mut self) {
        self.attempts = 0;
        self.slot_busy_since = None;
    }

    /// What to do about `error`. `lost_connection`: the reader had been streaming in this run
    /// (so a busy slot is most likely its own old walsender).
    pub fn decide(
        &mut self,
        error: &ReaderError,
        lost_connection: bool,
        now: Instant,
    ) -> Result<Wait, GiveUp> {
        let waiting_for = match classify(error) {
            ErrorClass::Fatal => return Err(GiveUp::Fatal),
            ErrorClass::Retriable(why) => why,
            ErrorClass::SlotBusy => {
                if !lost_connection {
                    return Err(GiveUp::SlotStaysBusy);
                }
                let since = *self.slot_busy_since.get_or_insert(now);
                if now.duration_since(since) > self.policy.slot_busy_grace {
                    return Err(GiveUp::SlotStaysBusy);
                }
                let waited = Duration::from_millis(now.duration_since(since).as_millis() as u64);
                format!(
                    "the server to let go of the slot (the walsender of the lost connection has not \
                     exited yet; waited {waited:?} of at most {:?})",
                    self.policy.slot_busy_grace
                )
            }
        };
        if let Some(max) = self.policy.max_retries {
            if self.attempts >= max {
                return Err(GiveUp::OutOfRetries(max));
            }
        }
        self.attempts += 1;
        Ok(Wait {
            delay: backoff(&self.policy, self.attempts),
            attempt: self.attempts,
            waiting_for,
        })
    }
}

/// The wait before attempt `attempt` (1-based): initial, doubled each time, capped.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    policy
        .initial_backoff
        .saturating_mul(1u32 << doublings)
        .min(policy.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::connection::ServerError;

    fn server(code: &str) -> ReaderError {
        ReaderError::Connection(ConnectionError::Server(ServerError {
            severity: "FATAL".into(),
            code: code.into(),
            message: "m".into(),
            ..ServerError::default()
        }))
    }

    fn policy(max_retries: i64) -> RetryPolicy {
        RetryPolicy::from_flags(
            max_retries,
            Duration::from_millis(100),
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn lost_connections_and_shutting_down_servers_are_retriable() {
        let io = ReaderError::Connection(ConnectionError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        for error in [
            io,
            ReaderError::Connection(ConnectionError::Closed),
            ReaderError::Connection(ConnectionError::Timeout("no frame".into())),
            ReaderError::Slot(SlotError::Connection(ConnectionError::Closed)),
            ReaderError::Catalog(CatalogError::Lost("closed".into())),
            server("57P01"), // terminating connection due to administrator command
            server("57P02"), // crash shutdown
            server("57P03"), // the database system is starting up
            server("08006"),
            server("53300"),
        ] {
            assert!(
                matches!(classify(&error), ErrorClass::Retriable(_)),
                "{error}"
            );
        }
    }

    #[test]
    fn what_only_a_person_can_fix_is_fatal() {
        for error in [
            server("28P01"), // password authentication failed
            server("28000"), // no pg_hba.conf entry
            server("42501"), // permission denied
            server("42704"), // slot or publication does not exist
            server("55000"), // slot invalidated
            server("3D000"), // database does not exist
            ReaderError::Connection(ConnectionError::Auth("no password".into())),
            ReaderError::Slot(SlotError::Dropped("s".into())),
            ReaderError::Slot(SlotError::Lost("s".into())),
            ReaderError::Slot(SlotError::PublicationGone {
                publication: "p".into(),
                slot: "s".into(),
                reason: "gone".into(),
            }),
            ReaderError::Slot(SlotError::NoReplicationPrivilege(
                "u".into(),
                "t".into(),
                "m".into(),
            )),
            ReaderError::Delivery("message timed out".into()),
            ReaderError::Stream("COMMIT without BEGIN".into()),
        ] {
            assert_eq!(classify(&error), ErrorClass::Fatal, "{error}");
        }
    }

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let policy = policy(-1);
        let waits: Vec<_> = (1..=9).map(|n| backoff(&policy, n).as_millis()).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(backoff(&policy, u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn unlimited_by_default_limited_when_asked_and_reset_by_a_recovery() {
        let now = Instant::now();
        let closed = ReaderError::Connection(ConnectionError::Closed);
        let mut unlimited = Retrier::new(policy(-1));
        for attempt in 1..=100 {
            assert_eq!(
                unlimited.decide(&closed, true, now).unwrap().attempt,
                attempt
            );
        }
        let mut limited = Retrier::new(policy(2));
        assert!(limited.decide(&closed, true, now).is_ok());
        assert!(limited.decide(&closed, true, now).is_ok());
        assert_eq!(
            limited.decide(&closed, true, now),
            Err(GiveUp::OutOfRetries(2))
        );
        limited.recovered();
        let wait = limited.decide(&closed, true, now).unwrap();
        assert_eq!((wait.attempt, wait.delay), (1, Duration::from_millis(100)));
        let mut none = Retrier::new(policy(0));
        assert_eq!(
            none.decide(&closed, true, now),
            Err(GiveUp::OutOfRetries(0))
        );
        assert_eq!(
            Retrier::new(policy(-1)).decide(&server("28P01"), true, now),
            Err(GiveUp::Fatal)
        );
    }

    #[test]
    fn a_busy_slot_is_waited_for_only_after_a_lost_connection_and_only_for_a_while() {
        let busy = ReaderError::Slot(SlotError::SlotBusy {
            slot: "s".into(),
            pid: "42".into(),
        });
        let start = Instant::now();
        let mut retrier = Retrier::new(policy(-1));
        assert_eq!(
            retrier.decide(&busy, false, start),
            Err(GiveUp::SlotStaysBusy),
            "at start-up a busy slot is another reader"
        );
        let wait = retrier.decide(&busy, true, start).unwrap();
        assert!(wait.waiting_for.contains("let go of the slot"), "{wait:?}");
        assert!(retrier
            .decide(&busy, true, start + Duration::from_secs(119))
            .is_ok());
        assert_eq!(
            retrier.decide(&busy, true, start + Duration::from_secs(121)),
            Err(GiveUp::SlotStaysBusy)
        );
    }
}
