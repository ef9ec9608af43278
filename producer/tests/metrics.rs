//! `producer serve --metrics-listen`: the binary serves Prometheus `/metrics`; each API request
//! counts as an operation of its kind and outcome, with its transaction time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use db::metrics_text::{buckets, parse, sum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use db::testing::Killed;

/// One request; the answer's status code.
async fn request(addr: &str, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.ok()?;
    raw.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_are_counted_by_kind_and_outcome() {
    let (url, _pool) = db::testing::fresh_database("producer_metrics")
        .await
        .expect("database");
    let api = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let metrics = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_producer"))
            .args(["serve", "--database-url", &url, "--listen", &api])
            .args(["--metrics-listen", &metrics])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start producer serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(&api, "GET", "/healthz", "").await != Some(200) {
        assert!(Instant::now() < deadline, "producer serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order = r#"{"customer_id":7,"items":[{"sku":"SKU-1","quantity":2,"unit_price":"4.10"}]}"#;
    for _ in 0..3 {
        assert_eq!(request(&api, "POST", "/orders", order).await, Some(201));
    }
    assert_eq!(
        request(&api, "PATCH", "/orders/1", r#"{"status":"PAID"}"#).await,
        Some(200)
    );
    assert_eq!(request(&api, "DELETE", "/orders/2", "").await, Some(204));
    assert_eq!(request(&api, "GET", "/orders/999", "").await, Some(404));

    let text = db::metrics::http_get(&metrics, "/metrics", Duration::from_secs(5))
        .await
        .expect("scrape");
    let samples = parse(&text);
    let ops = |kind: &str, outcome: &str| {
        sum(
            &samples,
            "pgcdc_producer_operations_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(ops("create", "ok"), 3.0, "{text}");
    assert_eq!(ops("update", "ok"), 1.0);
    assert_eq!(ops("delete", "ok"), 1.0);
    assert_eq!(ops("read", "rejected"), 1.0);
    let timed = buckets(&samples, "pgcdc_producer_transaction_seconds");
    assert_eq!(timed.last().map(|b| b.1), Some(6.0), "{text}");
}

/// A workload run with `--metrics-listen` serves `/metrics` while it lasts: its committed
/// operations are counted by kind (the live page's producer box in `scripts/demo`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_run_counts_its_operations() {
    let (url, _pool) = db::testing::fresh_database("producer_run_metrics")
        .await
        .expect("database");
    let metrics = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let _run = Killed(
        Command::new(env!("CARGO_BIN_EXE_producer"))
            .args(["--database-url", &url, "--duration", "60s", "--rate", "50"])
            .args(["--no-progress", "--metrics-listen", &metrics])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the producer"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the run's /metrics never counted 20 operations"
        );
        if let Some(samples) = db::metrics::scrape(&metrics).await {
            let creates = sum(
                &samples,
                "pgcdc_producer_operations_total",
                &[("kind", "create"), ("outcome", "ok")],
            );
            let all = sum(&samples, "pgcdc_producer_operations_total", &[]);
            let timed = buckets(&samples, "pgcdc_producer_transaction_seconds");
            if all >= 20.0 {
                assert!(creates >= 1.0, "no create among {all} operations");
                // Counter and histogram are recorded one after the other: a scrape may fall
                // between the two for the operation in progress.
                let timed = timed.last().map_or(0.0, |b| b.1);
                assert!(
                    (all - timed).abs() <= 2.0,
                    "{all} operations, {timed} timed"
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
