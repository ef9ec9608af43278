//! The rule "no value PostgreSQL accepts stops the reader", as a property against the real server.
//!
//! proptest generates rows for a table with a column of every kind the reader maps, each value
//! drawn from that type's special values and range ends (numeric NaN and infinities, float -0,
//! `infinity` dates, BC and far-future timestamps, 24:00:00, interval extremes, money extremes,
//! empty and multi-dimensional arrays, NULLs inside arrays, long strings) or NULL. The rows go into
//! PostgreSQL; the reader streams them to Kafka. The property: the reader is still running and
//! wrote exactly one change event per row, each of them valid JSON.

mod common;

use std::time::Duration;

use common::{read_topic, reader_args, unique_prefix};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// Each column: its SQL type and the literals (or NULL) a row can hold.
const COLUMNS: &[(&str, &[&str])] = &[
    (
        "numeric",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
            "'1e-300'",
            "'123456789012345678901234567890.123456789'",
        ],
    ),
    (
        "numeric(10,2)",
        &["'NaN'", "'-0.00'", "'99999999.99'", "'-99999999.99'"],
    ),
    (
        "numeric[]",
        &[
            "'{1.5,NaN}'",
            "'{Infinity}'",
            "'{}'",
            "'{NULL}'",
            "'{{1,2},{3,4}}'",
        ],
    ),
    (
        "real",
        &[
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
            "'3.4028235e+38'",
            "'1e-45'",
        ],
    ),
    (
        "double precision",
        &[
            "'NaN'",
            "'-Infinity'",
            "'-0'",
            "'4.9e-324'",
            "'1.7976931348623157e+308'",
        ],
    ),
    ("smallint", &["-32768", "32767"]),
    ("bigint", &["-9223372036854775808", "9223372036854775807"]),
    (
        "date",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-11-24 BC'",
            "'5874897-12-31'",
            "'0001-01-01 BC'",
        ],
    ),
    (
        "timestamp",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-11-24 00:00:00 BC'",
            "'294276-12-31 23:59:59.999999'",
        ],
    ),
    (
        "timestamp(3)",
        &[
            "'294276-12-31 23:59:59.999'",
            "'4713-11-24 00:00:00 BC'",
            "'infinity'",
        ],
    ),
    (
        "timestamptz",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-11-24 00:00:00+00 BC'",
            "'294276-12-31 23:59:59.999999+00'",
        ],
    ),
    ("time", &["'24:00:00'", "'00:00:00'", "'23:59:59.999999'"]),
    (
        "timetz",
        &[
            "'24:00:00+00'",
            "'23:59:59.999999-15:59'",
            "'00:00:00+15:59'",
        ],
    ),
    (
        "interval",
        &[
            "'178000000 years'",
            "'-178000000 years'",
            "'2147483647 days 2562047788:00:54.775807'",
            "'-2147483648 days -2562047788:00:54.775807'",
        ],
    ),
    (
        "money",
        &["'92233720368547758.07'", "'-92233720368547758.08'", "'0'"],
    ),
    (
        "text",
        &[
            "''",
            "' '",
            "repeat('x', 100000)",
            "E'tab\\there \\u00e9 \\U0001F389'",
        ],
    ),
    (
        "text[]",
        &[
            "'{}'",
            "'{NULL,\"\",NULL}'",
            "'{{a,b},{c,NULL}}'",
            "'[2:3]={x,y}'",
        ],
    ),
    (
        "integer[]",
        &["'{}'", "'[0:2]={7,8,9}'", "'{{1,2},{3,4}}'", "'{NULL}'"],
    ),
    (
        "bytea",
        &["''", "'\\x00ff'", "decode(repeat('ab', 50000), 'hex')"],
    ),
    ("jsonb", &["'{}'", "'[]'", "'\"\"'", "'{\"a\": [1e400]}'"]),
    ("bit(8)", &["B'00000000'", "B'11111111'"]),
    ("bit varying", &["B''", "B'1'", "B'101'"]),
    (
        "point",
        &["'(0,0)'", "'(1e308,-1e308)'", "'(NaN,Infinity)'"],
    ),
    ("tsvector", &["''", "'a b'"]),
    ("int4range", &["'empty'", "'(,)'"]),
    ("uuid", &["'00000000-0000-0000-0000-000000000000'"]),
];

/// A row: per column, an index into its literals, or None for NULL.
fn rows(count: usize) -> impl Strategy<Value = Vec<Vec<Option<usize>>>> {
    let row: Vec<_> = COLUMNS
        .iter()
        .map(|(_, literals)| proptest::option::of(0..literals.len()))
        .collect();
    proptest::collection::vec(row, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_never_stop_the_reader() {
    const ROWS: usize = 120;
    let name = "values_never_stop";
    let prefix = unique_prefix(name);
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let columns: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(index, (sql_type, _))| format!("c{index} {sql_type}"))
        .collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE special (id integer PRIMARY KEY, {})",
        columns.join(", ")
    )))
    .execute(&pool)
    .await
    .unwrap();

    let (handle, stop) = common::start_reader(reader_args(
        name,
        &prefix,
        &url,
        &["--tables", "public.special"],
    ));
    common::wait_until_streaming(&pool, &common::slot_name(name)).await;

    // A deterministic run: the same rows every time, so a failure can be repeated.
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let generated = rows(ROWS).new_tree(&mut runner).unwrap().current();
    for (id, row) in generated.iter().enumerate() {
        let values: Vec<&str> = row
            .iter()
            .zip(COLUMNS)
            .map(|(choice, (_, literals))| choice.map_or("NULL", |index| literals[index]))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO special VALUES ({id}, {})",
            values.join(", ")
        )))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("row {id} ({values:?}): {e}"));
    }

    let records = read_topic(
        &format!("{prefix}.public.special"),
        ROWS,
        Duration::from_secs(60),
    );
    assert!(
        !handle.is_finished(),
        "the reader stopped: {:?}",
        handle.await
    );
    assert_eq!(records.len(), ROWS, "one record per row");
    for (id, record) in records.iter().enumerate() {
        assert_eq!(record.op(), Some("c"));
        assert_eq!(record.payload()["after"]["id"], id as i64, "rows in order");
    }
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    common::drop_slot(&pool, &common::slot_name(name)).await;
}
