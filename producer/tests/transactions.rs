//! Every write leaves the order, its lines and exactly one outbox row consistent; a failure
//! inside a transaction leaves nothing behind. Against the real PostgreSQL.

mod support;

use producer::domain::OrderStatus;
use producer::orders::{self, OrderError, OutboxMode};
use serde_json::Value;
use sqlx::PgPool;
use support::{count, inconsistent_orders, new_order, outbox_rows};
use uuid::Uuid;

const MODE: OutboxMode = OutboxMode {
    delete_after_insert: false,
};

async fn outbox_count(pool: &PgPool) -> i64 {
    count(pool, "SELECT count(*) FROM outbox_events").await
}

#[tokio::test]
async fn create_writes_the_order_its_lines_and_one_outbox_row() {
    let (_url, pool) = db::testing::fresh_database("producer_create")
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let event_id = Uuid::new_v4();
    let order = new_order(7, &[("SKU-1", 3, "0.10"), ("SKU-2", 1, "12.00")]);
    let committed = orders::create_order(&mut conn, event_id, &order, MODE)
        .await
        .unwrap();

    assert_eq!(committed.order.total.to_string(), "12.30");
    let (total, status): (String, String) =
        sqlx::query_as("SELECT total::text, status FROM orders WHERE id = $1")
            .bind(committed.order.order_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((total.as_str(), status.as_str()), ("12.30", "NEW"));
    assert_eq!(count(&pool, "SELECT count(*) FROM order_items").await, 2);
    assert_eq!(inconsistent_orders(&pool).await, 0);

    let (id, aggregatetype, aggregateid, kind, payload): (String, String, String, String, String) =
        sqlx::query_as(
            "SELECT id::text, aggregatetype, aggregateid, type, payload::text FROM outbox_events",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(id, event_id.to_string());
    assert_eq!(aggregatetype, "order");
    assert_eq!(aggregateid, committed.order.order_id.to_string());
    assert_eq!(kind, "OrderCreated");
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload, serde_json::to_value(&committed.order).unwrap());
    assert_eq!(payload["total"], "12.30");
    assert_eq!(payload["items"][0]["unit_price"], "0.10");

    // What the database returns for the order is what the event says.
    let fetched = orders::fetch_order(&mut conn, committed.order.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched, committed.order);
}

#[tokio::test]
async fn each_operation_writes_exactly_one_outbox_row() {
    let (_url, pool) = db::testing::fresh_database("producer_lifecycle")
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let order = new_order(3, &[("A", 1, "2.50"), ("B", 2, "1.00")]);
    let id = orders::create_order(&mut conn, Uuid::new_v4(), &order, MODE)
        .await
        .unwrap()
        .order
        .order_id;

    let updated = orders::change_item_quantity(&mut conn, Uuid::new_v4(), id, 2, 5, MODE)
        .await
        .unwrap();
    assert_eq!(updated.order.total.to_string(), "7.50");
    let paid = orders::change_status(&mut conn, Uuid::new_v4(), id, OrderStatus::Paid, MODE)
        .await
        .unwrap();
    assert_eq!(paid.order.status, OrderStatus::Paid);
    let shipped = orders::change_status(&mut conn, Uuid::new_v4(), id, OrderStatus::Shipped, MODE)
        .await
        .unwrap();
    assert_eq!(shipped.order.total.to_string(), "7.50");
    assert_eq!(inconsistent_orders(&pool).await, 0);

    let other = orders::create_order(&mut conn, Uuid::new_v4(), &order, MODE)
        .await
        .unwrap()
        .order
        .order_id;
    orders::cancel_order(&mut conn, Uuid::new_v4(), other, MODE)
        .await
        .unwrap();
    orders::delete_order(&mut conn, Uuid::new_v4(), id, MODE)
        .await
        .unwrap();

    let rows = outbox_rows(&pool).await;
    let kinds: Vec<&str> = rows.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "OrderCreated",
            "OrderUpdated",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "OrderCreated",
            "OrderCancelled",
            "OrderDeleted"
        ]
    );
    assert_eq!(rows[2].2["previous_status"], "NEW");
    assert_eq!(rows[2].2["status"], "PAID");
    assert_eq!(rows[5].2["status"], "CANCELLED");
    assert_eq!(
        rows[6].2["status"], "SHIPPED",
        "OrderDeleted carries the order as it was"
    );
    assert_eq!(rows[6].2["total"], "7.50");
    assert_eq!(count(&pool, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM order_items").await,
        2,
        "the deleted order's lines are gone"
    );
    assert_eq!(inconsistent_orders(&pool).await, 0);
}

#[tokio::test]
async fn a_failure_inside_the_transaction_leaves_nothing_behind() {
    let (_url, pool) = db::testing::fresh_database("producer_rollback")
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let event_id = Uuid::new_v4();
    let order = new_order(1, &[("A", 1, "1.00")]);
    let first = orders::create_order(&mut conn, event_id, &order, MODE)
        .await
        .unwrap()
        .order;

    // Same event id again: the order and its lines are inserted, then the outbox INSERT hits the
    // primary key. The whole transaction rolls back: no order without its event.
    let bigger = new_order(2, &[("B", 2, "3.00"), ("C", 1, "4.00")]);
    let error = orders::create_order(&mut conn, event_id, &bigger, MODE)
        .await
        .unwrap_err();
    assert!(matches!(error, OrderError::Database(_)), "{error}");
    assert_eq!(count(&pool, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM order_items").await, 1);
    assert_eq!(outbox_count(&pool).await, 1);

    // The same for a status change: the UPDATE ran, the outbox INSERT failed, the status is unchanged.
    let error = orders::change_status(&mut conn, event_id, first.order_id, OrderStatus::Paid, MODE)
        .await
        .unwrap_err();
    assert!(matches!(error, OrderError::Database(_)), "{error}");
    let status: String = sqlx::query_scalar("SELECT status FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "NEW");

    // And for a delete: the lines and the order stay.
    orders::delete_order(&mut conn, event_id, first.order_id, MODE)
        .await
        .unwrap_err();
    assert_eq!(count(&pool, "SELECT count(*) FROM order_items").await, 1);
    assert_eq!(outbox_count(&pool).await, 1);

    // The connection is usable afterwards (the failed transaction was rolled back).
    orders::change_status(
        &mut conn,
        Uuid::new_v4(),
        first.order_id,
        OrderStatus::Paid,
        MODE,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn rejected_changes_write_nothing() {
    let (_url, pool) = db::testing::fresh_database("producer_rejected")
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let id = orders::create_order(
        &mut conn,
        Uuid::new_v4(),
        &new_order(1, &[("A", 1, "1.00")]),
        MODE,
    )
    .await
    .unwrap()
    .order
    .order_id;
    let cases = [
        orders::change_status(&mut conn, Uuid::new_v4(), id, OrderStatus::Shipped, MODE)
            .await
            .unwrap_err(),
        orders::change_status(&mut conn, Uuid::new_v4(), id, OrderStatus::New, MODE)
            .await
            .unwrap_err(),
        orders::change_status(&mut conn, Uuid::new_v4(), id + 100, OrderStatus::Paid, MODE)
            .await
            .unwrap_err(),
        orders::change_item_quantity(&mut conn, Uuid::new_v4(), id, 9, 1, MODE)
            .await
            .unwrap_err(),
        orders::change_item_quantity(&mut conn, Uuid::new_v4(), id, 1, 0, MODE)
            .await
            .unwrap_err(),
        orders::create_order(
            &mut conn,
            Uuid::new_v4(),
            &new_order(1, &[("A", -1, "1.00")]),
            MODE,
        )
        .await
        .unwrap_err(),
    ];
    assert!(matches!(cases[0], OrderError::IllegalTransition { .. }));
    assert!(matches!(cases[1], OrderError::IllegalTransition { .. }));
    assert!(matches!(cases[2], OrderError::NotFound(_)));
    assert!(matches!(cases[3], OrderError::NoSuchLine { .. }));
    assert!(matches!(cases[4], OrderError::Invalid(_)));
    assert!(matches!(cases[5], OrderError::Invalid(_)));

    orders::change_status(&mut conn, Uuid::new_v4(), id, OrderStatus::Paid, MODE)
        .await
        .unwrap();
    let locked = orders::change_item_quantity(&mut conn, Uuid::new_v4(), id, 1, 2, MODE)
        .await
        .unwrap_err();
    assert!(matches!(locked, OrderError::ItemsLocked { .. }), "{locked}");
    assert_eq!(outbox_count(&pool).await, 2);
    assert_eq!(inconsistent_orders(&pool).await, 0);
}

#[tokio::test]
async fn outbox_delete_after_insert_keeps_the_table_empty_but_the_wal_has_the_insert() {
    let (_url, pool) = db::testing::fresh_database("producer_outbox_delete")
        .await
        .unwrap();
    let slot = "producer_outbox_delete_test";
    sqlx::query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')")
        .bind(slot)
        .execute(&pool)
        .await
        .unwrap();
    let mode = OutboxMode {
        delete_after_insert: true,
    };
    let mut conn = pool.acquire().await.unwrap();
    let committed = orders::create_order(
        &mut conn,
        Uuid::new_v4(),
        &new_order(5, &[("A", 2, "1.25")]),
        mode,
    )
    .await
    .unwrap();
    assert_eq!(outbox_count(&pool).await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM orders").await, 1);

    // The slot decodes only WAL that is flushed; with synchronous_commit=off (the playground's
    // setting) the WAL writer flushes within ~200 ms, so poll for the commit.
    let mut changes: Vec<String> = Vec::new();
    for _ in 0..50 {
        let more: Vec<String> =
            sqlx::query_scalar("SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)")
                .bind(slot)
                .fetch_all(&pool)
                .await
                .unwrap();
        changes.extend(more);
        if changes.iter().any(|c| c.starts_with("COMMIT")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(slot)
        .execute(&pool)
        .await
        .unwrap();
    let outbox: Vec<&String> = changes
        .iter()
        .filter(|c| c.contains("public.outbox_events"))
        .collect();
    assert_eq!(outbox.len(), 2, "{changes:#?}");
    assert!(outbox[0].contains("INSERT") && outbox[0].contains(&committed.event.id.to_string()));
    assert!(outbox[1].contains("DELETE"));
    assert_eq!(changes.first().map(|c| c.starts_with("BEGIN")), Some(true));
    assert_eq!(
        changes.iter().filter(|c| c.starts_with("COMMIT")).count(),
        1,
        "one transaction"
    );
}
