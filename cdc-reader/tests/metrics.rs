//! `cdc-reader --metrics-listen`: the binary serves Prometheus `/metrics`; after inserts,
//! updates and a delete the changes per table and op, records sent and acknowledged per topic,
//! bytes, the LSNs, the slot's retained WAL and the commit -> ack histogram are all there and
//! moving.

mod common;

use std::time::{Duration, Instant};

use common::{slot_name, unique_prefix};
use db::metrics::scrape;
use db::metrics_text::{buckets, sum};

use db::testing::Killed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_move_as_changes_stream() {
    let name = "reader_metrics";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let slot = slot_name(name);
    let addr = format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let reader = Killed(
        common::reader_process(name, &prefix, &url, &["--metrics-listen", &addr])
            .spawn()
            .expect("start cdc-reader"),
    );
    common::wait_until_streaming(&pool, &slot).await;

    for i in 0..20i64 {
        sqlx::query("INSERT INTO orders (id, customer_id, status, total, currency) VALUES ($1, $2, 'NEW', 10.50, 'EUR')")
            .bind(1000 + i)
            .bind(i % 3)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE orders SET status = 'PAID' WHERE id < 1005")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM orders WHERE id = 1019")
        .execute(&pool)
        .await
        .unwrap();

    let orders_topic = format!("{prefix}.public.orders");
    let deadline = Instant::now() + Duration::from_secs(60);
    let samples = loop {
        assert!(
            Instant::now() < deadline,
            "the reader's metrics did not show the 26 changes within 60 s"
        );
        if let Some(samples) = scrape(&addr).await {
            let acked = sum(
                &samples,
                "pgcdc_reader_records_acknowledged_total",
                &[("topic", orders_topic.as_str())],
            );
            let slot_known =
                db::metrics_text::has(&samples, "pgcdc_reader_slot_retained_wal_bytes");
            // 20 creates + 5 updates + 1 delete and its tombstone.
            if acked >= 27.0 && slot_known {
                break samples;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let changes = |op: &str| {
        sum(
            &samples,
            "pgcdc_reader_changes_total",
            &[("table", "public.orders"), ("op", op)],
        )
    };
    assert_eq!((changes("c"), changes("u"), changes("d")), (20.0, 5.0, 1.0));
    assert_eq!(
        sum(
            &samples,
            "pgcdc_reader_records_sent_total",
            &[("topic", orders_topic.as_str())]
        ),
        27.0
    );
    assert!(sum(&samples, "pgcdc_reader_sent_bytes_total", &[]) > 27.0 * 100.0);
    let confirmed = sum(&samples, "pgcdc_reader_confirmed_lsn", &[]);
    let received = sum(&samples, "pgcdc_reader_received_lsn", &[]);
    assert!(
        confirmed > 0.0 && received >= confirmed,
        "{received} {confirmed}"
    );
    assert!(
        sum(
            &samples,
            "pgcdc_reader_slot_retained_wal_bytes",
            &[("slot", slot.as_str())]
        ) >= 0.0
    );
    // One observation per transaction acknowledged (22, plus the snapshot's none).
    let commits = buckets(&samples, "pgcdc_reader_commit_to_ack_seconds");
    assert!(commits.last().map_or(0.0, |b| b.1) >= 22.0, "{commits:?}");
    drop(reader);
    common::drop_slot(&pool, &slot).await;
}
