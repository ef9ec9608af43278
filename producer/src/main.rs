//! `cargo run -p producer -- ...`: the application whose writes we capture.
//!
//! Parses the command line ([`producer::cli`]) and hands over to the library: a seeded workload
//! ([`producer::run`]) or the HTTP API ([`producer::http::run_server`]).

use anyhow::Context;
use clap::Parser;
use producer::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let cli = Cli::parse();
    db::check_args::exit_if_only_checking("producer");
    match cli.command {
        Some(Command::Serve(args)) => {
            if let Some(listen) = args.metrics_listen {
                db::metrics::serve(listen, "producer").await?;
            }
            producer::http::run_server(args.into_config())
                .await
                .context("producer serve stopped")?;
        }
        None => {
            if let Some(listen) = cli.run.metrics_listen {
                db::metrics::serve(listen, "producer").await?;
            }
            let summary = producer::run(cli.run.into_config())
                .await
                .context("the producer run failed")?;
            println!("{summary}");
        }
    }
    Ok(())
}
