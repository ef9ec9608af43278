//! The consumer reading Avro records (cdc-reader `--format avro`) through the real schema
//! registry and Kafka: `order_totals` equals the GROUP BY, as from JSON; bytes that are not
//! Avro, an unknown schema id and a datum that does not match its schema are dead-lettered
//! with the error, and the consumer goes on. The producer's own Avro events (`--direct-publish
//! --format avro`, the `OrderEvent` schema) build the same `order_totals` through `--from outbox`.

mod common;

use common::*;
use consumer::{consume, dlq, Source};
use projections::synthetic::{debezium_records, random_history, with_redeliveries, Record};
use schema_registry::{AvroEncoder, RegistryClient};

fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| consumer::config::DEFAULT_SCHEMA_REGISTRY_URL.to_string())
}

/// The hand-made deletes leave the required non-key columns of `before` null, which Kafka
/// Connect (and so Avro) refuses; Debezium fills them (`customer_id: 0`, ...). Fill them here.
fn with_required_before_fields(json: &[u8]) -> Vec<u8> {
    let mut record: serde_json::Value = serde_json::from_slice(json).expect("JSON");
    let fields = record["schema"]["fields"][0]["fields"].clone();
    if let Some(before) = record["payload"]["before"].as_object_mut() {
        for field in fields.as_array().into_iter().flatten() {
            let name = field["field"].as_str().unwrap_or_default();
            if before.get(name).is_some_and(|v| v.is_null()) && field["optional"] != true {
                let zero = match field["type"].as_str() {
                    Some("bytes") => serde_json::json!("AA=="),
                    Some("string") => serde_json::json!(""),
                    _ => serde_json::json!(0),
                };
                before.insert(name.to_string(), zero);
            }
        }
    }
    let text = serde_json::to_string(&record).expect("JSON");
    // JsonConverter's order: "schema" first (serde_json keeps it: preserve_order).
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_totals_from_an_avro_topic_equal_the_group_by_and_bad_records_are_dead_lettered() {
    let (url, pool) = db::testing::fresh_database("consumer_avro")
        .await
        .expect("database");
    let topic = unique_topic("avro");
    create_topic(&topic, 3).await;

    // The JSON records Debezium would write, each value turned into Avro as cdc-reader
    // --format avro does (the same encoder, the real registry).
    let (events, final_rows) = random_history(7, 100, 2_000, 30).finish();
    let delivered = with_redeliveries(&events, 8, 4, 100);
    let mut encoder = AvroEncoder::new(RegistryClient::new(&registry_url()));
    let subject = format!("{topic}-value");
    let mut records: Vec<Record> = Vec::new();
    for record in delivered.iter().flat_map(|e| debezium_records(e, true)) {
        let value = match &record.value {
            Some(json) => Some(
                encoder
                    .encode(&subject, &with_required_before_fields(json))
                    .await
                    .expect("encode"),
            ),
            None => None,
        };
        records.push(Record { value, ..record });
    }
    let good_id = schema_registry::wire::decode(records[0].value.as_ref().unwrap())
        .unwrap()
        .0;
    // Three bad ones: not Avro, an id the registry does not know, a datum that does not fit.
    let bad = |value: Vec<u8>| Record {
        key: br#"{"id":1}"#.to_vec(),
        value: Some(value),
        headers: Vec::new(),
    };
    records.insert(10, bad(vec![0, 0xde, 0xad]));
    records.insert(
        20,
        bad(schema_registry::wire::encode(0x7fff_fff0, &[2, 4, 6])),
    );
    records.insert(
        30,
        bad(schema_registry::wire::encode(good_id, &[0xff, 0xff, 0xff])),
    );
    produce(&topic, &records).await;
    write_final_orders(&pool, &final_rows).await;

    let summary = consume(&url, &args(&topic, Source::Cdc))
        .await
        .expect("consume");
    assert_eq!(summary.records, records.len() as u64);
    assert_eq!(summary.dead_letters, 3);
    assert_eq!(differences(&pool).await, Vec::<String>::new());

    let letters = dlq::read(&bootstrap_servers(), &topic, 100).expect("read the dlq");
    assert_eq!(letters.len(), 3);
    let errors: Vec<&str> = letters.iter().map(|l| l.error.as_str()).collect();
    assert!(
        errors.iter().any(|e| e.contains("no schema with id")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("does not match its writer schema")),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_totals_from_the_producers_avro_events_equal_the_group_by() {
    let (url, pool) = db::testing::fresh_database("consumer_avro_outbox")
        .await
        .expect("database");
    let topic = unique_topic("avro_outbox");
    create_topic(&topic, 1).await;
    let run = producer::RunConfig {
        database_url: url.clone(),
        stop_after: producer::runner::StopAfter::Operations(400),
        rate: producer::runner::Rate::Unlimited,
        shape: producer::workload::WorkloadShape {
            mix: producer::workload::Mix::parse("create=60,update=20,cancel=10,delete=10")
                .expect("mix"),
            customers: 30,
            items_per_order: None,
        },
        seed: 5,
        concurrency: 1,
        outbox_mode: Default::default(),
        direct_publish: Some(producer::runner::DirectPublishConfig {
            bootstrap_servers: bootstrap_servers(),
            topic: topic.clone(),
            fail_probability: 0.0,
            format: producer::direct_publish::PublishFormat::Avro,
            schema_registry_url: registry_url(),
        }),
        progress: false,
        retry: Default::default(),
    };
    let published = producer::run(run).await.expect("producer run");
    assert_eq!(published.direct_publish.expect("published").published, 400);

    let summary = consume(&url, &args(&topic, Source::Outbox))
        .await
        .expect("consume the Avro outbox events");
    assert_eq!(summary.dead_letters, 0);
    assert_eq!(differences(&pool).await, Vec::<String>::new());
}
