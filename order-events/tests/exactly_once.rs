//! order-events against the real Kafka and PostgreSQL:
//! - exactly once under kill -9: the processor is killed five times while the producer writes;
//!   a read_committed reader of the output sees every event once, in source order per order,
//!   the last event of each order equals its row and items in PostgreSQL, and
//!   `consumer --from domain` (and its `--replay`) gives order_totals equal to the GROUP BY;
//! - zombie fencing: a second instance with the same transactional.id fences the first, which
//!   exits saying so;
//! - the defined outcomes: an incomplete transaction goes to the DLQ after the bound, items of
//!   an unknown order are held and come with the order's first event.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use projections::order_events::{EventType, OrderEvent};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// Every event id once; per order, the source LSN strictly grows in topic order.
fn assert_exactly_once_in_order(events: &[OrderEvent]) {
    let mut ids = HashSet::new();
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for event in events {
        assert!(
            ids.insert(event.event_id),
            "event {} (order {}, tx {}) seen twice",
            event.event_id,
            event.order_id,
            event.source.tx_id
        );
        if let Some(previous) = last.insert(event.order_id, event.source.lsn) {
            assert!(
                previous < event.source.lsn,
                "order {}: event at LSN {} after one at {previous}",
                event.order_id,
                event.source.lsn
            );
        }
    }
}

/// Waits until the events describe exactly the orders in PostgreSQL.
async fn wait_until_events_match(
    pool: &sqlx::PgPool,
    topic: &str,
    log: &std::path::Path,
) -> Vec<OrderEvent> {
    let expected = database_orders(pool).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let events = events(topic);
        let got = orders_from_events(&events);
        if got == expected {
            return events;
        }
        if Instant::now() > deadline {
            let wrong: Vec<_> = expected
                .iter()
                .filter(|(id, row)| got.get(id) != Some(row))
                .take(3)
                .collect();
            panic!(
                "the events never matched PostgreSQL ({} orders, {} from events); e.g. {wrong:?}\n{}",
                expected.len(),
                got.len(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_exactly_once_in_order_through_five_kills() {
    let name = "oe_kill";
    let topics = Topics::new(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (reader, stop_reader) = start_reader(name, &topics.prefix, &url);
    wait_until_streaming(&pool, &slot_name(name)).await;
    let log = log_path(name);
    let mut processor_process = processor(&topics, &format!("{}-tx", topics.prefix), &log, &[]);
    let writes = start_producer(&url, 2000, 200);

    let mut kills = 0;
    while kills < 5 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        processor_process.kill().expect("kill -9");
        processor_process.wait().unwrap();
        kills += 1;
        processor_process = processor(&topics, &format!("{}-tx", topics.prefix), &log, &[]);
    }
    assert!(!writes.is_finished() || kills == 5);
    writes.await.unwrap().expect("producer run");

    let events = wait_until_events_match(&pool, &topics.output, &log).await;
    assert_exactly_once_in_order(&events);
    let uncommitted = read_topic(&topics.output, "read_uncommitted").len();
    eprintln!(
        "{} events read_committed, {uncommitted} records read_uncommitted (aborted batches included)",
        events.len()
    );
    assert!(uncommitted >= events.len());
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("state store restored"), "{log_text}");

    consume_domain(&url, &topics.output, &[]).await;
    assert_eq!(
        totals_differences(&pool).await,
        0,
        "order_totals from the domain route"
    );
    consume_domain(&url, &topics.output, &["--replay"]).await;
    assert_eq!(
        totals_differences(&pool).await,
        0,
        "order_totals after a replay"
    );

    processor_process.kill().unwrap();
    processor_process.wait().unwrap();
    let _ = stop_reader.send(());
    let _ = reader.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_with_the_same_transactional_id_fences_the_first() {
    let name = "oe_fence";
    let topics = Topics::new(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (reader, stop_reader) = start_reader(name, &topics.prefix, &url);
    wait_until_streaming(&pool, &slot_name(name)).await;
    let transactional_id = format!("{}-tx", topics.prefix);
    let (log_a, log_b) = (log_path("oe_fence_a"), log_path("oe_fence_b"));
    let mut first = processor(&topics, &transactional_id, &log_a, &[]);
    let writes = start_producer(&url, 3000, 150);
    let deadline = Instant::now() + Duration::from_secs(60);
    while events(&topics.output).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first instance wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut second = processor(&topics, &transactional_id, &log_b, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the first instance was never fenced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let first_log = std::fs::read_to_string(&log_a).unwrap_or_default();
    assert!(
        first_log.contains("fenced: another order-events instance"),
        "{first_log}"
    );
    writes.await.unwrap().expect("producer run");
    let events = wait_until_events_match(&pool, &topics.output, &log_b).await;
    assert_exactly_once_in_order(&events);
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second instance runs on"
    );
    second.kill().unwrap();
    second.wait().unwrap();
    let _ = stop_reader.send(());
    let _ = reader.await;
}

fn order_row(xid: i64, lsn: i64, id: i64, op: &str, status: &str) -> String {
    format!(
        r#"{{"before":null,"after":{{"id":{id},"customer_id":1,"status":"{status}","total":"10.00","currency":"EUR"}},"source":{{"txId":{xid},"lsn":{lsn},"ts_ms":1}},"op":"{op}","transaction":{{"id":"{xid}:{lsn}"}}}}"#
    )
}

fn item_row(xid: i64, lsn: i64, order_id: i64, line_no: i32) -> String {
    format!(
        r#"{{"before":null,"after":{{"order_id":{order_id},"line_no":{line_no},"sku":"S","quantity":1,"unit_price":"5.00"}},"source":{{"txId":{xid},"lsn":{lsn},"ts_ms":1}},"op":"c","transaction":{{"id":"{xid}:{lsn}"}}}}"#
    )
}

fn end(xid: i64, lsn: i64, orders: u64, items: u64) -> String {
    format!(
        r#"{{"status":"END","id":"{xid}:{lsn}","event_count":{},"data_collections":[{{"data_collection":"public.orders","event_count":{orders}}},{{"data_collection":"public.order_items","event_count":{items}}}],"ts_ms":1}}"#,
        orders + items
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_transactions_go_to_the_dlq_and_orphan_items_wait_for_their_order() {
    let topics = Topics::new("oe_dlq");
    let orders = format!("{}.public.orders", topics.prefix);
    let items = format!("{}.public.order_items", topics.prefix);
    let transactions = format!("{}.transaction", topics.prefix);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let records = [
        // xid 100: END counts 1 order row and 2 item rows; one item never comes.
        (&orders, order_row(100, 1000, 1, "c", "NEW")),
        (&items, item_row(100, 1010, 1, 1)),
        (&transactions, end(100, 1100, 1, 2)),
        // xid 101: complete.
        (&orders, order_row(101, 2000, 2, "c", "NEW")),
        (&items, item_row(101, 2010, 2, 1)),
        (&transactions, end(101, 2100, 1, 1)),
        // xid 102: an item of order 9, which the processor has never seen: held.
        (&items, item_row(102, 3000, 9, 1)),
        (&transactions, end(102, 3100, 0, 1)),
        // xid 103: order 9's row (an update of an order older than the processor).
        (&orders, order_row(103, 4000, 9, "u", "PAID")),
        (&transactions, end(103, 4100, 1, 0)),
    ];
    for (topic, value) in &records {
        producer
            .send(
                FutureRecord::<str, str>::to(topic).payload(value),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
    let log = log_path("oe_dlq");
    let mut processor_process = processor(
        &topics,
        &format!("{}-tx", topics.prefix),
        &log,
        &["--incomplete-after", "2s"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (dead, events) = loop {
        let dead = read_topic(&topics.dlq, "read_committed");
        let events = events(&topics.output);
        if !dead.is_empty() && events.len() >= 2 {
            break (dead, events);
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter and events: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 1);
    let value: serde_json::Value =
        serde_json::from_slice(dead[0].value.as_deref().unwrap()).unwrap();
    let reason = value["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("transaction 100 incomplete"), "{reason}");
    assert!(
        reason.contains("1 orders and 1 order_items rows arrived"),
        "{reason}"
    );
    assert_eq!(value["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (events[0].order_id, events[0].event_type),
        (2, EventType::OrderPlaced)
    );
    assert_eq!(
        (events[1].order_id, events[1].event_type),
        (9, EventType::OrderPlaced)
    );
    assert_eq!(
        events[1].items.len(),
        1,
        "the held item comes with its order"
    );
    processor_process.kill().unwrap();
    processor_process.wait().unwrap();
}
