//! `cargo run -p cdc-reader`: stream PostgreSQL changes to Kafka as Debezium envelopes.
//!
//! Parses the flags (see `config.rs`), sets up logs, and runs `cdc_reader::reader::run` until
//! SIGINT or SIGTERM. A signal stops reading, lets Kafka acknowledge what is in flight,
//! confirms it to PostgreSQL, and exits 0.

use anyhow::Context;
use cdc_reader::config::ReaderArgs;
use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let args = ReaderArgs::parse();
    let summary = cdc_reader::reader::run(args, shutdown_signal())
        .await
        .context("cdc-reader stopped")?;
    tracing::info!(
        end = ?summary.end,
        transactions = summary.stats.transactions,
        changes = summary.stats.changes,
        records = summary.stats.records_sent,
        confirmed = %summary.stats.confirmed,
        "cdc-reader done"
    );
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: delivering what is in flight, then confirming it");
}
