//! `consumer status --serve ADDR`: the live page, one picture of the whole pipeline, refreshed
//! every second.
//!
//! ```text
//! browser ──GET /──────────> page.html (HTML + JS + SVG, embedded: no front-end build step)
//!         ──GET /api/state─> JSON, built on each request by [`state::gather`] from
//!                              PostgreSQL: current WAL LSN, the slot, order_totals vs the GROUP BY
//!                              Kafka: end offsets, stored offsets, lag per partition
//!                              /metrics of producer serve, cdc-reader, consumer (scraped)
//! ```
//!
//! Each source is asked on its own, with a short timeout: one that does not answer is marked
//! down in the JSON (`"up": false, "error": "..."`) and its box turns red; the rest of the page
//! goes on. The page keeps the last minutes of throughput and latency itself, in the browser.

pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Json;

use crate::config::ConsumerArgs;

/// The page: static, compiled in.
const PAGE: &str = include_str!("page.html");

/// Where the live page finds the other binaries' `/metrics`, and where it listens.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// Serve the live page of the pipeline on http://ADDR/ instead of printing the status once.
    #[arg(long, env = "CONSUMER_STATUS_SERVE")]
    pub serve: Option<SocketAddr>,
    /// `producer serve --metrics-listen` address to scrape.
    #[arg(
        long,
        env = "CONSUMER_STATUS_PRODUCER_METRICS",
        default_value = "127.0.0.1:9100"
    )]
    pub producer_metrics: String,
    /// `cdc-reader --metrics-listen` address to scrape.
    #[arg(
        long,
        env = "CONSUMER_STATUS_READER_METRICS",
        default_value = "127.0.0.1:9101"
    )]
    pub reader_metrics: String,
    /// `consumer --metrics-listen` address to scrape.
    #[arg(
        long,
        env = "CONSUMER_STATUS_CONSUMER_METRICS",
        default_value = "127.0.0.1:9102"
    )]
    pub consumer_metrics: String,
    /// The replication slot cdc-reader reads.
    #[arg(long, env = "CONSUMER_STATUS_SLOT", default_value = "playground_slot")]
    pub slot_name: String,
}

/// Serves the page until the process is stopped.
pub async fn serve(
    listen: SocketAddr,
    database_url: &str,
    consumer: &ConsumerArgs,
    live: &LiveArgs,
) -> anyhow::Result<()> {
    let sources = Arc::new(state::Sources::new(database_url, consumer, live)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--serve): is the port taken?"))?;
    let bound = listener.local_addr().context("no local address")?;
    let app = axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/api/state",
            get(move || {
                let sources = sources.clone();
                async move { Json(state::gather(&sources).await).into_response() }
            }),
        );
    tracing::info!("live page on http://{bound}/");
    println!("live page on http://{bound}/");
    axum::serve(listener, app)
        .await
        .context("the live page's server failed")
}
