//! table-sink into Cassandra, for real (the Cassandra of `scripts/stack up --with cassandra`,
//! found through `CASSANDRA_CONTACT_POINTS`; scripts/test starts it and sets it).
//!
//! 1. The producer writes creates, updates, cancels and deletes; cdc-reader streams them;
//!    table-sink writes `orders` into the query-first table `orders_by_customer` (partition key
//!    `customer_id`, clustering `id`) while it is killed -9 three times. Afterwards Cassandra
//!    holds exactly the live orders of the source, row by row; a replay from offset 0 (a new
//!    consumer group) changes nothing; an `ADD COLUMN` on the source reaches Cassandra while
//!    the sink runs.
//! 2. Bad records (unparseable, a key that is missing, a value that overflows its column) go to
//!    the dead-letter topic and the sink goes on.
//! 3. The event table: outbox records (the event id only in the header `id`) into
//!    `order_events`, keyed by that id (`--header-to-field id=event_id`), rows with a TTL.
//! 4. Cassandra cut off for 4 s mid-run (a TCP proxy between the sink and Cassandra,
//!    `db::cuttable_proxy`): the sink waits and retries, commits no Kafka offset past what
//!    Cassandra acknowledged, dead-letters nothing, and catches up.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use sqlx::PgPool;

use common::*;

/// The first contact point, or `None` (and the reason printed) when Cassandra is not set up.
fn contact_point() -> Option<String> {
    match std::env::var("CASSANDRA_CONTACT_POINTS") {
        Ok(points) => points.split(',').next().map(|p| p.trim().to_string()),
        Err(_) => {
            eprintln!(
                "skipped: CASSANDRA_CONTACT_POINTS is unset (scripts/stack up --with cassandra, then \
                 eval \"$(scripts/stack env)\"; scripts/test does both)"
            );
            None
        }
    }
}

/// A session and a keyspace of this test's own (dropped first if an earlier run left it).
async fn fresh_keyspace(point: &str, name: &str) -> (Session, String) {
    let session = SessionBuilder::new()
        .known_node(point)
        .build()
        .await
        .unwrap_or_else(|e| {
            panic!("Cassandra at {point} does not answer ({e}): scripts/stack up --with cassandra")
        });
    let keyspace = format!("test_{}", db::testing::unique_name(name));
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), &[])
        .await
        .expect("drop the keyspace of an earlier run");
    (session, keyspace)
}

/// The sink binary writing `orders` of topic prefix `prefix` into `orders_by_customer`.
fn spawn_sink(
    point: &str,
    keyspace: &str,
    prefix: &str,
    group: &str,
    until_caught_up: bool,
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_table-sink"));
    command
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
        .env("TABLE_SINK_TOPICS", format!("{prefix}.public.orders"))
        .env("TABLE_SINK_TO", format!("cassandra://{point}/{keyspace}"))
        .env("TABLE_SINK_GROUP_ID", group)
        .env(
            "TABLE_SINK_ROUTES",
            format!(
                r"{}\.public\.orders=orders_by_customer",
                regex::escape(prefix)
            ),
        )
        .env("TABLE_SINK_PRIMARY_KEY_MODE", "record_value")
        .env("TABLE_SINK_PRIMARY_KEY_FIELDS", "customer_id,id")
        .env("TABLE_SINK_PARTITION_KEY", "customer_id")
        .env("TABLE_SINK_CLUSTERING_KEY", "id")
        .env("TABLE_SINK_AUTO_CREATE", "true")
        .env("TABLE_SINK_CONSISTENCY", "one")
        .env("TABLE_SINK_BATCH_SIZE", "500")
        .env("TABLE_SINK_BATCH_TIMEOUT", "50ms")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if until_caught_up {
        command.env("TABLE_SINK_UNTIL_CAUGHT_UP", "true");
    }
    command.spawn().expect("spawn table-sink")
}

/// Every order of the source, as the text of the columns Cassandra holds (timestamps in
/// milliseconds: CQL's `timestamp` has no microseconds).
async fn source_orders(pool: &PgPool, with_note: bool) -> BTreeSet<String> {
    let note = if with_note {
        "coalesce(note, '-')"
    } else {
        "'-'"
    };
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "SELECT concat_ws('|', customer_id, id, status, total::text, currency,
                (extract(epoch FROM date_trunc('milliseconds', created_at)) * 1000)::bigint,
                (extract(epoch FROM date_trunc('milliseconds', updated_at)) * 1000)::bigint, {note})
           FROM orders"
    )))
    .fetch_all(pool)
    .await
    .expect("source orders")
    .into_iter()
    .collect()
}

/// Every row of `orders_by_customer`, in the same text form.
async fn cassandra_orders(session: &Session, keyspace: &str, with_note: bool) -> BTreeSet<String> {
    let note = if with_note { "note" } else { "currency" };
    let result = session
        .query_unpaged(
            format!(
                "SELECT customer_id, id, status, CAST(total AS text), currency, \
                 toUnixTimestamp(created_at), toUnixTimestamp(updated_at), {note} \
                 FROM \"{keyspace}\".orders_by_customer"
            ),
            &[],
        )
        .await;
    let Ok(result) = result else {
        return BTreeSet::new();
    };
    let rows = result.into_rows_result().expect("rows");
    rows.rows::<(i64, i64, String, String, String, i64, i64, Option<String>)>()
        .expect("typed rows")
        .map(|row| {
            let (customer, id, status, total, currency, created, updated, note) = row.expect("row");
            let note = if with_note {
                note.unwrap_or_else(|| "-".into())
            } else {
                "-".into()
            };
            format!("{customer}|{id}|{status}|{total}|{currency}|{created}|{updated}|{note}")
        })
        .collect()
}

fn differences(expected: &BTreeSet<String>, actual: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = expected
        .difference(actual)
        .take(3)
        .map(|r| format!("Cassandra lacks {r}"))
        .collect();
    out.extend(
        actual
            .difference(expected)
            .take(3)
            .map(|r| format!("Cassandra has extra {r}")),
    );
    let counts = (
        expected.difference(actual).count(),
        actual.difference(expected).count(),
    );
    if counts != (0, 0) {
        out.push(format!(
            "{} missing, {} extra of {}",
            counts.0,
            counts.1,
            expected.len()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_holds_exactly_the_live_orders_a_replay_changes_nothing_and_columns_follow() {
    let Some(point) = contact_point() else { return };
    let name = "sink_cassandra";
    let (session, keyspace) = fresh_keyspace(&point, name).await;
    let prefix = db::testing::unique_topic_prefix(name);
    // The Cassandra table's key is (customer_id, id): a delete must carry customer_id, which
    // only the whole old row has.
    let (source_url, source, slot, reader) = streaming_source(name, &prefix, true).await;
    let writes = spawn_writes(&source_url, 3000, 800, 2, 1615);

    // kill -9 the sink three times while the producer writes.
    let group = format!("cassandra-{prefix}");
    let mut rng = 1615u64;
    for kill in 1..=3 {
        let mut child = spawn_sink(&point, &keyspace, &prefix, &group, false);
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(600 + (rng >> 33) % 900);
        tokio::time::sleep(wait).await;
        assert!(
            child.try_wait().expect("poll sink").is_none(),
            "the sink stopped by itself"
        );
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        eprintln!("kill {kill} after {wait:?}");
    }
    let summary = writes.await.expect("producer task").expect("producer run");
    assert_eq!(summary.counts.values().sum::<u64>(), 3000);
    wait_until_reader_caught_up(&source, &slot).await;

    let status = spawn_sink(&point, &keyspace, &prefix, &group, true)
        .wait()
        .expect("final run");
    assert!(status.success(), "final run: {status}");
    let expected = source_orders(&source, false).await;
    assert!(
        expected.len() > 100,
        "the run left live orders: {}",
        expected.len()
    );
    let after_run = cassandra_orders(&session, &keyspace, false).await;
    assert_eq!(differences(&expected, &after_run), Vec::<String>::new());

    // A replay from offset 0: a new consumer group reads every record again.
    let started = Instant::now();
    let status = spawn_sink(&point, &keyspace, &prefix, &format!("{group}-replay"), true)
        .wait()
        .expect("replay");
    assert!(status.success(), "replay: {status}");
    eprintln!("replay of the whole topic in {:?}", started.elapsed());
    assert_eq!(
        cassandra_orders(&session, &keyspace, false).await,
        after_run,
        "the replay changed rows"
    );

    // ADD COLUMN on the source reaches Cassandra while the sink runs.
    let mut follower = spawn_sink(&point, &keyspace, &prefix, &group, false);
    sqlx::query("ALTER TABLE orders ADD COLUMN note text")
        .execute(&source)
        .await
        .expect("add column");
    sqlx::query("UPDATE orders SET note = 'gift ' || id WHERE id % 7 = 0")
        .execute(&source)
        .await
        .expect("update");
    let expected = source_orders(&source, true).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let actual = cassandra_orders(&session, &keyspace, true).await;
        let diff = differences(&expected, &actual);
        if diff.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "after ADD COLUMN: {diff:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        follower.try_wait().expect("poll").is_none(),
        "the sink kept running"
    );
    follower.kill().ok();
    follower.wait().ok();

    reader.abort();
    let _ = reader.await;
    for _ in 0..100 {
        let dropped = sqlx::query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active")
            .bind(&slot)
            .execute(&source)
            .await;
        if dropped.is_ok() && confirmed_flush_lsn(&source, &slot).await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), &[])
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letter_topic_and_the_cassandra_sink_goes_on() {
    let Some(point) = contact_point() else { return };
    let (session, keyspace) = fresh_keyspace(&point, "sink_cassandra_dlq").await;
    session
        .query_unpaged(
            format!("CREATE KEYSPACE \"{keyspace}\" WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
            &[],
        )
        .await
        .expect("keyspace");
    session
        .query_unpaged(format!("CREATE TABLE \"{keyspace}\".things (id bigint PRIMARY KEY, amount smallint, label text)"), &[])
        .await
        .expect("table");
    let topic = format!(
        "{}.things",
        db::testing::unique_topic_prefix("sink_cassandra_dlq")
    );
    let good =
        |id: i64, amount: i64| format!(r#"{{"id":{id},"amount":{amount},"label":"ok {id}"}}"#);
    let key = |id: i64| format!(r#"{{"id":{id}}}"#);
    let (k1, v1, k2, k3, v3, k4, v4, k5, v5) = (
        key(1),
        good(1, 10),
        key(2),
        key(3),
        good(3, 100_000),
        key(4),
        good(4, 4),
        key(5),
        good(5, 5),
    );
    produce(
        &topic,
        &[
            (Some(&k1), Some(&v1)),
            (Some(&k2), Some("this is not json")), // unparseable value
            (Some(&k3), Some(&v3)),                // 100000 overflows smallint
            (Some(r#"{"id":null}"#), Some(&v4)),   // a key that does not fit
            (Some(&k4), Some(&v4)),
            (
                Some(&k1),
                Some(r#"{"id":1,"amount":11,"label":"ok 1 again"}"#),
            ),
            (Some(&k5), Some(&v5)),
            (Some(&k4), None), // a tombstone deletes 4
        ],
    )
    .await;
    let to = format!("cassandra://{point}/{keyspace}");
    let cli = table_sink::Cli::try_parse_from([
        "table-sink",
        "--kafka-bootstrap-servers",
        &bootstrap(),
        "--topics",
        &topic,
        "--to",
        &to,
        "--route",
        ".*=things",
        "--group-id",
        "cassandra-dead-letters",
        "--until-caught-up",
    ])
    .expect("flags");
    let options = table_sink::cassandra::CassandraOptions::from_args(&cli.sink.cassandra, false);
    let target = table_sink::cassandra::CassandraTarget::connect(&to, options)
        .await
        .expect("target");
    let summary = table_sink::sink::run(&cli.sink, target)
        .await
        .expect("sink run");
    assert_eq!(
        (summary.records, summary.dead_letters),
        (8, 3),
        "{summary:?}"
    );

    let result = session
        .query_unpaged(
            format!("SELECT id, amount, label FROM \"{keyspace}\".things"),
            &[],
        )
        .await
        .expect("select");
    let mut things: Vec<(i64, i16, String)> = result
        .into_rows_result()
        .expect("rows")
        .rows::<(i64, i16, String)>()
        .expect("typed")
        .map(|r| r.expect("row"))
        .collect();
    things.sort();
    assert_eq!(
        things,
        vec![
            (1, 11, "ok 1 again".to_string()),
            (5, 5, "ok 5".to_string())
        ]
    );

    let letters =
        consumer::dlq::read_dlq(&bootstrap(), &format!("{topic}.dlq"), 10).expect("read the dlq");
    let mut errors: Vec<(String, String)> = letters
        .iter()
        .map(|l| (l.original_offset.clone(), l.error.clone()))
        .collect();
    errors.sort();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].0 == "1" && errors[0].1.starts_with("the value is not JSON"),
        "{errors:#?}"
    );
    assert!(
        errors[1].0 == "2" && errors[1].1.contains("does not fit a CQL smallint"),
        "{errors:#?}"
    );
    assert!(
        errors[2].0 == "3" && errors[2].1.contains("is null"),
        "{errors:#?}"
    );
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), &[])
        .await
        .ok();
}

/// The outbox topic as cdc-reader's Outbox Event Router writes it: key the order id, the event
/// id and type in headers, the value the outbox row's payload. One order, three events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_events_become_rows_keyed_by_their_header_event_id_with_a_ttl() {
    let Some(point) = contact_point() else { return };
    let (session, keyspace) = fresh_keyspace(&point, "sink_cassandra_outbox").await;
    let topic = format!(
        "{}.outbox.event.order",
        db::testing::unique_topic_prefix("sink_cassandra_outbox")
    );
    let events = [
        (
            "0b9f6a52-0000-4000-8000-000000000001",
            "OrderCreated",
            "NEW",
        ),
        ("0b9f6a52-0000-4000-8000-000000000002", "OrderPaid", "PAID"),
        (
            "0b9f6a52-0000-4000-8000-000000000003",
            "OrderShipped",
            "SHIPPED",
        ),
    ];
    let values: Vec<String> = events
        .iter()
        .map(|(_, _, status)| {
            format!(
                r#"{{"id":42,"customer_id":7,"status":"{status}","total":"12.30","currency":"EUR","items":[{{"sku":"A-1","quantity":2}}]}}"#
            )
        })
        .collect();
    let records: Vec<RecordWithHeaders<'_>> = events
        .iter()
        .zip(&values)
        .map(|((id, kind, _), value)| {
            (
                Some("\"42\""),
                Some(value.as_str()),
                vec![("id", id.to_string()), ("eventType", kind.to_string())],
            )
        })
        .collect();
    // The same event delivered twice (a reader crash): one row.
    let mut records = records;
    records.push(records[1].clone());
    produce_with_headers(&topic, &records).await;

    let to = format!("cassandra://{point}/{keyspace}");
    let cli = table_sink::Cli::try_parse_from([
        "table-sink",
        "--kafka-bootstrap-servers",
        &bootstrap(),
        "--topics",
        &topic,
        "--to",
        &to,
        "--route",
        ".*=order_events",
        "--header-to-field",
        "id=event_id,eventType=event_type",
        "--primary-key-mode",
        "record_value",
        "--primary-key-fields",
        "event_id",
        "--auto-create",
        "--ttl",
        "3600",
        "--consistency",
        "one",
        "--group-id",
        "cassandra-outbox",
        "--until-caught-up",
    ])
    .expect("flags");
    table_sink::validate(&cli).expect("valid flags");
    let options = table_sink::cassandra::CassandraOptions::from_args(&cli.sink.cassandra, false);
    let target = table_sink::cassandra::CassandraTarget::connect(&to, options)
        .await
        .expect("target");
    let summary = table_sink::sink::run(&cli.sink, target)
        .await
        .expect("sink run");
    assert_eq!(
        (summary.records, summary.dead_letters),
        (4, 0),
        "{summary:?}"
    );

    let result = session
        .query_unpaged(
            format!(
                "SELECT event_id, event_type, id, status, TTL(status) FROM \"{keyspace}\".order_events"
            ),
            &[],
        )
        .await
        .expect("select");
    let mut rows: Vec<(String, String, i64, String, Option<i32>)> = result
        .into_rows_result()
        .expect("rows")
        .rows::<(String, String, i64, String, Option<i32>)>()
        .expect("typed")
        .map(|r| r.expect("row"))
        .collect();
    rows.sort();
    let expected: Vec<(String, String, i64, String)> = events
        .iter()
        .map(|(id, kind, status)| (id.to_string(), kind.to_string(), 42, status.to_string()))
        .collect();
    let got: Vec<(String, String, i64, String)> = rows
        .iter()
        .map(|(a, b, c, d, _)| (a.clone(), b.clone(), *c, d.clone()))
        .collect();
    assert_eq!(got, expected, "one row per event, keyed by the header `id`");
    for (event_id, _, _, _, ttl) in &rows {
        let ttl = ttl.unwrap_or(0);
        assert!(
            ttl > 0 && ttl <= 3600,
            "{event_id}: TTL(status) = {ttl}, expected 1..=3600 (--ttl 3600)"
        );
    }
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), &[])
        .await
        .ok();
}

/// The offset `group` committed for partition 0 of `topic` (0 when none).
async fn committed_offset(group: &str, topic: &str) -> i64 {
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", &group)
            .create()
            .expect("consumer");
        let mut partitions = rdkafka::TopicPartitionList::new();
        partitions.add_partition(&topic, 0);
        let committed = consumer
            .committed_offsets(partitions, Duration::from_secs(10))
            .expect("committed offsets");
        match committed.elements()[0].offset() {
            rdkafka::Offset::Offset(offset) => offset,
            _ => 0,
        }
    })
    .await
    .expect("committed offsets task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cassandra_sink_rides_out_cassandra_going_away_and_catches_up() {
    let Some(point) = contact_point() else { return };
    let name = "sink_cassandra_cut";
    let (session, keyspace) = fresh_keyspace(&point, name).await;
    let prefix = db::testing::unique_topic_prefix(name);
    let (source_url, source, slot, reader) = streaming_source(name, &prefix, true).await;
    let writes = spawn_writes(&source_url, 2400, 300, 1, 1616); // 8 s: the cut lands inside

    let proxy = db::cuttable_proxy::CuttableProxy::start(&point).expect("proxy");
    let group = format!("cassandra-cut-{prefix}");
    let topic = format!("{prefix}.public.orders");
    let mut sink = db::testing::Killed(spawn_sink(
        &proxy.address().to_string(),
        &keyspace,
        &prefix,
        &group,
        false,
    ));
    let deadline = Instant::now() + Duration::from_secs(90);
    while committed_offset(&group, &topic).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the sink committed nothing for 90 s"
        );
        assert!(
            sink.0.try_wait().expect("poll sink").is_none(),
            "the sink stopped by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    proxy.cut();
    let at_cut = committed_offset(&group, &topic).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during_cut = committed_offset(&group, &topic).await;
    assert!(
        sink.0.try_wait().expect("poll sink").is_none(),
        "the sink stopped while Cassandra was away"
    );
    assert!(
        during_cut <= at_cut + 500,
        "no offset committed for writes Cassandra never acknowledged (one batch in flight at most): {at_cut} -> {during_cut}"
    );
    proxy.restore();

    let summary = writes.await.expect("producer task").expect("producer run");
    assert_eq!(summary.counts.values().sum::<u64>(), 2400);
    wait_until_reader_caught_up(&source, &slot).await;
    let expected = source_orders(&source, false).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let diff = differences(
            &expected,
            &cassandra_orders(&session, &keyspace, false).await,
        );
        if diff.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "after the cut: {diff:#?}");
        assert!(
            sink.0.try_wait().expect("poll sink").is_none(),
            "the sink stopped after the cut"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let letters =
        consumer::dlq::read_dlq(&bootstrap(), &format!("{topic}.dlq"), 10).expect("read the dlq");
    assert!(letters.is_empty(), "nothing dead-lettered: {letters:#?}");

    drop(sink);
    reader.abort();
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), &[])
        .await
        .ok();
}
