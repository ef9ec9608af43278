//! `cargo run -p cdc-reader`: stream PostgreSQL changes to Kafka as Debezium envelopes.
//!
//! Parses the flags (see `config.rs`), sets up logs, and runs `cdc_reader::reader::run` until
//! SIGINT or SIGTERM. A signal stops reading, lets Kafka acknowledge what is in flight,
//! confirms it to PostgreSQL, and exits 0. A lost connection to PostgreSQL is not an exit: the
//! reader connects again and resumes (see `retry.rs`); it exits non-zero only on an error
//! retrying cannot fix, with the fix in the message.

use anyhow::Context;
use cdc_reader::config::ReaderArgs;
use clap::{CommandFactory, Parser};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    // `--debezium-config FILE`: the file's keys become flags in front of the user's own.
    let argv = cdc_reader::debezium_config::load_into_argv(
        &ReaderArgs::command(),
        std::env::args_os().collect(),
    )?;
    let args = ReaderArgs::parse_from(argv);
    db::check_args::exit_if_only_checking("cdc-reader");
    // Listen for signals before anything else: a signal that arrives during setup (slot,
    // snapshot) is kept and stops the reader as soon as it streams. (A process started in the
    // background of a script inherits SIGINT as ignored; installing the handler undoes that.)
    let shutdown = shutdown_signal().context("installing the SIGINT/SIGTERM handlers")?;
    let summary = cdc_reader::reader::run(args, shutdown)
        .await
        .context("cdc-reader stopped")?;
    tracing::info!(
        end = ?summary.end,
        transactions = summary.stats.transactions,
        changes = summary.stats.changes,
        records = summary.stats.records_sent,
        confirmed = %summary.stats.confirmed,
        reconnects = summary.reconnects,
        "cdc-reader done"
    );
    Ok(())
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM; the handlers are installed now.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down: delivering what is in flight, then confirming it");
    })
}
