//! Group members add deltas to the same `order_totals` rows at once: the writers lock rows in
//! one order (sorted keys), so concurrent batches queue instead of deadlocking.
//!
//! First a control: two transactions that update the same two rows in opposite orders do
//! deadlock (PostgreSQL aborts one with 40P01). Then the same two opposite inputs through
//! `store::add_to_order_totals` (which sorts): no deadlock. Then four writers, 60 batches
//! each, random overlapping customers in random order: every delta lands exactly once.

use std::sync::Arc;

use consumer::store;
use projections::synthetic::SplitMix64;
use projections::{Cents, GroupTotals};
use sqlx::{Connection, PgPool};
use tokio::sync::Barrier;

fn delta(count: i64, cents: i64) -> GroupTotals {
    GroupTotals {
        order_count: count,
        amount: Cents(cents),
    }
}

async fn seed(pool: &PgPool, customers: i64) {
    sqlx::query(
        "INSERT INTO order_totals (customer_id, order_count, total_amount) \
         SELECT g, 1000, 0 FROM generate_series(1, $1::bigint) g",
    )
    .bind(customers)
    .execute(pool)
    .await
    .expect("seed order_totals");
}

fn is_deadlock(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(d) if d.code().as_deref() == Some("40P01"))
}

/// Two transactions, each updating `first` then (after both hold their first row) `second`.
async fn opposite_orders(url: &str, sorted_writer: bool) -> usize {
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for (first, second) in [(1_i64, 2_i64), (2, 1)] {
        let barrier = barrier.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut connection = sqlx::PgConnection::connect(&url).await.expect("connect");
            let mut tx = connection.begin().await.expect("begin");
            let result = async {
                if sorted_writer {
                    // The batch's whole set of customers, in the order the batch met them.
                    barrier.wait().await;
                    store::add_to_order_totals(&mut tx, vec![(first, delta(1, 1)), (second, delta(1, 1))])
                        .await
                } else {
                    sqlx::query("UPDATE order_totals SET order_count = order_count + 1 WHERE customer_id = $1")
                        .bind(first)
                        .execute(&mut *tx)
                        .await?;
                    barrier.wait().await;
                    sqlx::query("UPDATE order_totals SET order_count = order_count + 1 WHERE customer_id = $1")
                        .bind(second)
                        .execute(&mut *tx)
                        .await
                        .map(|_| ())
                }
            }
            .await;
            match result {
                Ok(()) => {
                    tx.commit().await.expect("commit");
                    0
                }
                Err(error) if is_deadlock(&error) => 1,
                Err(error) => panic!("unexpected error: {error}"),
            }
        }));
    }
    let mut deadlocks = 0;
    for task in tasks {
        deadlocks += task.await.expect("task");
    }
    deadlocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_deltas_never_deadlock_and_all_land() {
    let (url, pool) = db::testing::fresh_database("consumer_concurrent_deltas")
        .await
        .expect("database");
    seed(&pool, 40).await;

    assert_eq!(
        opposite_orders(&url, false).await,
        1,
        "the control: opposite lock orders must deadlock"
    );
    assert_eq!(
        opposite_orders(&url, true).await,
        0,
        "sorted writes must not deadlock"
    );

    // Four writers, random overlapping sets of customers in random order.
    const WRITERS: u64 = 4;
    const BATCHES: u64 = 60;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = sqlx::PgConnection::connect(&url).await.expect("connect");
            let mut rng = SplitMix64(writer + 7);
            let mut added = vec![0_i64; 41];
            for _ in 0..BATCHES {
                let mut customers: Vec<i64> = (1..=40).collect();
                for i in (1..customers.len()).rev() {
                    customers.swap(i, rng.below(i as u64 + 1) as usize);
                }
                customers.truncate(25);
                let deltas: Vec<(i64, GroupTotals)> =
                    customers.iter().map(|c| (*c, delta(1, 250))).collect();
                let mut tx = connection.begin().await.expect("begin");
                store::add_to_order_totals(&mut tx, deltas)
                    .await
                    .expect("no deadlock, no serialization failure");
                store::add_to_status_totals(&mut tx, vec![("NEW".to_string(), delta(1, 250))])
                    .await
                    .expect("status totals");
                tx.commit().await.expect("commit");
                for c in customers {
                    added[c as usize] += 1;
                }
            }
            added
        }));
    }
    let mut expected = vec![0_i64; 41];
    for task in tasks {
        for (c, n) in task.await.expect("writer").into_iter().enumerate() {
            expected[c] += n;
        }
    }
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT customer_id, order_count, total_amount::text FROM order_totals ORDER BY customer_id",
    )
    .fetch_all(&pool)
    .await
    .expect("read order_totals");
    // The control added 1 to customers 1 and 2 once (the winner), the sorted pair twice.
    for (customer, count, amount) in rows {
        let control = if customer <= 2 { 1 + 2 } else { 0 };
        let n = expected[customer as usize];
        assert_eq!(count, 1000 + control + n, "customer {customer}");
        let cents = 2 + 250 * n; // the sorted pair added 1 cent twice to 1 and 2
        let want = if customer <= 2 { cents } else { 250 * n };
        assert_eq!(
            amount,
            format!("{:.2}", want as f64 / 100.0),
            "customer {customer}"
        );
    }
    let new: (i64,) =
        sqlx::query_as("SELECT order_count FROM order_status_totals WHERE status = 'NEW'")
            .fetch_one(&pool)
            .await
            .expect("status row");
    assert_eq!(new.0, (WRITERS * BATCHES) as i64);
}
