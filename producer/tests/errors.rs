//! Clear errors, no panics: database unreachable, schema missing, Kafka or the schema registry
//! unreachable.

mod support;

use producer::direct_publish::PublishFormat;
use producer::runner::DirectPublishConfig;
use producer::RunError;
use sqlx::{ConnectOptions, Connection};
use support::run_config;

#[tokio::test]
async fn an_unreachable_database_says_so() {
    let config = run_config(
        "postgres://playground:playground@127.0.0.1:1/playground",
        1,
        1,
        1,
        "create=1",
    );
    let error = producer::run(config).await.unwrap_err();
    assert!(
        matches!(error, RunError::Database(db::DbError::Connect { .. })),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("cannot connect to PostgreSQL at 127.0.0.1:1/playground"),
        "{message}"
    );
    assert!(
        !message.contains("playground:playground"),
        "no password in messages: {message}"
    );
}

#[tokio::test]
async fn a_missing_schema_says_to_migrate() {
    let server = db::testing::server_url();
    let mut admin = server
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap();
    sqlx::query("DROP DATABASE IF EXISTS test_producer_no_schema WITH (FORCE)")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE test_producer_no_schema")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();

    let url = db::testing::with_database(&server, "test_producer_no_schema");
    let error = producer::run(run_config(&url, 1, 1, 1, "create=1"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("run `cargo run -p db -- migrate`"),
        "{error}"
    );
    let serve = producer::http::run_server(producer::http::ServeConfig {
        database_url: url,
        listen: "127.0.0.1:0".parse().unwrap(),
        outbox_mode: Default::default(),
        pool_size: 1,
        db_wait: std::time::Duration::from_secs(3),
    })
    .await
    .unwrap_err();
    assert!(
        serve
            .to_string()
            .contains("run `cargo run -p db -- migrate`"),
        "{serve}"
    );
}

/// Runs five creates with `publish` and returns the error; checks nothing was written.
async fn direct_publish_error(name: &str, publish: DirectPublishConfig) -> String {
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let mut config = run_config(&url, 5, 1, 1, "create=1");
    config.direct_publish = Some(publish);
    let error = producer::run(config).await.unwrap_err().to_string();
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 0, "nothing written before the error: {error}");
    error
}

#[tokio::test]
async fn an_unreachable_kafka_says_so_before_writing_anything() {
    let error = direct_publish_error(
        "producer_kafka_unreachable",
        DirectPublishConfig {
            bootstrap_servers: "127.0.0.1:1".into(),
            topic: "producer_test_unreachable".into(),
            fail_probability: 0.0,
            format: PublishFormat::Json,
            schema_registry_url: db::DEFAULT_SCHEMA_REGISTRY_URL.into(),
        },
    )
    .await;
    assert!(
        error.contains("cannot reach Kafka at 127.0.0.1:1"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_schema_registry_says_so_before_writing_anything() {
    let error = direct_publish_error(
        "producer_registry_unreachable",
        DirectPublishConfig {
            bootstrap_servers: db::testing::kafka_bootstrap_servers(),
            topic: "producer_test_registry_unreachable".into(),
            fail_probability: 0.0,
            format: PublishFormat::Avro,
            schema_registry_url: "http://127.0.0.1:1/apis/ccompat/v7".into(),
        },
    )
    .await;
    assert!(
        error.contains("schema registry at http://127.0.0.1:1")
            && error.contains("scripts/stack up"),
        "{error}"
    );
}
