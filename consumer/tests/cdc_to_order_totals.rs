//! End to end through the real Kafka and PostgreSQL, with hand-made Debezium records: a
//! history with snapshot reads, duplicates at new offsets (a restarting reader), tombstones
//! and poison records; then a replay; then `status`.

mod common;

use common::*;
use consumer::{consume, dlq, status, Source};
use projections::synthetic::{
    debezium_records, random_history, with_redeliveries, with_stale_duplicates, Record,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_tombstones_poison_and_replay_all_equal_the_group_by() {
    let (url, pool) = db::testing::fresh_database("consumer_cdc_end_to_end")
        .await
        .expect("database");
    let topic = unique_topic("cdc");
    create_topic(&topic, 3).await;

    let (events, final_rows) = random_history(42, 200, 6_000, 60).finish();
    let delivered = with_stale_duplicates(&with_redeliveries(&events, 43, 8, 300), 44, 200);
    assert!(delivered.len() > events.len(), "the reader redelivers");
    let mut records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    // 100 poison records mixed in.
    let poison = poison_records(100);
    for (i, record) in poison.into_iter().enumerate() {
        let at = (i * 61) % records.len();
        records.insert(at, record);
    }
    produce(&topic, &records).await;
    write_final_orders(&pool, &final_rows).await;

    let summary = consume(&url, &args(&topic, Source::Cdc))
        .await
        .expect("consume");
    assert_eq!(summary.records, records.len() as u64);
    assert_eq!(summary.dead_letters, 100);
    assert!(summary.duplicates > 0 && summary.tombstones > 0);
    assert_eq!(differences(&pool).await, Vec::<String>::new());
    let live = order_totals(&pool).await;
    assert!(!live.is_empty());

    let letters = dlq::read(&bootstrap_servers(), &topic, 1_000).expect("read the dlq");
    assert_eq!(letters.len(), 100);
    assert!(letters
        .iter()
        .all(|l| l.original_topic == topic && !l.error.is_empty()));
    assert!(letters.iter().any(|l| l.error.contains("unknown op `t`")));
    assert!(letters
        .iter()
        .any(|l| l.error.contains("schema does not fit")));

    // Nothing new: a second run changes nothing.
    let again = consume(&url, &args(&topic, Source::Cdc))
        .await
        .expect("consume again");
    assert_eq!(again.records, 0);
    assert_eq!(order_totals(&pool).await, live);

    // Replay: identical to the live projection.
    let mut replay_args = args(&topic, Source::Cdc);
    replay_args.replay = true;
    let replayed = consume(&url, &replay_args).await.expect("replay");
    assert_eq!(replayed.records, records.len() as u64);
    assert_eq!(order_totals(&pool).await, live);
    assert_eq!(differences(&pool).await, Vec::<String>::new());

    // Status: caught up, then lagging by what was produced since.
    let lines = status::partitions(&url, &args(&topic, Source::Cdc))
        .await
        .expect("status");
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.lag() == 0), "{lines:?}");
    produce(&topic, &poison_records(5)).await;
    let lines = status::partitions(&url, &args(&topic, Source::Cdc))
        .await
        .expect("status");
    assert_eq!(lines.iter().map(|l| l.lag()).sum::<i64>(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_only_records_small_batches() {
    let (url, pool) = db::testing::fresh_database("consumer_cdc_no_schema")
        .await
        .expect("database");
    let topic = unique_topic("noschema");
    create_topic(&topic, 2).await;
    let (events, final_rows) = random_history(7, 20, 1_500, 10).finish();
    let delivered = with_redeliveries(&events, 8, 5, 100);
    let records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, false))
        .collect();
    produce(&topic, &records).await;
    write_final_orders(&pool, &final_rows).await;
    let mut small = args(&topic, Source::Cdc);
    small.batch_size = 7;
    consume(&url, &small).await.expect("consume");
    assert_eq!(differences(&pool).await, Vec::<String>::new());
}
