//! Shared helpers for the producer's integration tests (each test has its own database).

#![allow(dead_code)]

use producer::domain::{NewItem, NewOrder};
use producer::money::Money;
use producer::orders::OutboxMode;
use producer::runner::{Rate, RunConfig, StopAfter};
use producer::workload::{Mix, WorkloadShape};
use sqlx::PgPool;

/// A run of `operations` with `mix`, as fast as possible, without a progress bar.
pub fn run_config(
    database_url: &str,
    operations: u64,
    seed: u64,
    concurrency: u32,
    mix: &str,
) -> RunConfig {
    RunConfig {
        database_url: database_url.to_string(),
        stop_after: StopAfter::Operations(operations),
        rate: Rate::Unlimited,
        shape: WorkloadShape {
            mix: Mix::parse(mix).expect("valid mix"),
            customers: 50,
            items_per_order: None,
        },
        seed,
        concurrency,
        outbox_mode: OutboxMode::default(),
        direct_publish: None,
        progress: false,
        retry: Default::default(),
    }
}

pub fn new_order(customer_id: i64, lines: &[(&str, i32, &str)]) -> NewOrder {
    NewOrder {
        customer_id,
        items: lines
            .iter()
            .map(|(sku, quantity, price)| NewItem {
                sku: sku.to_string(),
                quantity: *quantity,
                unit_price: Money::parse(price).expect("valid price"),
            })
            .collect(),
    }
}

pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

/// Orders whose total is not the sum of their lines, or that have no lines (must be 0).
pub async fn inconsistent_orders(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM orders o \
         WHERE o.total IS DISTINCT FROM \
               (SELECT sum(i.quantity * i.unit_price) FROM order_items i WHERE i.order_id = o.id)",
    )
    .await
}

/// Outbox rows: (type, aggregateid, payload as JSON), oldest first.
pub async fn outbox_rows(pool: &PgPool) -> Vec<(String, String, serde_json::Value)> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT type, aggregateid, payload::text FROM outbox_events ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await
    .expect("outbox rows");
    rows.into_iter()
        .map(|(t, id, payload)| {
            (
                t,
                id,
                serde_json::from_str(&payload).expect("payload is JSON"),
            )
        })
        .collect()
}
