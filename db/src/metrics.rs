//! `/metrics`: what every long-running binary tells Prometheus, and the one place it is served.
//!
//! The binaries (cdc-reader, consumer, `producer serve`) record with the `metrics` crate's
//! macros (`counter!`, `gauge!`, `histogram!`) wherever something happens; that costs next to
//! nothing when no recorder is installed, which is the default. With `--metrics-listen ADDR`
//! the binary calls [`serve`]: a Prometheus recorder (`metrics-exporter-prometheus`) is
//! installed and `GET http://ADDR/metrics` answers in Prometheus's text format:
//!
//! ```text
//! # TYPE pgcdc_consumer_records_total counter
//! pgcdc_consumer_records_total{outcome="applied"} 1893
//! # TYPE pgcdc_consumer_end_to_end_latency_seconds histogram
//! pgcdc_consumer_end_to_end_latency_seconds_bucket{le="0.005"} 12
//! ...
//! ```
//!
//! Names follow Prometheus's conventions: one prefix ([`PREFIX`]), the binary next, base units
//! in the name (`_seconds`, `_bytes`), counters end in `_total`; labels only for bounded
//! dimensions (`table`, `topic`, `partition`, `op`, `outcome`, `kind`), never for ids.
//! Every `_seconds` histogram shares [`LATENCY_BUCKETS_SECONDS`], 1 ms to 30 s, so the
//! live page and Grafana read the same quantiles from each.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`serve`] installed the recorder: code that would do extra work only for a metric
/// (read a timestamp, format a label) asks first, so metrics off cost nothing.
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The prefix of every metric name the playground exports.
pub const PREFIX: &str = "pgcdc_";

/// Histogram buckets for latencies: milliseconds to seconds (the issue's goal is p99 <= 50 ms,
/// the model system's P95 <= 2 s), a few beyond for a pipeline that is catching up.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// Buckets for counts of records (the consumer's batch size, up to `--batch-size` 5000 and more).
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 50000.0,
];

/// Installs the Prometheus recorder and serves `GET /metrics` on `listen` (in a task of its
/// own, for as long as the process runs). Returns the address bound, which tells the real port
/// when `listen` asks for port 0. Call once per process, inside the tokio runtime.
pub async fn serve(listen: SocketAddr, binary: &str) -> anyhow::Result<SocketAddr> {
    let handle = install_recorder()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen} for /metrics (--metrics-listen): is the port taken?")
        })?;
    let bound = listener.local_addr().context("no local address")?;
    // Histograms are summarised lazily; upkeep keeps their memory flat between scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!("the /metrics server stopped: {error}");
        }
    });
    ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("{binary}: metrics on http://{bound}/metrics");
    Ok(bound)
}

/// The recorder, with our buckets for every `_seconds` histogram and for batch sizes.
fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_string()),
            LATENCY_BUCKETS_SECONDS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Suffix("_records".to_string()), COUNT_BUCKETS)
        })
        .context("invalid histogram buckets")?
        .install_recorder()
        .context(
            "cannot install the Prometheus recorder (a second --metrics-listen in one process?)",
        )
}

/// `GET http://addr/path`: the body of a 200 answer, within `timeout`. A few lines of HTTP/1.1
/// over TCP are enough for our own pages (`/metrics`, the live page's JSON), so no HTTP client
/// crate is needed by whoever scrapes them (the live page, the tests).
pub async fn http_get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("nothing listens on {addr}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .with_context(|| format!("{addr} answered without HTTP headers"))?;
        let status = head.split(' ').nth(1).unwrap_or("");
        anyhow::ensure!(status == "200", "{addr}{path} answered {status}");
        // axum answers small bodies with Content-Length; a chunked one is decoded here.
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Ok(dechunk(body));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .with_context(|| format!("{addr} did not answer within {timeout:?}"))?
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `GET http://addr/metrics`, parsed ([`crate::metrics_text::parse`]); `None` while nothing
/// answers there (a binary still starting, or one that is down).
pub async fn scrape(addr: &str) -> Option<Vec<crate::metrics_text::Sample>> {
    http_get(addr, "/metrics", Duration::from_secs(2))
        .await
        .ok()
        .map(|text| crate::metrics_text::parse(&text))
}

/// A free TCP port on 127.0.0.1 now (for a test that starts a binary with `--metrics-listen`).
pub fn free_local_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Seconds from a source commit time (microseconds since the Unix epoch, as Debezium's
/// `source.ts_us`) to now; `None` for a time in the future (clocks apart) or missing.
pub fn seconds_since_unix_micros(micros: i64) -> Option<f64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_micros() as i64;
    let elapsed = now.checked_sub(micros)?;
    (elapsed >= 0).then(|| elapsed as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn buckets_grow() {
        assert!(LATENCY_BUCKETS_SECONDS.windows(2).all(|w| w[0] < w[1]));
        assert!(COUNT_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn seconds_since_a_past_commit() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64;
        let seconds = seconds_since_unix_micros(now - 1_500_000).unwrap();
        assert!((1.4..100.0).contains(&seconds), "{seconds}");
        assert_eq!(seconds_since_unix_micros(now + 60_000_000), None);
    }
}
