//! `cargo run -p order-events`: the stream processor that joins orders and their items into
//! domain events on `orders.events.v1`, exactly once with Kafka transactions.
//! See the crate documentation (`src/lib.rs`) for how.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let cli = order_events::Cli::parse();
    db::check_args::exit_if_only_checking("order-events");
    order_events::run(cli)
}
