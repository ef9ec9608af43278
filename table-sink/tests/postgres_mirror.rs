//! table-sink into PostgreSQL, for real: the producer writes creates, updates, cancels and
//! deletes; cdc-reader streams them to Kafka; table-sink mirrors `orders` and `order_items`
//! into another database while it is killed (kill -9) five times and cdc-reader is crashed
//! once. Afterwards the mirror equals the source, every column, `EXCEPT` both ways; then an
//! `ADD COLUMN` on the source reaches the mirror while the sink keeps running. A second test
//! sends bad records (unparseable, a key that does not fit, a value that overflows its column)
//! and checks they land in the dead-letter topic while the good ones are written. A third cuts
//! the sink off from its target database for 4 s mid-run (a TCP proxy between them,
//! `db::cuttable_proxy`): the sink waits and retries, dead-letters nothing, and catches up.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use sqlx::PgPool;

use common::*;

/// The sink binary, reading `topics` into `mirror_url` (schema `mirror`), as a process.
fn spawn_sink(mirror_url: &str, topics: &str, prefix: &str, until_caught_up: bool) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_table-sink"));
    command
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
        .env("TABLE_SINK_TOPICS", topics)
        .env("TABLE_SINK_TO", mirror_url)
        .env("TABLE_SINK_GROUP_ID", format!("mirror-{prefix}"))
        .env(
            "TABLE_SINK_ROUTES",
            format!(r"{}\.public\.(.*)=mirror.$1", regex_escape(prefix)),
        )
        .env("TABLE_SINK_SCHEMA_EVOLUTION", "basic")
        .env("TABLE_SINK_BATCH_SIZE", "500")
        .env("TABLE_SINK_BATCH_TIMEOUT", "50ms")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if until_caught_up {
        command.env("TABLE_SINK_UNTIL_CAUGHT_UP", "true");
    }
    command.spawn().expect("spawn table-sink")
}

fn regex_escape(text: &str) -> String {
    regex::escape(text)
}

/// Every row of `table` as JSON text (jsonb: keys sorted, so column order does not matter).
async fn rows(pool: &PgPool, table: &str) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(t)::text FROM {table} t"
    )))
    .fetch_all(pool)
    .await
    .unwrap_or_default()
    .into_iter()
    .collect()
}

/// `name type` of each column of `schema.table`, in name order.
async fn column_types(pool: &PgPool, schema: &str, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attname",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("columns")
}

/// The source rows the mirror lacks and the mirror rows the source lacks (`EXCEPT` both ways).
async fn differences(source: &PgPool, mirror: &PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["orders", "order_items"] {
        let expected = rows(source, &format!("public.{table}")).await;
        let actual = rows(mirror, &format!("mirror.{table}")).await;
        for missing in expected.difference(&actual).take(3) {
            out.push(format!("{table}: mirror lacks {missing}"));
        }
        for extra in actual.difference(&expected).take(3) {
            out.push(format!("{table}: mirror has extra {extra}"));
        }
        let counts = (
            expected.difference(&actual).count(),
            actual.difference(&expected).count(),
        );
        if counts != (0, 0) {
            out.push(format!(
                "{table}: {} missing, {} extra of {}",
                counts.0,
                counts.1,
                expected.len()
            ));
        }
    }
    out
}

async fn wait_until_equal(source: &PgPool, mirror: &PgPool, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let diff = differences(source, mirror).await;
        if diff.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the mirror differs: {diff:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stored_offsets(mirror: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM table_sink_offsets")
        .fetch_one(mirror)
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_equals_the_source_after_kills_and_follows_an_added_column() {
    let name = "sink_mirror";
    let prefix = db::testing::unique_topic_prefix(name);
    let (source_url, source) = db::testing::fresh_database(name)
        .await
        .expect("source database");
    let (mirror_url, mirror) = db::testing::fresh_database("sink_mirror_target")
        .await
        .expect("mirror database");
    let slot = db::testing::slot_name(name);
    let publication = format!("{name}_pub");
    let topics = format!("{prefix}.public.orders,{prefix}.public.order_items");

    let mut reader = start_reader(&source_url, &slot, &publication, &prefix);
    let deadline = Instant::now() + Duration::from_secs(60);
    while confirmed_flush_lsn(&source, &slot).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "cdc-reader never started streaming"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 10 s of writes: five sink starts (each joins the group afresh) must fit in them on a
    // quiet machine too.
    let writes = spawn_writes(&source_url, 4000, 400, 2, 16);

    // kill -9 the sink five times while the producer writes; crash cdc-reader once between.
    let mut rng = 2026u64;
    let mut kills = 0;
    while kills < 5 {
        // The topics appear with cdc-reader's first records.
        let mut child = spawn_sink(&mirror_url, &topics, &prefix, false);
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after_progress = Duration::from_millis(100 + (rng >> 33) % 700);
        // Kill it while it writes: once it stored offsets beyond where it started, a bit later.
        let before = stored_offsets(&mirror).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while stored_offsets(&mirror).await <= before {
            assert!(Instant::now() < deadline, "the sink wrote nothing for 30 s");
            assert!(
                child.try_wait().expect("poll sink").is_none(),
                "the sink stopped by itself"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(after_progress).await;
        assert!(
            child.try_wait().expect("poll sink").is_none(),
            "the sink stopped by itself"
        );
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let wait = after_progress;
        kills += 1;
        eprintln!(
            "kill {kills}, {wait:?} after its first batch: {} offsets stored",
            stored_offsets(&mirror).await
        );
        if kills == 2 {
            // A crash, not a stop: the task is dropped at its next await, nothing flushed.
            reader.abort();
            let _ = reader.await;
            let deadline = Instant::now() + Duration::from_secs(30);
            while confirmed_flush_lsn(&source, &slot).await.is_some() {
                assert!(Instant::now() < deadline, "the slot stayed active");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            reader = start_reader(&source_url, &slot, &publication, &prefix);
            eprintln!("cdc-reader crashed and restarted");
        }
    }
    assert!(
        !writes.is_finished(),
        "the kills landed while the producer still wrote"
    );
    let summary = writes.await.expect("producer task").expect("producer run");
    assert_eq!(summary.counts.values().sum::<u64>(), 4000);
    wait_until_reader_caught_up(&source, &slot).await;

    // To the end, in one run.
    let status = spawn_sink(&mirror_url, &topics, &prefix, true)
        .wait()
        .expect("final run");
    assert!(status.success(), "final run: {status}");
    assert_eq!(differences(&source, &mirror).await, Vec::<String>::new());
    for table in ["orders", "order_items"] {
        assert_eq!(
            column_types(&mirror, "mirror", table).await,
            column_types(&source, "public", table).await,
            "the column types of {table}"
        );
    }

    // ADD COLUMN on the source, while one sink keeps running.
    let mut follower = spawn_sink(&mirror_url, &topics, &prefix, false);
    sqlx::query("ALTER TABLE orders ADD COLUMN note text")
        .execute(&source)
        .await
        .expect("add column");
    sqlx::query("UPDATE orders SET note = 'gift ' || id WHERE id % 7 = 0")
        .execute(&source)
        .await
        .expect("update");
    wait_until_equal(
        &source,
        &mirror,
        Duration::from_secs(30),
        "after ADD COLUMN",
    )
    .await;
    assert!(
        follower.try_wait().expect("poll").is_none(),
        "the sink kept running"
    );
    follower.kill().ok();
    follower.wait().ok();
    assert!(column_types(&mirror, "mirror", "orders")
        .await
        .contains(&"note text".to_string()));

    reader.abort();
    let _ = reader.await;
    for _ in 0..100 {
        let dropped = sqlx::query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active")
            .bind(&slot)
            .execute(&source)
            .await;
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1")
                .bind(&slot)
                .fetch_one(&source)
                .await
                .unwrap_or(0);
        if dropped.is_ok() && left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letter_topic_and_the_sink_goes_on() {
    let (mirror_url, mirror) = db::testing::fresh_database("sink_dead_letters")
        .await
        .expect("database");
    sqlx::query(
        "CREATE TABLE things (id bigint PRIMARY KEY, amount smallint NOT NULL, label text)",
    )
    .execute(&mirror)
    .await
    .expect("create things");
    let topic = format!("{}.things", db::testing::unique_topic_prefix("sink_dlq"));
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
    let cli = table_sink::Cli::try_parse_from([
        "table-sink",
        "--kafka-bootstrap-servers",
        &bootstrap(),
        "--topics",
        &topic,
        "--to",
        &mirror_url,
        "--route",
        r".*=public.things",
        "--group-id",
        "dead-letters",
        "--until-caught-up",
    ])
    .expect("flags");
    let summary = table_sink::sink::run(
        &cli.sink,
        table_sink::postgres::PostgresTarget::connect(
            &mirror_url,
            table_sink::postgres::PostgresOptions {
                insert_mode: cli.sink.insert_mode,
                schema_evolution: cli.sink.schema_evolution,
            },
        )
        .await
        .expect("target"),
    )
    .await
    .expect("sink run");
    assert_eq!(
        (summary.records, summary.dead_letters),
        (8, 3),
        "{summary:?}"
    );
    let things: Vec<(i64, i16, String)> =
        sqlx::query_as("SELECT id, amount, label FROM things ORDER BY id")
            .fetch_all(&mirror)
            .await
            .expect("things");
    assert_eq!(
        things,
        vec![
            (1, 11, "ok 1 again".to_string()),
            (5, 5, "ok 5".to_string())
        ]
    );
    assert_eq!(
        stored_offsets(&mirror).await,
        8,
        "every offset is stored, dead letters included"
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
        errors[1].0 == "2" && errors[1].1.contains("out of range"),
        "{errors:#?}"
    );
    assert!(
        errors[2].0 == "3" && errors[2].1.contains("is null"),
        "{errors:#?}"
    );
}

/// `url` (the shared server) with its `host:port` replaced by `address` (a proxy in front of it).
fn through(url: &str, address: std::net::SocketAddr) -> String {
    let (head, rest) = url.split_once('@').expect("user@host in the URL");
    let (_authority, path) = rest.split_once('/').expect("a database in the URL");
    format!("{head}@{address}/{path}")
}

/// `host:port` of the server in `url`.
fn authority(url: &str) -> String {
    let rest = url.split_once('@').map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_rides_out_its_target_going_away_and_catches_up() {
    let name = "sink_target_cut";
    let prefix = db::testing::unique_topic_prefix(name);
    let (mirror_url, mirror) = db::testing::fresh_database("sink_target_cut_mirror")
        .await
        .expect("mirror database");
    let topics = format!("{prefix}.public.orders,{prefix}.public.order_items");
    let (source_url, source, slot, reader) = streaming_source(name, &prefix, false).await;
    let writes = spawn_writes(&source_url, 2400, 300, 1, 27); // 8 s: the cut lands inside

    let proxy = db::cuttable_proxy::CuttableProxy::start(&authority(&mirror_url)).expect("proxy");
    let sink = db::testing::Killed(spawn_sink(
        &through(&mirror_url, proxy.address()),
        &topics,
        &prefix,
        false,
    ));
    let mut sink = sink;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_offsets(&mirror).await == 0 {
        assert!(Instant::now() < deadline, "the sink wrote nothing for 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.cut();
    let at_cut = stored_offsets(&mirror).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        sink.0.try_wait().expect("poll sink").is_none(),
        "the sink stopped while its target was away"
    );
    let during_cut = stored_offsets(&mirror).await;
    assert!(
        during_cut <= at_cut + 500,
        "no batch commits through a cut (one in flight at most): {at_cut} -> {during_cut}"
    );
    proxy.restore();

    let summary = writes.await.expect("producer task").expect("producer run");
    assert_eq!(summary.counts.values().sum::<u64>(), 2400);
    wait_until_reader_caught_up(&source, &slot).await;
    wait_until_equal(&source, &mirror, Duration::from_secs(90), "after the cut").await;
    assert!(
        sink.0.try_wait().expect("poll sink").is_none(),
        "the sink kept running"
    );
    assert!(
        stored_offsets(&mirror).await > during_cut,
        "it caught up past the cut"
    );
    for topic in topics.split(',') {
        let letters = consumer::dlq::read_dlq(&bootstrap(), &format!("{topic}.dlq"), 10)
            .expect("read the dlq");
        assert!(letters.is_empty(), "nothing dead-lettered: {letters:#?}");
    }
    reader.abort();
}
