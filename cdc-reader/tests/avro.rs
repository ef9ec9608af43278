//! `--format avro` against the real schema registry and Kafka: the same changes written as
//! JSON and as Avro decode to the same payloads; a table change registers version 2; an
//! incompatible change stops the reader with the registry's reason; a registry that is not
//! there is one line with the fix.
//!
//! The registry is the stack's (`SCHEMA_REGISTRY_URL`, which `scripts/test` exports).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schema_registry::{AvroDecoder, RegistryClient};
use serde_json::Value;

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| cdc_reader::config::DEFAULT_SCHEMA_REGISTRY_URL.to_string())
}

/// The payload without the fields that say when the reader wrote it (they differ between
/// two readers of the same change), and for snapshot rows (each reader takes its own snapshot)
/// without where and when the snapshot was read.
fn without_processing_time(mut payload: Value) -> Value {
    let snapshot = payload["op"] == "r";
    if let Some(object) = payload.as_object_mut() {
        for field in ["ts_ms", "ts_us", "ts_ns"] {
            object.remove(field);
        }
        if let Some(source) = object
            .get_mut("source")
            .and_then(Value::as_object_mut)
            .filter(|_| snapshot)
        {
            for field in ["ts_ms", "ts_us", "ts_ns", "lsn", "sequence", "txId"] {
                source.remove(field);
            }
        }
    }
    payload
}

async fn decode(decoder: &mut AvroDecoder, bytes: &Option<Vec<u8>>) -> Value {
    match bytes {
        None => Value::Null,
        Some(bytes) => decoder.decode(bytes).await.expect("an Avro record").payload,
    }
}

fn json_payload(bytes: &Option<Vec<u8>>) -> Value {
    match bytes {
        None => Value::Null,
        Some(bytes) => serde_json::from_slice::<Value>(bytes).expect("JSON")["payload"].clone(),
    }
}

async fn wait_confirmed(pool: &sqlx::PgPool, slot: &str, lsn: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::confirmed_flush_lsn(pool, slot).await < lsn {
        assert!(
            Instant::now() < deadline,
            "slot {slot} never confirmed {lsn}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_records_decode_to_the_json_payloads_and_a_new_column_is_version_2() {
    let name = "avro_same";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES (1, 7, 12.30)")
        .execute(&pool)
        .await
        .unwrap();
    let json_prefix = common::unique_prefix("avrojson");
    let avro_prefix = common::unique_prefix("avroavro");
    let flags = [
        "--provide-transaction-metadata",
        "--skipped-operations",
        "none",
    ];
    let (mut json_reader, stop_json) = common::start_reader(common::reader_args(
        "avro_same_json",
        &json_prefix,
        &url,
        &flags,
    ));
    let mut avro_flags = flags.to_vec();
    avro_flags.extend(["--format", "avro"]);
    let (mut avro_reader, stop_avro) = common::start_reader(common::reader_args(
        "avro_same_avro",
        &avro_prefix,
        &url,
        &avro_flags,
    ));
    // Both readers start at once on one database (their setup must not trip over each other).
    common::wait_until_reader_streams(
        &pool,
        &common::slot_name("avro_same_json"),
        &mut json_reader,
    )
    .await;
    common::wait_until_reader_streams(
        &pool,
        &common::slot_name("avro_same_avro"),
        &mut avro_reader,
    )
    .await;

    // Inserts, an update, a delete (and its tombstone), items, a message, a truncate; then a
    // new column and a record with it.
    for sql in [
        "INSERT INTO orders (id, customer_id, total, status) VALUES (2, 8, 99.99, 'NEW')",
        "UPDATE orders SET total = 5.00, status = 'PAID' WHERE id = 2",
        "INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price) VALUES (2, 1, 'sku-1', 3, 1.50)",
        "DELETE FROM orders WHERE id = 1",
        "SELECT pg_logical_emit_message(true, 'audit', 'checked')",
        "TRUNCATE order_items",
        "ALTER TABLE orders ADD COLUMN note text",
        "INSERT INTO orders (id, customer_id, total, note) VALUES (3, 9, 1.00, 'with a note')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let lsn = common::current_wal_lsn(&pool).await.0;
    wait_confirmed(&pool, &common::slot_name("avro_same_json"), lsn).await;
    wait_confirmed(&pool, &common::slot_name("avro_same_avro"), lsn).await;
    let _ = stop_json.send(());
    let _ = stop_avro.send(());
    json_reader.await.unwrap().unwrap();
    avro_reader.await.unwrap().unwrap();

    let mut decoder = AvroDecoder::new(RegistryClient::new(&registry_url()));
    let mut compared = BTreeMap::new();
    for suffix in [
        "public.orders",
        "public.order_items",
        "transaction",
        "message",
    ] {
        let json_records = common::raw_records(&format!("{json_prefix}.{suffix}"));
        let avro_records = common::raw_records(&format!("{avro_prefix}.{suffix}"));
        assert_eq!(
            json_records.len(),
            avro_records.len(),
            "{suffix}: record counts"
        );
        assert!(!json_records.is_empty(), "{suffix}: no records");
        for ((json_key, json_value), (avro_key, avro_value)) in
            json_records.iter().zip(&avro_records)
        {
            if let Some(bytes) = avro_value {
                assert_eq!(bytes[0], 0, "{suffix}: the magic byte");
            }
            assert_eq!(
                json_value.is_none(),
                avro_value.is_none(),
                "{suffix}: tombstones stay null"
            );
            assert_eq!(
                decode(&mut decoder, avro_key).await,
                json_payload(json_key),
                "{suffix}: key"
            );
            let expected = without_processing_time(json_payload(json_value));
            let mut actual = without_processing_time(decode(&mut decoder, avro_value).await);
            // The source block names its topic prefix (Debezium's `name`).
            if let Some(source) = actual.get_mut("source").and_then(Value::as_object_mut) {
                source.insert("name".into(), Value::String(json_prefix.clone()));
            }
            assert_eq!(actual, expected, "{suffix}: value");
        }
        compared.insert(suffix, json_records.len());
    }
    eprintln!("records compared per topic: {compared:?}");

    // The new column: a second version of the value subject, and the last record carries it.
    let client = RegistryClient::new(&registry_url());
    let subject = format!("{avro_prefix}.public.orders-value");
    assert_eq!(
        client.versions(&subject).await.unwrap(),
        vec![1, 2],
        "{subject}"
    );
    let orders = common::raw_records(&format!("{avro_prefix}.public.orders"));
    let first_id = schema_registry::wire::decode(orders[0].1.as_ref().unwrap())
        .unwrap()
        .0;
    let last = orders.last().unwrap().1.as_ref().unwrap();
    let last_id = schema_registry::wire::decode(last).unwrap().0;
    assert_ne!(
        first_id, last_id,
        "the record after ALTER TABLE carries the new schema id"
    );
    let decoded = decoder.decode(last).await.unwrap();
    assert_eq!(decoded.payload["after"]["note"], "with a note");

    common::drop_slot(&pool, &common::slot_name("avro_same_json")).await;
    common::drop_slot(&pool, &common::slot_name("avro_same_avro")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_change_stops_the_reader_with_the_registry_reason_and_subject() {
    let name = "avro_refused";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let prefix = common::unique_prefix("avrorefused");
    let (reader, _stop) = common::start_reader(common::reader_args(
        name,
        &prefix,
        &url,
        &["--format", "avro"],
    ));
    common::wait_until_streaming(&pool, &common::slot_name(name)).await;
    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES (1, 7, 1.00)")
        .execute(&pool)
        .await
        .unwrap();
    let delivered = common::current_wal_lsn(&pool).await.0;
    wait_confirmed(&pool, &common::slot_name(name), delivered).await;
    // A required column without a default: BACKWARD refuses it (the new schema cannot read
    // the old records).
    sqlx::query("ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE orders ALTER COLUMN region DROP DEFAULT")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, total, region) VALUES (2, 7, 2.00, 'us')")
        .execute(&pool)
        .await
        .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader stops")
        .unwrap()
        .unwrap_err()
        .to_string();
    let subject = format!("{prefix}.public.orders-value");
    assert!(
        error.contains(&subject) && error.contains("incompatible"),
        "{error}"
    );
    // Nothing after the last delivered record was confirmed.
    let confirmed = common::confirmed_flush_lsn(&pool, &common::slot_name(name)).await;
    let after_change = common::current_wal_lsn(&pool).await.0;
    assert!(
        confirmed < after_change,
        "confirmed {confirmed} passed the refused record"
    );
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test]
async fn a_registry_that_is_not_there_is_one_line_with_the_fix() {
    let name = "avro_unreachable";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let args = common::reader_args(
        name,
        name,
        &url,
        &[
            "--format",
            "avro",
            "--schema-registry-url",
            "http://127.0.0.1:1/apis/ccompat/v7",
        ],
    );
    let error = cdc_reader::reader::run(args, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("scripts/stack up"), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");
    common::drop_slot(&pool, &common::slot_name(name)).await;
}
