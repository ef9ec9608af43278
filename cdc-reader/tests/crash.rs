//! kill -9 the reader in the middle of a 10,000-change run and start it again: every change
//! reaches Kafka at least once, in commit order per key, and the slot's confirmed_flush_lsn
//! never passed a record that Kafka had not acknowledged.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{confirmed_flush_lsn, current_wal_lsn, unique_prefix};

const TRANSACTIONS: i64 = 2_000;
const HOT_ORDERS: i64 = 10;

fn spawn_reader(name: &str, prefix: &str, url: &str, until: Option<String>) -> Child {
    let mut extra = vec!["--tables", "public.orders"];
    if let Some(until) = &until {
        extra.extend(["--until-lsn", until.as_str()]);
    }
    let mut command = common::reader_process(name, prefix, url, &extra);
    command
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start cdc-reader")
}

/// Every transaction inserts 4 orders and moves one of 10 "hot" orders to customer_id = its
/// number, so per key the values must come out increasing.
async fn write_changes(pool: sqlx::PgPool) {
    for tx_number in 1..=TRANSACTIONS {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO orders (id, customer_id, total) \
             SELECT 1000 + $1 * 4 + g, $1, 1.00 FROM generate_series(0, 3) g",
        )
        .bind(tx_number)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("UPDATE orders SET customer_id = $1 WHERE id = $2")
            .bind(tx_number)
            .bind(tx_number % HOT_ORDERS + 1)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reader_loses_nothing_and_confirms_nothing_undelivered() {
    let name = "reader_crash";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, total) SELECT g, 0, 1.00 FROM generate_series(1, $1) g")
        .bind(HOT_ORDERS)
        .execute(&pool)
        .await
        .unwrap();
    let prefix = unique_prefix(name);
    let topic = format!("{prefix}.public.orders");
    let slot = common::slot_name(name);

    // First run: starts, creates the slot, streams while the writer writes; killed mid-run.
    let mut first = spawn_reader(name, &prefix, &url, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while confirmed_flush_lsn(&pool, &slot).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the reader never confirmed anything"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writer = tokio::spawn(write_changes(pool.clone()));
    // Let it get part of the way.
    let start_confirmed = confirmed_flush_lsn(&pool, &slot).await;
    while confirmed_flush_lsn(&pool, &slot).await <= start_confirmed + 200_000 {
        assert!(Instant::now() < deadline, "the reader made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("kill -9");
    first.wait().unwrap();
    let confirmed_at_kill = confirmed_flush_lsn(&pool, &slot).await;
    let before_restart: Vec<_> = common::read_topic_to_end(&topic)
        .into_iter()
        .filter(|r| r.op() != Some("r"))
        .collect();
    assert!(
        !before_restart.is_empty(),
        "some records were delivered before the kill"
    );

    writer.await.unwrap();
    let end = current_wal_lsn(&pool).await;

    // Second run: resumes from the slot and exits once everything up to `end` is confirmed.
    let mut second = spawn_reader(name, &prefix, &url, Some(end.to_string()));
    let status = tokio::task::spawn_blocking(move || second.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the restarted reader exits 0 at --until-lsn"
    );

    let expected_changes = (TRANSACTIONS * 5) as usize;
    assert!(
        before_restart.len() < expected_changes,
        "the kill should land mid-run ({} of {expected_changes} records were in Kafka)",
        before_restart.len()
    );
    // The snapshot's reads of the hot orders share one position; this test is about streaming.
    let all: Vec<_> = common::read_topic_to_end(&topic)
        .into_iter()
        .filter(|r| r.op() != Some("r"))
        .collect();
    eprintln!(
        "before the kill: {} records; after the restart: {} records for {expected_changes} changes ({} duplicates)",
        before_restart.len(),
        all.len(),
        all.len().saturating_sub(expected_changes)
    );

    // 1. Every change arrived at least once (identified by its LSN).
    let mut by_lsn: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new(); // lsn -> (txId, id, customer_id)
    for record in &all {
        let payload = record.payload();
        let lsn = payload["source"]["lsn"].as_i64().unwrap();
        let tx_id = payload["source"]["txId"].as_i64().unwrap();
        let id = payload["after"]["id"].as_i64().unwrap();
        let customer = payload["after"]["customer_id"].as_i64().unwrap();
        by_lsn.insert(lsn, (tx_id, id, customer));
    }
    let streamed_ids: HashSet<i64> = by_lsn.values().map(|v| v.1).collect();
    for tx_number in 1..=TRANSACTIONS {
        for g in 0..4 {
            assert!(
                streamed_ids.contains(&(1000 + tx_number * 4 + g)),
                "insert of order {} is missing",
                1000 + tx_number * 4 + g
            );
        }
    }
    let updates = by_lsn.values().filter(|v| v.1 <= HOT_ORDERS).count() as i64;
    assert_eq!(updates, TRANSACTIONS, "every update of a hot order arrived");

    // 2. Per key, in Kafka's order, first occurrences come in commit order (duplicates after a
    //    restart may repeat older values, never reorder new ones).
    let mut seen_per_key: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut seen_lsns = HashSet::new();
    for record in &all {
        let payload = record.payload();
        let lsn = payload["source"]["lsn"].as_i64().unwrap();
        if !seen_lsns.insert(lsn) {
            continue;
        }
        let id = payload["after"]["id"].as_i64().unwrap();
        if id <= HOT_ORDERS && payload["op"] == "u" {
            seen_per_key
                .entry(id)
                .or_default()
                .push(payload["after"]["customer_id"].as_i64().unwrap());
        }
    }
    for (id, values) in &seen_per_key {
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "order {id} out of commit order: {values:?}"
        );
    }

    // 3. The slot never passed an unacknowledged record: every transaction that committed
    //    before confirmed_at_kill was complete in Kafka before the restart. (One writer, so a
    //    transaction's commit ends no later than where the next transaction's first change is.)
    let delivered_before: HashSet<i64> = before_restart
        .iter()
        .map(|r| r.payload()["source"]["lsn"].as_i64().unwrap())
        .collect();
    let mut transactions: Vec<(i64, Vec<i64>)> = Vec::new(); // in commit order: (txId, lsns)
    for (lsn, (tx_id, _, _)) in &by_lsn {
        match transactions.last_mut() {
            Some((last, lsns)) if last == tx_id => lsns.push(*lsn),
            _ => transactions.push((*tx_id, vec![*lsn])),
        }
    }
    for pair in transactions.windows(2) {
        let (tx_id, lsns) = &pair[0];
        let next_first = pair[1].1[0] as u64;
        if next_first < confirmed_at_kill {
            for lsn in lsns {
                assert!(
                    delivered_before.contains(lsn),
                    "tx {tx_id} was confirmed (slot at {confirmed_at_kill}) but its change at {lsn} was not in Kafka"
                );
            }
        }
    }
    common::drop_slot(&pool, &common::slot_name(name)).await;
}
