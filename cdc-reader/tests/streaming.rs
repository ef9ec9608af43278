//! cdc-reader against the real PostgreSQL and Kafka: row changes on the playground tables come
//! out as Debezium envelopes on the expected topics, and the slot only moves past what Kafka has.

mod common;

use std::time::Duration;

use common::{confirmed_flush_lsn, current_wal_lsn, read_topic, reader_args, unique_prefix};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_updates_and_deletes_become_debezium_envelopes_on_their_topics() {
    let name = "reader_basic";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let (handle, stop) = common::start_reader(reader_args(name, &prefix, &url, &[]));
    common::wait_until_streaming(&pool, &common::slot_name(name)).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id, customer_id, status, total, currency, created_at, updated_at) VALUES (7, 42, 'NEW', 12.30, 'EUR', '2026-11-23 10:00:00.123456+00', '2026-11-23 10:00:00+00')")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price) VALUES (7, 1, 'SKU-1', 3, 4.10)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("UPDATE orders SET status = 'PAID', total = 99.99 WHERE id = 7")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM order_items WHERE order_id = 7")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM orders WHERE id = 7")
        .execute(&pool)
        .await
        .unwrap();
    let written_up_to = current_wal_lsn(&pool).await;

    let orders = read_topic(
        &format!("{prefix}.public.orders"),
        4,
        Duration::from_secs(30),
    );
    let ops: Vec<Option<&str>> = orders.iter().map(|r| r.op()).collect();
    assert_eq!(
        ops,
        vec![Some("c"), Some("u"), Some("d"), None],
        "create, update, delete, tombstone"
    );
    for record in &orders {
        assert_eq!(record.key["payload"], json!({"id": 7}));
        assert_eq!(
            record.key["schema"]["name"],
            json!(format!("{prefix}.public.orders.Key"))
        );
    }

    let created = orders[0].payload();
    assert_eq!(created["before"], json!(null));
    assert_eq!(created["after"]["id"], json!(7));
    assert_eq!(created["after"]["customer_id"], json!(42));
    assert_eq!(created["after"]["status"], json!("NEW"));
    assert_eq!(
        created["after"]["total"],
        json!("BM4="),
        "12.30 as Decimal(12,2): unscaled 1230 = 0x04CE"
    );
    assert_eq!(
        created["after"]["created_at"],
        json!("2026-11-23T10:00:00.123456Z")
    );
    assert_eq!(created["source"]["connector"], json!("postgresql"));
    assert_eq!(created["source"]["name"], json!(prefix));
    assert_eq!(
        created["source"]["db"],
        json!(format!("test_{}", db::testing::unique_name(name)))
    );
    assert_eq!(created["source"]["schema"], json!("public"));
    assert_eq!(created["source"]["table"], json!("orders"));
    assert_eq!(created["source"]["snapshot"], json!("false"));
    assert!(created["source"]["txId"].is_i64());
    assert!(created["source"]["lsn"].is_i64());
    assert!(created["ts_ms"].is_i64() && created["ts_us"].is_i64() && created["ts_ns"].is_i64());

    let schema = &orders[0].value["schema"];
    assert_eq!(
        schema["name"],
        json!(format!("{prefix}.public.orders.Envelope"))
    );
    let after_fields = &schema["fields"][1]["fields"];
    let total = after_fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "total")
        .unwrap();
    assert_eq!(
        total["name"],
        json!("org.apache.kafka.connect.data.Decimal")
    );
    assert_eq!(
        total["parameters"],
        json!({"scale": "2", "connect.decimal.precision": "12"})
    );

    let updated = orders[1].payload();
    assert_eq!(
        updated["before"],
        json!(null),
        "REPLICA IDENTITY DEFAULT: no before-image on update"
    );
    assert_eq!(updated["after"]["status"], json!("PAID"));
    assert_eq!(
        updated["after"]["total"],
        json!("Jw8="),
        "99.99: unscaled 9999 = 0x270F"
    );

    let deleted = orders[2].payload();
    assert_eq!(deleted["after"], json!(null));
    assert_eq!(
        deleted["before"]["id"],
        json!(7),
        "DEFAULT: the delete carries the key"
    );
    assert_eq!(orders[3].value, json!(null), "tombstone");

    let items = read_topic(
        &format!("{prefix}.public.order_items"),
        3,
        Duration::from_secs(30),
    );
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].key["payload"],
        json!({"order_id": 7, "line_no": 1})
    );
    assert_eq!(items[0].payload()["after"]["sku"], json!("SKU-1"));
    assert_eq!(
        items[0].payload()["after"]["unit_price"],
        json!("AZo="),
        "4.10: unscaled 410 = 0x019A"
    );
    assert_eq!(
        items[0].payload()["source"]["txId"],
        orders[0].payload()["source"]["txId"],
        "order and item came from one transaction"
    );

    // Everything was acknowledged, so the slot moves up to (at least) the last commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while confirmed_flush_lsn(&pool, &common::slot_name(name)).await < written_up_to.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "confirmed_flush_lsn never reached {written_up_to}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _ = stop.send(());
    let summary = handle
        .await
        .unwrap()
        .expect("reader ends cleanly on shutdown");
    assert_eq!(summary.end, cdc_reader::stream::StreamEnd::Shutdown);
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_a_missing_table_and_a_busy_slot() {
    let name = "reader_errors";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();

    let args = reader_args(
        name,
        name,
        &url,
        &["--tables", "public.no_such_table", "--sink", "stdout"],
    );
    let error = cdc_reader::reader::run(args, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no_such_table does not exist"),
        "{error}"
    );

    let (handle, stop) = common::start_reader(reader_args(name, name, &url, &[]));
    common::wait_until_streaming(&pool, &common::slot_name(name)).await;
    let second =
        cdc_reader::reader::run(reader_args(name, name, &url, &[]), std::future::pending())
            .await
            .unwrap_err();
    assert!(
        second.to_string().contains("in use by another process"),
        "{second}"
    );
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do_for_a_role_without_replication_and_an_unreachable_kafka() {
    let name = "reader_more_errors";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();

    // A role that may log in but not replicate.
    let role = "cdc_test_no_replication";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
         CREATE ROLE {role} LOGIN PASSWORD 'secret'; END IF; END $$"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let database = url.rsplit('/').next().unwrap().to_string();
    let without_replication = format!(
        "postgres://{role}:secret@{}/{database}",
        url.split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
    );
    let mut args = reader_args(name, name, &without_replication, &["--sink", "stdout"]);
    args.database.database_url = without_replication.clone();
    let error = cdc_reader::reader::run(args, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("ALTER ROLE"), "{error}");

    // Kafka that does not answer.
    let mut args = reader_args(name, name, &url, &[]);
    args.kafka_bootstrap_servers = "127.0.0.1:1".to_string();
    let error = cdc_reader::reader::run(args, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("scripts/stack up"), "{error}");
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_envelopes_to_stdout_and_exits_0_on_sigterm() {
    let name = "reader_stdout";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let child = common::reader_process(name, name, &url, &["--sink", "stdout"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start cdc-reader");
    common::wait_until_streaming(&pool, &common::slot_name(name)).await;
    sqlx::query("INSERT INTO orders (id, customer_id, total) VALUES (1, 2, 3.00)")
        .execute(&pool)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while confirmed_flush_lsn(&pool, &common::slot_name(name)).await
        < current_wal_lsn(&pool).await.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the insert was never confirmed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM: the reader finishes what is in flight and exits 0.
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("one line")).unwrap();
    assert_eq!(record["topic"], json!(format!("{name}.public.orders")));
    assert_eq!(record["key"]["payload"], json!({"id": 1}));
    assert_eq!(record["value"]["payload"]["op"], json!("c"));
    common::drop_slot(&pool, &common::slot_name(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_and_cleartext_logins_work_too() {
    // scripts/stack's pg_hba.conf sends these two roles through the older password methods; a
    // role without REPLICATION gets as far as the replication privilege check, which proves the
    // login itself worked (a wrong password fails earlier, at authentication).
    let name = "reader_auth";
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL password_encryption = 'md5'")
        .execute(&mut *tx)
        .await
        .unwrap();
    for role in ["cdc_test_md5", "cdc_test_password"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
             CREATE ROLE {role} LOGIN PASSWORD 'secret'; END IF; END $$"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let host_and_db = url.split('@').nth(1).unwrap().to_string();
    for role in ["cdc_test_md5", "cdc_test_password"] {
        let mut args = reader_args(name, name, &url, &["--sink", "stdout"]);
        args.database.database_url = format!("postgres://{role}:secret@{host_and_db}");
        let error = cdc_reader::reader::run(args.clone(), std::future::pending())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ALTER ROLE"),
            "{role}: logged in, then refused replication: {error}"
        );
        args.database.database_url = format!("postgres://{role}:wrong@{host_and_db}");
        let error = cdc_reader::reader::run(args, std::future::pending())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("password authentication failed"),
            "{role}: {error}"
        );
    }
}
