//! The producer across PostgreSQL going away (a fast restart, then a crash with recovery), on
//! a private stack (never the shared one): the workload run finishes, its summary reports the
//! retries and COMMITs in doubt, and no order is partial (each has its lines, its total is their
//! sum, and its OrderCreated outbox row exists); `producer serve` answers 503 with a JSON reason
//! while the database is away, and 2xx again once it is back, by itself.

mod support;

use std::time::{Duration, Instant};

use db::private_stack::PrivateStack;
use producer::http::{router, AppState};
use producer::runner::Rate;
use serde_json::Value;
use support::{count, inconsistent_orders, run_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request; `None` when the server did not answer at all.
async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

const NEW_ORDER: &str =
    r#"{"customer_id":7,"items":[{"sku":"SKU-1","quantity":2,"unit_price":"4.10"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_and_the_api_ride_out_a_postgres_restart_and_crash() {
    db::init_tracing();
    let stack = PrivateStack::up("producer_rides_out");
    let url = stack.database_url("playground");
    let pool = db::connect(&url, 4)
        .await
        .expect("connect to the private stack");
    db::migrate(&pool, &url).await.expect("migrate");

    // The API, in-process, on a pool of its own.
    let api_pool = db::connect(&url, 4).await.expect("connect the API");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(AppState {
                pool: api_pool,
                outbox_mode: Default::default(),
                // Short, so requests answer 503 within the outage instead of waiting it out.
                db_wait: Duration::from_millis(200),
            }),
        )
        .await
    });
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(async move {
        let mut answers: Vec<(Instant, u16, Value)> = Vec::new();
        while !*done_rx.borrow_and_update() {
            for (method, path, body) in [("GET", "/healthz", ""), ("POST", "/orders", NEW_ORDER)] {
                if let Some((status, body)) = send(addr, method, path, body).await {
                    answers.push((Instant::now(), status, body));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    });

    // The workload: 2 workers, 1500 operations at 150/s (about 10 s).
    let mut config = run_config(&url, 1500, 42, 2, "create=60,update=25,cancel=5,delete=10");
    config.rate = Rate::PerSecond(150.0);
    config.retry.first_backoff = Duration::from_millis(100);
    config.retry.max_backoff = Duration::from_secs(1);
    let run = tokio::spawn(producer::run(config));

    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| stack.restart_postgres("fast"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| stack.crash_postgres());
    let back = Instant::now();

    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run finishes within a minute of the crash")
        .expect("the run task")
        .expect("the run finishes");
    eprintln!("{summary}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    done_tx.send(true).unwrap();
    let answers = poller.await.unwrap();

    assert_eq!(
        summary.operations() + summary.faults.lost_orders,
        1500,
        "{summary}"
    );
    assert!(
        summary.faults.retries + summary.faults.in_doubt > 0,
        "no fault was seen: {summary}"
    );
    assert_eq!(
        summary.faults.in_doubt,
        summary.faults.in_doubt_committed + summary.faults.in_doubt_not_committed
    );
    assert!(summary.to_string().contains("faults: "), "{summary}");

    let unavailable: Vec<&(Instant, u16, Value)> = answers
        .iter()
        .filter(|(_, status, _)| *status == 503)
        .collect();
    assert!(!unavailable.is_empty(), "no 503 during the outage");
    for (_, _, body) in &unavailable {
        let reason = body.get("error").or_else(|| body.get("status"));
        assert!(
            reason.is_some() && body.get("problem").is_some(),
            "503 without a reason: {body}"
        );
    }
    let after: Vec<u16> = answers
        .iter()
        .filter(|(at, _, _)| *at > back + Duration::from_secs(1))
        .map(|(_, status, _)| *status)
        .collect();
    assert!(!after.is_empty(), "no answer after the database came back");
    assert!(
        after.iter().all(|s| (200..300).contains(s)),
        "not healthy again: {after:?}"
    );

    // No partial order: every order has lines summing to its total, and its creation event.
    assert_eq!(inconsistent_orders(&pool).await, 0);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM outbox_events e \
             WHERE e.aggregateid = o.id::text AND e.type = 'OrderCreated')"
        )
        .await,
        0
    );
    assert!(count(&pool, "SELECT count(*) FROM orders").await > 0);
}
