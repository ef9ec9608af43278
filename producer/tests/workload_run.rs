//! CLI runs against the real PostgreSQL: the same seed gives the same operations (and the same
//! outbox events), and a mixed concurrent run leaves every order consistent.

mod support;

use std::collections::BTreeMap;

use producer::workload::OperationKind;
use serde_json::Value;
use sqlx::PgPool;
use support::{count, inconsistent_orders, run_config};

const MIX: &str = "create=40,update=30,cancel=15,delete=15";

/// Outbox events by id, with the timestamps (which differ between runs) taken out.
async fn events_by_id(pool: &PgPool) -> BTreeMap<String, (String, String, Value)> {
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id::text, type, aggregateid, payload::text FROM outbox_events")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, kind, aggregate, payload)| {
            let mut payload: Value = serde_json::from_str(&payload).unwrap();
            if let Some(object) = payload.as_object_mut() {
                object.remove("created_at");
                object.remove("updated_at");
            }
            (id, (kind, aggregate, payload))
        })
        .collect()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_operations_and_events() {
    let (url_a, pool_a) = db::testing::fresh_database("producer_seed_a")
        .await
        .unwrap();
    let (url_b, pool_b) = db::testing::fresh_database("producer_seed_b")
        .await
        .unwrap();
    let (url_c, pool_c) = db::testing::fresh_database("producer_seed_c")
        .await
        .unwrap();
    let a = producer::run(run_config(&url_a, 300, 42, 1, MIX))
        .await
        .unwrap();
    let b = producer::run(run_config(&url_b, 300, 42, 1, MIX))
        .await
        .unwrap();
    let c = producer::run(run_config(&url_c, 300, 43, 1, MIX))
        .await
        .unwrap();
    assert_eq!(a.counts, b.counts);

    // With one worker on a fresh database even the order ids match: the events are identical.
    let (events_a, events_b) = (events_by_id(&pool_a).await, events_by_id(&pool_b).await);
    assert_eq!(events_a.len(), 300);
    assert_eq!(events_a, events_b);
    assert_ne!(
        events_a,
        events_by_id(&pool_c).await,
        "another seed, other operations"
    );
    assert_ne!(a.counts, c.counts);
}

#[tokio::test]
async fn concurrent_workers_are_each_deterministic() {
    let (url_a, pool_a) = db::testing::fresh_database("producer_seed_concurrent_a")
        .await
        .unwrap();
    let (url_b, pool_b) = db::testing::fresh_database("producer_seed_concurrent_b")
        .await
        .unwrap();
    let a = producer::run(run_config(&url_a, 400, 7, 4, MIX))
        .await
        .unwrap();
    let b = producer::run(run_config(&url_b, 400, 7, 4, MIX))
        .await
        .unwrap();
    assert_eq!(a.counts, b.counts);
    // Order ids depend on how the workers interleave, but each event (id, type) is the same.
    let kinds = |events: BTreeMap<String, (String, String, Value)>| -> BTreeMap<String, String> {
        events
            .into_iter()
            .map(|(id, (kind, _, _))| (id, kind))
            .collect()
    };
    assert_eq!(
        kinds(events_by_id(&pool_a).await),
        kinds(events_by_id(&pool_b).await)
    );
}

#[tokio::test]
async fn a_mixed_concurrent_run_leaves_every_order_consistent() {
    let (url, pool) = db::testing::fresh_database("producer_mixed_run")
        .await
        .unwrap();
    let summary = producer::run(run_config(&url, 1_000, 5, 4, MIX))
        .await
        .unwrap();
    assert_eq!(summary.operations(), 1_000);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM outbox_events").await,
        1_000,
        "one event per operation"
    );
    let creates = summary.count(OperationKind::Create) as i64;
    let deletes = summary.count(OperationKind::Delete) as i64;
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM outbox_events WHERE type = 'OrderCreated'"
        )
        .await,
        creates
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM outbox_events WHERE type = 'OrderDeleted'"
        )
        .await,
        deletes
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM orders").await,
        creates - deletes
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM outbox_events WHERE type = 'OrderCancelled'"
        )
        .await,
        summary.count(OperationKind::Cancel) as i64
    );
    let cancelled = count(
        &pool,
        "SELECT count(*) FROM orders WHERE status = 'CANCELLED'",
    )
    .await;
    assert!(cancelled > 0, "the mix cancels some orders");
    assert_eq!(inconsistent_orders(&pool).await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM order_items i WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i.order_id)")
            .await,
        0
    );
    // The latest event of each live order describes it as it is (status and total).
    let mismatches = count(
        &pool,
        "SELECT count(*) FROM orders o JOIN LATERAL ( \
             SELECT payload FROM outbox_events e WHERE e.aggregateid = o.id::text \
             ORDER BY e.created_at DESC LIMIT 1) last ON true \
         WHERE last.payload->>'status' <> o.status OR last.payload->>'total' <> o.total::text",
    )
    .await;
    assert_eq!(mismatches, 0);
}

#[tokio::test]
async fn running_twice_on_the_same_database_works() {
    let (url, pool) = db::testing::fresh_database("producer_run_twice")
        .await
        .unwrap();
    producer::run(run_config(&url, 100, 42, 2, MIX))
        .await
        .unwrap();
    producer::run(run_config(&url, 100, 42, 2, MIX))
        .await
        .unwrap();
    assert_eq!(
        count(&pool, "SELECT count(*) FROM outbox_events").await,
        200
    );
    assert_eq!(inconsistent_orders(&pool).await, 0);
}
