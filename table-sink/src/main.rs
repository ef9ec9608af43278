//! `cargo run -p table-sink -- --topics T --to postgres://...`: mirror Kafka topics into
//! tables. See the crate documentation (`src/lib.rs`) for how.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let cli = table_sink::Cli::parse();
    table_sink::validate(&cli)?;
    db::check_args::exit_if_only_checking("table-sink");
    table_sink::run(cli).await
}
