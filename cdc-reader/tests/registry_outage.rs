//! The schema registry goes away while the reader writes Avro, then comes back: the reader
//! waits and asks again, confirms no LSN past the record whose schema it could not register,
//! and carries on when the registry answers; nothing is lost, nothing reordered per key.
//!
//! ```text
//! registry up:   INSERT 1..3, UPDATE ...          -> delivered, confirmed (schemas v1 cached)
//! registry down: ALTER TABLE orders ADD COLUMN note, UPDATEs with notes
//!                -> the value schema v2 must be registered: the reader waits, confirms nothing
//!                   past the first record that needs it, writes nothing after it
//! registry up:   the reader registers v2 and delivers the rest, in WAL order
//! ```
//!
//! The registry is a private one ([`db::private_stack::PrivateRegistry`]: the stack's jar,
//! its schemas in a database of its own), so stopping it disturbs no other test.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use db::private_stack::PrivateRegistry;
use schema_registry::{AvroDecoder, RegistryClient};

/// The raw values of every record of `topic` up to its end.
fn raw_values(topic: &str) -> Vec<Option<Vec<u8>>> {
    common::raw_records(topic)
        .into_iter()
        .map(|(_key, value)| value)
        .collect()
}

async fn wait_confirmed(pool: &sqlx::PgPool, slot: &str, lsn: u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while common::confirmed_flush_lsn(pool, slot).await < lsn {
        assert!(
            Instant::now() < deadline,
            "slot {slot} never confirmed {lsn}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_waits_for_a_registry_that_went_away_and_loses_nothing() {
    let name = "avro_registry_outage";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let mut registry = PrivateRegistry::up(name).await;
    let registry_url = registry.url();
    let prefix = common::unique_prefix("avrooutage");
    let slot = common::slot_name(name);
    let (reader, stop) = common::start_reader(common::reader_args(
        name,
        &prefix,
        &url,
        &["--format", "avro", "--schema-registry-url", &registry_url],
    ));
    common::wait_until_streaming(&pool, &slot).await;

    let execute = |sql: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap()
        }
    };
    // Registry up: three orders and an update each; their schemas get registered and cached.
    for id in 1..=3 {
        execute(format!(
            "INSERT INTO orders (id, customer_id, total) VALUES ({id}, 7, {id}.00)"
        ))
        .await;
        execute(format!("UPDATE orders SET total = {id}.50 WHERE id = {id}")).await;
    }
    let delivered = common::current_wal_lsn(&pool).await.0;
    wait_confirmed(&pool, &slot, delivered).await;
    let topic = format!("{prefix}.public.orders");
    let before_outage = raw_values(&topic).len();
    assert_eq!(before_outage, 6, "inserts and updates before the outage");

    // Registry down; a new column needs a new value schema, which cannot be registered.
    registry.stop();
    execute("ALTER TABLE orders ADD COLUMN note text".into()).await;
    let before_unregistered = common::current_wal_lsn(&pool).await.0;
    for round in 1..=3 {
        for id in 1..=3 {
            execute(format!(
                "UPDATE orders SET note = 'round {round}', total = total + 1 WHERE id = {id}"
            ))
            .await;
        }
    }
    // Well past several retries (backoff 0.2 s .. 5 s) and status updates (every 200 ms).
    let outage_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < outage_until {
        let confirmed = common::confirmed_flush_lsn(&pool, &slot).await;
        assert!(
            confirmed <= before_unregistered,
            "confirmed {confirmed} passed the first record with no registered schema (at {before_unregistered})"
        );
        assert!(
            !reader.is_finished(),
            "the reader gave up while the registry was down"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        raw_values(&topic).len(),
        before_outage,
        "nothing written past the record that waits for the registry"
    );

    // Registry back: everything arrives, after what came before, in WAL order per key.
    registry.start();
    let all = common::current_wal_lsn(&pool).await.0;
    wait_confirmed(&pool, &slot, all).await;
    let _ = stop.send(());
    reader.await.unwrap().unwrap();

    let values = raw_values(&topic);
    assert_eq!(
        values.len(),
        before_outage + 9,
        "every change delivered once"
    );
    let mut decoder = AvroDecoder::new(RegistryClient::new(&registry_url));
    let mut notes_per_key: BTreeMap<i64, Vec<Option<String>>> = BTreeMap::new();
    for value in &values {
        let bytes = value.as_ref().expect("no tombstones here");
        let after = decoder.decode(bytes).await.unwrap().payload["after"].clone();
        notes_per_key
            .entry(after["id"].as_i64().unwrap())
            .or_default()
            .push(after["note"].as_str().map(str::to_string));
    }
    for id in 1..=3 {
        assert_eq!(
            notes_per_key[&id],
            vec![
                None,
                None,
                Some("round 1".into()),
                Some("round 2".into()),
                Some("round 3".into())
            ],
            "order {id}: its changes in the order they were made"
        );
    }
    let subject = format!("{topic}-value");
    assert_eq!(
        RegistryClient::new(&registry_url)
            .versions(&subject)
            .await
            .unwrap(),
        vec![1, 2],
        "{subject}: the new column's schema is version 2"
    );
    common::drop_slot(&pool, &slot).await;
}
