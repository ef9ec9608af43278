//! `--from outbox`: the same `order_totals` from the outbox topic (two sources, one truth),
//! with duplicates of the same event id at new offsets.

mod common;

use common::*;
use consumer::{consume, Source};
use projections::synthetic::{
    debezium_records, outbox_record, random_history, with_redeliveries, Record,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_builds_the_same_order_totals_as_cdc() {
    let (url, pool) = db::testing::fresh_database("consumer_outbox")
        .await
        .expect("database");
    let outbox_topic = unique_topic("outbox");
    let cdc_topic = unique_topic("outbox_cdc");
    create_topic(&outbox_topic, 2).await;
    create_topic(&cdc_topic, 2).await;
    // No snapshot for the outbox: every order is created through the producer.
    let (events, final_rows) = random_history(99, 0, 3_000, 25).finish();
    let delivered = with_redeliveries(&events, 100, 6, 200);
    let outbox: Vec<Record> = delivered.iter().map(outbox_record).collect();
    let cdc: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    produce(&outbox_topic, &outbox).await;
    produce(&cdc_topic, &cdc).await;
    write_final_orders(&pool, &final_rows).await;

    let summary = consume(&url, &args(&outbox_topic, Source::Outbox))
        .await
        .expect("consume the outbox");
    assert!(summary.duplicates > 0);
    assert_eq!(summary.dead_letters, 0);
    assert_eq!(differences(&pool).await, Vec::<String>::new());
    let from_outbox = order_totals(&pool).await;

    let mut from_cdc_args = args(&cdc_topic, Source::Cdc);
    from_cdc_args.replay = true;
    consume(&url, &from_cdc_args)
        .await
        .expect("replay from cdc");
    assert_eq!(order_totals(&pool).await, from_outbox);
}
