//! `cargo run -p consumer [-- --replay | --until-caught-up | --from outbox | status | dlq]`:
//! apply order change events from Kafka to the projections in PostgreSQL, exactly once.
//! See the crate documentation (`src/lib.rs`) for how.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let cli = consumer::Cli::parse();
    db::check_args::exit_if_only_checking("consumer");
    consumer::run(cli).await
}
