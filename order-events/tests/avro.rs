//! `order-events --format avro` against the real registry and Kafka: every event on the output
//! is in the Confluent wire format under the subject `<output>-value`, decodes (with the writer
//! schema fetched by id) to the same event the JSON format writes, the last event of each order
//! equals PostgreSQL, and `consumer --from domain` builds order_totals equal to the GROUP BY.

mod common;

use std::time::{Duration, Instant};

use common::*;
use projections::order_events::OrderEvent;
use schema_registry::{wire, AvroDecoder, RegistryClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_events_decode_to_the_orders_and_fold_into_exact_totals() {
    let name = "oe_avro";
    let topics = Topics::new(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (reader, stop_reader) = start_reader(name, &topics.prefix, &url);
    wait_until_streaming(&pool, &slot_name(name)).await;
    let log = log_path(name);
    let registry = db::testing::schema_registry_url();
    let _processor = processor(
        &topics,
        &format!("{}-tx", topics.prefix),
        &log,
        &["--batch-timeout", "50ms", "--format", "avro"],
    );
    start_producer(&url, 300, 1_000)
        .await
        .expect("producer task")
        .expect("producer run");

    let expected = database_orders(&pool).await;
    let mut decoder = AvroDecoder::new(RegistryClient::new(&registry));
    let deadline = Instant::now() + Duration::from_secs(90);
    let events = loop {
        let mut events = Vec::new();
        for record in read_topic(&topics.output, "read_committed") {
            let value = record.value.expect("an event has a value");
            assert!(wire::looks_like_avro(&value), "not Avro: {value:?}");
            let decoded = decoder.decode(&value).await.expect("decodes");
            let json = serde_json::to_vec(&decoded.payload).unwrap();
            events.push(OrderEvent::from_json(&json).expect("an event"));
        }
        if orders_from_events(&events) == expected {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the Avro events never matched PostgreSQL ({} events)\n{}",
            events.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!events.is_empty());
    let client = RegistryClient::new(&registry);
    let versions = client
        .versions(&format!("{}-value", topics.output))
        .await
        .expect("the subject is registered");
    assert_eq!(versions, vec![1]);

    consume_domain(&url, &topics.output, &["--schema-registry-url", &registry]).await;
    assert_eq!(
        totals_differences(&pool).await,
        0,
        "order_totals from the Avro domain events differs from the GROUP BY"
    );
    let _ = stop_reader.send(());
    let _ = reader.await;
}
