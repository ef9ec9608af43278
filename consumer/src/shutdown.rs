//! SIGINT (Ctrl-C) and SIGTERM: the consumer finishes the batch in flight, commits it with its
//! offsets, and exits 0, as `scripts/demo stop` and a service manager expect.
//!
//! The signal handlers are installed once, by the first [`requested`] call's [`install`]; from
//! then on a signal is remembered, so one that arrives while the consumer is busy (between two
//! waits) is not lost: the next wait returns at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use tokio::sync::Notify;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNALLED: Notify = Notify::const_new();
static INSTALL: Once = Once::new();

/// Listens for SIGINT and SIGTERM in a background task (inside a tokio runtime).
pub fn install() {
    INSTALL.call_once(|| {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("could not install the SIGINT/SIGTERM handlers; stop the consumer with kill -9 (safe: nothing committed is lost)");
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("signal received: finishing the batch in flight, then stopping");
            REQUESTED.store(true, Ordering::SeqCst);
            SIGNALLED.notify_waiters();
        });
    });
}

/// Resolves once SIGINT or SIGTERM has come (at once when one came already).
pub async fn requested() {
    install();
    loop {
        let notified = SIGNALLED.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if REQUESTED.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}
