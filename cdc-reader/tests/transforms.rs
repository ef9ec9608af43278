//! The transforms and `--debezium-config` against the real PostgreSQL and Kafka: `--unwrap`
//! with topic routing writes flattened rows to the routed topic (and still confirms the LSN
//! past the records it drops); a Debezium configuration file runs the reader; a file with keys
//! the reader does not support stops it with the list of all of them.

mod common;

use std::time::{Duration, Instant};

use common::{current_wal_lsn, read_topic, reader_args, slot_name, unique_prefix};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwrap_and_routing_write_flattened_rows_to_one_topic() {
    let name = "transforms_unwrap_route";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let regex = format!(r"{}\.public\.(order.*)", regex_escape(&prefix));
    let replacement = format!("{prefix}.all_orders");
    let (handle, stop) = common::start_reader(reader_args(
        name,
        &prefix,
        &url,
        &[
            "--tables",
            "public.orders,public.order_items",
            "--unwrap",
            "--unwrap-add-fields",
            "op,table,source.ts_ms",
            "--unwrap-add-headers",
            "op,db",
            "--route-topic-regex",
            &regex,
            "--route-topic-replacement",
            &replacement,
        ],
    ));
    common::wait_until_streaming(&pool, &slot_name(name)).await;

    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES (1, 10, 5.00)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO order_items VALUES (1, 1, 'SKU-1', 2, 2.50)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM order_items")
        .execute(&pool)
        .await
        .unwrap();
    let written = current_wal_lsn(&pool).await;

    let records = read_topic(&replacement, 3, Duration::from_secs(60));
    assert_eq!(records.len(), 3, "{records:#?}");
    let (order, item, deleted) = (&records[0], &records[1], &records[2]);

    // The order: its row, the added fields, the routed schema name, the key with the table.
    assert_eq!(order.value["payload"]["id"], json!(1));
    assert_eq!(order.value["payload"]["__op"], json!("c"));
    assert_eq!(order.value["payload"]["__table"], json!("orders"));
    assert!(order.value["payload"]["__source_ts_ms"].is_i64());
    assert_eq!(order.value["payload"].get("before"), None);
    assert_eq!(
        order.value["schema"]["name"],
        json!(format!("{replacement}.Value"))
    );
    assert_eq!(order.value["schema"]["optional"], json!(false));
    assert_eq!(
        order.key["payload"],
        json!({"id": 1, "__dbz__physicalTableIdentifier": format!("{prefix}.public.orders")})
    );
    assert_eq!(
        order.key["schema"]["name"],
        json!(format!("{replacement}.Key"))
    );
    let header = |record: &common::ReadRecord, key: &str| {
        record
            .headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(order, "__op").as_deref(), Some("c"));
    assert_eq!(
        header(order, "__db").as_deref(),
        Some(name_db(&url).as_str())
    );

    assert_eq!(item.value["payload"]["sku"], json!("SKU-1"));
    assert_eq!(
        item.key["payload"]["__dbz__physicalTableIdentifier"],
        json!(format!("{prefix}.public.order_items"))
    );
    // The delete, in the default `tombstone` mode: the row schema and a null payload; the
    // tombstone after it is dropped.
    assert_eq!(deleted.value["payload"], json!(null));
    assert_eq!(deleted.value["schema"]["optional"], json!(true));
    assert_eq!(header(deleted, "__op").as_deref(), Some("d"));

    // The dropped tombstone counted as delivered: the slot moves past the delete.
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::confirmed_flush_lsn(&pool, &slot_name(name)).await < written.0 {
        assert!(
            Instant::now() < deadline,
            "the reader never confirmed past the dropped tombstone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_configuration_file_runs_the_reader() {
    let name = "transforms_debezium_config";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES (7, 70, 1.25)")
        .execute(&pool)
        .await
        .unwrap();
    let until = current_wal_lsn(&pool).await.to_string();
    // The file names the playground database, slot and prefix; the flags given here win.
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/debezium-configs/shop-unwrap.json"
    );
    let status = common::reader_process(
        name,
        &prefix,
        &url,
        &["--debezium-config", config, "--until-lsn", &until],
    )
    .status()
    .expect("cdc-reader runs");
    assert!(status.success(), "cdc-reader exited with {status}");

    // From the file: no schemas, the flattened row, rewrite's __deleted and add.fields.
    let records = read_topic(
        &format!("{prefix}.public.orders"),
        1,
        Duration::from_secs(30),
    );
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, json!({"id": 7}));
    let row = &records[0].value;
    assert_eq!(row["id"], json!(7));
    assert!(row.get("total").is_some(), "{row}");
    assert_eq!(row["__deleted"], json!("false"));
    assert_eq!(row["__op"], json!("r"));
    assert_eq!(row["__table"], json!("orders"));
    assert!(
        row.get("schema").is_none() && row.get("after").is_none(),
        "{row}"
    );
    common::drop_slot(&pool, &slot_name(name)).await;
}

#[test]
fn a_configuration_with_unsupported_keys_stops_the_start_listing_them_all() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/debezium-configs/unsupported.json"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cdc-reader"))
        .args(["--debezium-config", config])
        .env("RUST_LOG", "warn")
        .output()
        .expect("cdc-reader runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in [
        "plugin.name=decoderbufs",
        "schema.include.list",
        "column.mask.hash.SHA-256.with.salt.pepper",
        "transforms.unwrap.route.by.field=status",
        "transforms.filter.type=io.debezium.transforms.Filter",
        "5 key(s)",
    ] {
        assert!(stderr.contains(key), "{key} in:\n{stderr}");
    }
}

/// The database name of a URL (the `source.db` the `__db` header carries).
fn name_db(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
