//! The reader's other events against the real PostgreSQL and Kafka: the initial snapshot, the
//! Outbox Event Router, heartbeats, and a slot that does not pin WAL written to other tables.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{
    confirmed_flush_lsn, current_wal_lsn, read_topic, reader_args, slot_name, unique_prefix,
};
use serde_json::json;

async fn insert_order(pool: &sqlx::PgPool, id: i64, customer: i64, total: &str) {
    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, $3::numeric)")
        .bind(id)
        .bind(customer)
        .bind(total)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_slot_snapshots_existing_rows_then_streams_without_gap_or_double() {
    let name = "reader_snapshot";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    for id in 1..=3 {
        insert_order(&pool, id, 10 + id, "5.00").await;
    }
    sqlx::query("INSERT INTO order_items VALUES (1, 1, 'SKU-1', 1, 5.00)")
        .execute(&pool)
        .await
        .unwrap();

    let (handle, stop) = common::start_reader(reader_args(name, &prefix, &url, &[]));
    common::wait_until_streaming(&pool, &slot_name(name)).await;
    insert_order(&pool, 4, 14, "7.00").await;

    let orders = read_topic(
        &format!("{prefix}.public.orders"),
        4,
        Duration::from_secs(60),
    );
    let summary: Vec<(i64, &str, &str)> = orders
        .iter()
        .map(|r| {
            let p = r.payload();
            (
                p["after"]["id"].as_i64().unwrap(),
                p["op"].as_str().unwrap(),
                p["source"]["snapshot"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "r", "first"),
            (2, "r", "true"),
            (3, "r", "last_in_data_collection"),
            (4, "c", "false")
        ],
        "every existing row once as a read, the new one once as a create"
    );
    assert_eq!(orders[0].payload()["before"], json!(null));
    let items = read_topic(
        &format!("{prefix}.public.order_items"),
        1,
        Duration::from_secs(10),
    );
    // One row, neither in the first nor the last table: Debezium marks it last_in_data_collection.
    assert_eq!(
        items[0].payload()["source"]["snapshot"],
        json!("last_in_data_collection")
    );
    let _ = stop.send(());
    handle.await.unwrap().unwrap();

    // A restart resumes from the slot: no second snapshot.
    let (handle, stop) = common::start_reader(reader_args(name, &prefix, &url, &[]));
    common::wait_until_streaming(&pool, &slot_name(name)).await;
    insert_order(&pool, 5, 15, "9.00").await;
    let orders = read_topic(
        &format!("{prefix}.public.orders"),
        5,
        Duration::from_secs(60),
    );
    let ops: Vec<&str> = orders
        .iter()
        .map(|r| r.payload()["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["r", "r", "r", "c", "c"]);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_become_events_on_the_aggregate_topic_and_their_deletes_are_ignored() {
    let name = "reader_outbox";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let replacement = format!("{prefix}.outbox.${{routedByValue}}");
    let (handle, stop) = common::start_reader(reader_args(
        name,
        &prefix,
        &url,
        &["--outbox-topic-replacement", &replacement],
    ));
    common::wait_until_streaming(&pool, &slot_name(name)).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO outbox_events (id, aggregatetype, aggregateid, type, payload) VALUES \
         ('7c9e6679-7425-40de-944b-e07fc1f90ae7', 'order', '42', 'OrderCreated', '{\"order_id\": 42, \"total\": \"12.30\"}')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    // Insert-then-delete in one transaction: CDC still sees the insert; the delete is ignored.
    sqlx::query("DELETE FROM outbox_events")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let events = read_topic(
        &format!("{prefix}.outbox.order"),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, json!("42"));
    assert_eq!(events[0].value, json!({"order_id": 42, "total": "12.30"}));
    let headers: HashSet<(String, String)> = events[0].headers.iter().cloned().collect();
    assert!(headers.contains(&("id".into(), "7c9e6679-7425-40de-944b-e07fc1f90ae7".into())));
    assert!(headers.contains(&("eventType".into(), "OrderCreated".into())));
    assert!(
        read_topic(
            &format!("{prefix}.public.outbox_events"),
            1,
            Duration::from_secs(2)
        )
        .is_empty(),
        "routed rows get no change envelope"
    );
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_flow_and_wal_written_to_other_tables_is_not_pinned() {
    let name = "reader_heartbeat";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    sqlx::query("CREATE TABLE noise (id bigserial PRIMARY KEY, filler text)")
        .execute(&pool)
        .await
        .unwrap();
    let (handle, stop) = common::start_reader(reader_args(
        name,
        &prefix,
        &url,
        &["--heartbeat-interval", "200ms"],
    ));
    let slot = slot_name(name);
    common::wait_until_streaming(&pool, &slot).await;

    let beats = read_topic(
        &format!("__debezium-heartbeat.{prefix}"),
        2,
        Duration::from_secs(20),
    );
    assert!(beats.len() >= 2, "heartbeats arrive");
    assert_eq!(beats[0].key["payload"], json!({"serverName": prefix}));
    assert!(beats[0].value["payload"]["ts_ms"].is_i64());

    // 100 MB into a table the publication does not cover.
    for _ in 0..10 {
        sqlx::query("INSERT INTO noise (filler) SELECT repeat(md5(g::text), 32) FROM generate_series(1, 10000) g")
            .execute(&pool)
            .await
            .unwrap();
    }
    let written = current_wal_lsn(&pool).await.0;
    // The slot must move past all of it although no captured change came: the reader confirms
    // the server's position from keepalives. (Other databases of the cluster may write WAL at the
    // same time, so the check is "confirmed passed what we wrote", not a byte count.)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let confirmed = confirmed_flush_lsn(&pool, &slot).await;
        let retained = current_wal_lsn(&pool).await.0.saturating_sub(confirmed);
        if confirmed >= written {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot still retains {retained} bytes of WAL (confirmed {confirmed}, written {written})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_metadata_brackets_each_transaction_and_numbers_its_events() {
    let name = "reader_txmeta";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (handle, stop) = common::start_reader(reader_args(
        name,
        &prefix,
        &url,
        &["--provide-transaction-metadata"],
    ));
    common::wait_until_streaming(&pool, &slot_name(name)).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES (1, 7, 3.00)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO order_items VALUES (1, 1, 'SKU-1', 1, 3.00)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let boundaries = read_topic(&format!("{prefix}.transaction"), 2, Duration::from_secs(60));
    assert_eq!(boundaries.len(), 2);
    let (begin, end) = (
        &boundaries[0].value["payload"],
        &boundaries[1].value["payload"],
    );
    assert_eq!(begin["status"], json!("BEGIN"));
    assert_eq!(begin["event_count"], json!(null));
    assert_eq!(end["status"], json!("END"));
    assert_eq!(end["event_count"], json!(2));
    assert_eq!(
        end["data_collections"],
        json!([{"data_collection": "public.orders", "event_count": 1}, {"data_collection": "public.order_items", "event_count": 1}])
    );
    let xid = begin["id"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(boundaries[0].key["payload"]["id"], begin["id"]);

    let order = &read_topic(
        &format!("{prefix}.public.orders"),
        1,
        Duration::from_secs(30),
    )[0];
    let item = &read_topic(
        &format!("{prefix}.public.order_items"),
        1,
        Duration::from_secs(30),
    )[0];
    let block = &order.payload()["transaction"];
    assert_eq!(block["total_order"], json!(1));
    assert_eq!(block["data_collection_order"], json!(1));
    assert!(block["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{xid}:")));
    assert_eq!(item.payload()["transaction"]["total_order"], json!(2));
    assert_eq!(
        item.payload()["transaction"]["data_collection_order"],
        json!(1)
    );
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_or_dropped_while_streaming_shows_in_the_next_records() {
    let name = "reader_schema_change";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (handle, stop) = common::start_reader(reader_args(name, &prefix, &url, &[]));
    common::wait_until_streaming(&pool, &slot_name(name)).await;

    insert_order(&pool, 1, 7, "1.00").await;
    sqlx::query("ALTER TABLE orders ADD COLUMN note text DEFAULT 'none'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, total, note) VALUES (2, 7, 2.00, 'gift')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE orders DROP COLUMN note")
        .execute(&pool)
        .await
        .unwrap();
    insert_order(&pool, 3, 7, "3.00").await;

    let orders = read_topic(
        &format!("{prefix}.public.orders"),
        3,
        Duration::from_secs(60),
    );
    let field_names = |record: &common::ReadRecord| -> Vec<String> {
        record.value["schema"]["fields"][1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!field_names(&orders[0]).contains(&"note".to_string()));
    assert!(field_names(&orders[1]).contains(&"note".to_string()));
    assert_eq!(orders[1].payload()["after"]["note"], json!("gift"));
    assert!(!field_names(&orders[2]).contains(&"note".to_string()));
    assert_eq!(orders[2].payload()["after"]["id"], json!(3));
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}
