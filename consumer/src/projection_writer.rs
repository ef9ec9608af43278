//! The single projection writer: an advisory lock to wait politely, a fencing token to be sure.
//!
//! Only one consumer process may write the projections at a time: each caches the per-order
//! states it wrote ([`crate::state_cache`]), and two writers would each read states the other
//! changes. A session advisory lock alone does not guarantee that: it lives on one
//! connection, and when PostgreSQL restarts that connection (and the lock) is gone while the
//! process goes on; a second consumer can then take the lock too. So a writer does two things:
//!
//! ```text
//! claim (once per session, on a connection of its own that it keeps open):
//!   SELECT pg_try_advisory_lock(hashtext('order-projections'))      -- wait while another holds it
//!   BEGIN; SET LOCAL synchronous_commit = on;                       -- a claim must survive a crash
//!   UPDATE projection_writer SET epoch = epoch + 1, token = gen_random_uuid(),
//!          backend_pid = pg_backend_pid(), ... RETURNING epoch, token        (or INSERT the row)
//!   COMMIT
//!
//! every batch transaction, first statement:
//!   SELECT epoch, token, <does backend_pid still hold the advisory lock?>
//!   FROM projection_writer FOR SHARE
//!   -- not our token: another consumer claimed the projections since: stop, drop the cache
//!   -- our token, lock gone: our lock connection died (restart, crash, pg_terminate_backend):
//!   --                       stop, drop the cache, claim again (waiting if someone else holds it)
//! ```
//!
//! The row lock makes the check and the claim exclusive: a claim's UPDATE waits until the
//! batch that checked has committed, and every batch after it sees the new token. The new
//! writer reads the states only after its claim, so it sees every batch the old one
//! committed. Each claim bumps `epoch` (and draws a new random `token`: after a crash with
//! `synchronous_commit=off` an epoch number alone could be handed out twice); the epoch goes
//! into `projection_batches` with every applied offset range, so SQL can show which writer
//! applied what.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// The advisory lock key every projection writer takes (`hashtext('order-projections')`).
pub const LOCK_NAME: &str = "order-projections";

/// How often a consumer that waits for the lock asks again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// Why a batch must not be written.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error(
        "another consumer ({owner}) claimed the projections (epoch {theirs}; ours was {ours}): \
         this one stops writing and waits for the lock"
    )]
    Superseded {
        ours: i64,
        theirs: i64,
        owner: String,
    },
    #[error(
        "the advisory lock `{LOCK_NAME}` of this consumer (epoch {epoch}) is gone with its \
         connection (PostgreSQL restarted, or the backend was terminated): claiming it again"
    )]
    LockLost { epoch: i64 },
    #[error("nobody has claimed the projections (the projection_writer row is missing)")]
    NotClaimed,
    #[error("cannot check the projection writer: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a batch transaction checks: this writer's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub epoch: i64,
    pub token: String,
}

/// A held claim: the connection that holds the advisory lock (kept open for the whole
/// session: closing it releases the lock) and the fence batches check.
pub struct WriterClaim {
    pub fence: Fence,
    /// The lock connection's backend pid, as `pg_stat_activity` shows it.
    pub backend_pid: i32,
    lock_connection: PgConnection,
}

impl WriterClaim {
    /// Releases the lock (by closing its connection); the server releases it as well when
    /// the process dies.
    pub async fn release(self) {
        let _ = self.lock_connection.close().await;
    }
}

/// Takes the advisory lock on a connection of its own, waiting while another consumer holds
/// it, then claims the projections (a new epoch). `owner` is what `projection_writer.owner`
/// says (for people reading the table). Fails (to be retried by the caller) when PostgreSQL
/// does not answer.
pub async fn claim(database_url: &str, owner: &str) -> Result<WriterClaim, sqlx::Error> {
    let mut lock_connection = PgConnection::connect(database_url).await?;
    let mut waiting_since: Option<Instant> = None;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(LOCK_NAME)
            .fetch_one(&mut lock_connection)
            .await?;
        if locked {
            break;
        }
        if waiting_since.is_none_or(|since| since.elapsed() > Duration::from_secs(60)) {
            let holder: Option<String> = sqlx::query_scalar("SELECT owner FROM projection_writer")
                .fetch_optional(&mut lock_connection)
                .await?;
            tracing::warn!(
                "another consumer is writing the projections (advisory lock `{LOCK_NAME}`, held by {}); waiting for it to stop",
                holder.as_deref().unwrap_or("an unknown process")
            );
            waiting_since = Some(Instant::now());
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
    let mut tx = lock_connection.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = on")
        .execute(&mut *tx)
        .await?;
    let (epoch, token, backend_pid): (i64, String, i32) = sqlx::query_as(
        "INSERT INTO projection_writer (epoch, token, owner, backend_pid) \
         VALUES (1, gen_random_uuid(), $1, pg_backend_pid()) \
         ON CONFLICT (singleton) DO UPDATE SET epoch = projection_writer.epoch + 1, \
           token = EXCLUDED.token, owner = EXCLUDED.owner, backend_pid = EXCLUDED.backend_pid, \
           claimed_at = now() \
         RETURNING epoch, token::text, backend_pid",
    )
    .bind(owner)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        "claimed the projections as writer epoch {epoch} (lock held by backend {backend_pid})"
    );
    Ok(WriterClaim {
        fence: Fence { epoch, token },
        backend_pid,
        lock_connection,
    })
}

/// Checks, inside a batch's transaction, that `fence` is still the projection writer and
/// that its lock connection still holds the advisory lock. Locks the writer row until the
/// transaction ends, so no claim can slip in between this check and the COMMIT.
pub async fn check(tx: &mut PgConnection, fence: &Fence) -> Result<(), FenceError> {
    let row: Option<(i64, String, String, bool)> = sqlx::query_as(
        "SELECT w.epoch, w.token::text, w.owner, EXISTS ( \
             SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted \
               AND l.pid = w.backend_pid AND l.objsubid = 1 \
               AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint) \
         FROM projection_writer w FOR SHARE OF w",
    )
    .bind(LOCK_NAME)
    .fetch_optional(tx)
    .await?;
    let Some((epoch, token, owner, lock_held)) = row else {
        return Err(FenceError::NotClaimed);
    };
    verdict(fence, epoch, &token, &owner, lock_held)
}

/// The pure part of [`check`]: what the stored claim means for `fence`.
fn verdict(
    fence: &Fence,
    epoch: i64,
    token: &str,
    owner: &str,
    lock_held: bool,
) -> Result<(), FenceError> {
    if token != fence.token {
        return Err(FenceError::Superseded {
            ours: fence.epoch,
            theirs: epoch,
            owner: owner.to_string(),
        });
    }
    if !lock_held {
        return Err(FenceError::LockLost { epoch: fence.epoch });
    }
    Ok(())
}

/// What `projection_writer.owner` says about this process: name, pid and host.
pub fn owner_description(consumer: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("{consumer} (pid {} on {host})", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence() -> Fence {
        Fence {
            epoch: 3,
            token: "a".into(),
        }
    }

    #[test]
    fn our_claim_with_the_lock_may_write() {
        assert!(verdict(&fence(), 3, "a", "us", true).is_ok());
    }

    #[test]
    fn another_claim_stops_us_even_when_our_lock_is_held() {
        let error = verdict(&fence(), 4, "b", "them", true).unwrap_err();
        assert!(matches!(error, FenceError::Superseded { theirs: 4, .. }));
    }

    #[test]
    fn a_lost_lock_stops_us_before_anyone_claims() {
        let error = verdict(&fence(), 3, "a", "us", false).unwrap_err();
        assert!(matches!(error, FenceError::LockLost { epoch: 3 }));
    }

    #[test]
    fn the_same_epoch_with_another_token_is_someone_else() {
        // After a crash with synchronous_commit=off a claim can vanish and its epoch be reused.
        let error = verdict(&fence(), 3, "b", "them", true).unwrap_err();
        assert!(matches!(error, FenceError::Superseded { .. }));
    }
}
