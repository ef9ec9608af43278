//! The initial snapshot on four connections (`--snapshot-max-threads 4`): every row of the
//! snapshot exactly once (orders is split into key ranges, order_items read whole), the markers
//! where one connection puts them: `first` on the very first record, `last_in_data_collection`
//! / `first_in_data_collection` at the table boundary, `last` on the very last.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::unique_prefix;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_connections_read_every_row_once_with_the_markers_of_one() {
    db::init_tracing();
    let name = "parallel_snapshot";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let orders: i64 = 20_000;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders (id, customer_id, total) SELECT g, g % 10, 1.00 FROM generate_series(1, {orders}) g;
         DELETE FROM orders WHERE id % 7 = 0;
         INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
              SELECT g, 1, 'sku', 1, 1.00 FROM generate_series(1, 3000) g WHERE g % 7 <> 0;
         ANALYZE orders; ANALYZE order_items;"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let expected: HashSet<i64> = sqlx::query_scalar("SELECT id FROM orders")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let prefix = unique_prefix(name);
    let args = common::reader_args(
        name,
        &prefix,
        &url,
        &[
            "--tables",
            "public.orders,public.order_items",
            "--snapshot-mode",
            "initial-only",
            "--snapshot-max-threads",
            "4",
        ],
    );
    let summary = cdc_reader::reader::run(args, std::future::pending())
        .await
        .expect("the snapshot runs");
    assert_eq!(summary.stats.records_sent as usize, expected.len() + 2572);

    let records = common::read_topic(
        &format!("{prefix}.public.orders"),
        expected.len(),
        Duration::from_secs(60),
    );
    let items = common::read_topic(
        &format!("{prefix}.public.order_items"),
        2572,
        Duration::from_secs(60),
    );
    let mut seen = HashSet::new();
    for record in &records {
        let id = record.key["payload"]["id"].as_i64().unwrap();
        assert!(seen.insert(id), "order {id} came twice");
    }
    assert_eq!(seen, expected, "every order of the snapshot, none other");
    assert_eq!(items.len(), 2572);
    let marker = |r: &common::ReadRecord| {
        r.payload()["source"]["snapshot"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let markers: Vec<String> = records.iter().map(marker).collect();
    assert_eq!(markers.first().map(String::as_str), Some("first"));
    assert_eq!(
        markers.last().map(String::as_str),
        Some("last_in_data_collection")
    );
    assert!(markers[1..markers.len() - 1].iter().all(|m| m == "true"));
    let item_markers: Vec<String> = items.iter().map(marker).collect();
    assert_eq!(
        item_markers.first().map(String::as_str),
        Some("first_in_data_collection")
    );
    assert_eq!(item_markers.last().map(String::as_str), Some("last"));
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

/// A text key is split at boundaries sampled from the table (under the column's collation):
/// every row still comes exactly once, in one part or another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_text_key_splits_at_sampled_boundaries_and_every_row_comes_once() {
    let name = "parallel_text_key";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let rows = 12_000;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE codes (code text PRIMARY KEY, n int NOT NULL);
         INSERT INTO codes SELECT md5(g::text) || CASE WHEN g % 3 = 0 THEN ' It''s' ELSE '' END, g
           FROM generate_series(1, {rows}) g;
         ANALYZE codes;"
    )))
    .execute(&pool)
    .await
    .unwrap();

    // The plan: three boundaries for four connections, in key order.
    let catalog = cdc_reader::catalog::Catalog::connect(&url).await.unwrap();
    let table = cdc_reader::snapshot::describe(&catalog, "public.codes")
        .await
        .unwrap();
    let boundaries =
        cdc_reader::snapshot_parallel::sample_boundaries(catalog.client(), &table, "code", 4)
            .await
            .unwrap();
    let mut sorted: Vec<String> =
        sqlx::query_scalar("SELECT b FROM unnest($1::text[]) b ORDER BY b COLLATE \"default\"")
            .bind(&boundaries)
            .fetch_all(&pool)
            .await
            .unwrap();
    sorted.dedup();
    assert_eq!(
        sorted, boundaries,
        "in key order, under the column's collation"
    );
    assert_eq!(boundaries.len(), 3, "{boundaries:?}");

    let prefix = unique_prefix(name);
    let args = common::reader_args(
        name,
        &prefix,
        &url,
        &[
            "--tables",
            "public.codes",
            "--snapshot-mode",
            "initial-only",
            "--snapshot-max-threads",
            "4",
        ],
    );
    let summary = cdc_reader::reader::run(args, std::future::pending())
        .await
        .expect("the snapshot runs");
    assert_eq!(summary.stats.records_sent, rows);
    let records = common::read_topic(
        &format!("{prefix}.public.codes"),
        rows as usize,
        Duration::from_secs(60),
    );
    let mut seen = HashSet::new();
    for record in &records {
        let code = record.key["payload"]["code"].as_str().unwrap().to_string();
        assert!(seen.insert(code.clone()), "{code} came twice");
    }
    assert_eq!(seen.len(), rows as usize, "every code once");
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

/// Readers that start at the same moment on one database each create the bookkeeping tables
/// (`CREATE TABLE IF NOT EXISTS` is not atomic: the loser used to fail on a catalog index).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_starting_at_once_create_the_bookkeeping_tables_without_tripping() {
    let (url, pool) = db::testing::fresh_database("bookkeeping_race")
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        clients.push(std::sync::Arc::new(client));
    }
    for round in 0..5 {
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS cdc_reader_snapshots, cdc_reader_incremental_snapshots",
        )
        .execute(&pool)
        .await
        .unwrap();
        let tasks: Vec<_> = clients
            .iter()
            .map(|client| {
                let client = client.clone();
                tokio::spawn(async move {
                    cdc_reader::snapshot::ensure_state_table(&client).await?;
                    cdc_reader::incremental::sql::ensure_progress_table(&client).await
                })
            })
            .collect();
        for task in tasks {
            if let Err(error) = task.await.unwrap() {
                panic!("round {round}: {error}");
            }
        }
    }
}
