//! Shared helpers for the order-events tests: the processor as a process (so it can be
//! killed -9), cdc-reader and the producer in-process, and read_committed reads of topics.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use projections::order_events::{EventType, OrderEvent};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub use db::testing::{kafka_bootstrap_servers as bootstrap, slot_name, unique_topic_prefix};

/// The topics of one test: inputs under `prefix`, outputs named after it.
#[derive(Debug, Clone)]
pub struct Topics {
    pub prefix: String,
    pub output: String,
    pub dlq: String,
    pub changelog: String,
}

impl Topics {
    pub fn new(name: &str) -> Topics {
        let prefix = unique_topic_prefix(name);
        Topics {
            output: format!("{prefix}.orders.events.v1"),
            dlq: format!("{prefix}.orders.events.v1.dlq"),
            changelog: format!("{prefix}.order-events-state-changelog"),
            prefix,
        }
    }
}

/// A child process killed (-9) when dropped, so a failing test leaves none behind.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// The processor binary, with this test's topics and `extra` flags; stderr to `log`.
pub fn processor(
    topics: &Topics,
    transactional_id: &str,
    log: &PathBuf,
    extra: &[&str],
) -> Running {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_order-events"))
        .args(["--bootstrap-servers", &bootstrap()])
        .args(["--source-prefix", &topics.prefix])
        .args(["--output-topic", &topics.output])
        .args(["--dlq-topic", &topics.dlq])
        .args(["--changelog-topic", &topics.changelog])
        .args(["--group-id", &format!("{}-group", topics.prefix)])
        .args(["--transactional-id", transactional_id])
        .args(extra)
        .env("RUST_LOG", "info,rdkafka=warn")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map(Running)
        .expect("start order-events")
}

pub fn log_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.log", unique_topic_prefix(name)));
    let _ = std::fs::remove_file(&path);
    path
}

/// Starts cdc-reader in-process with transaction metadata; returns its stop trigger.
pub fn start_reader(
    name: &str,
    prefix: &str,
    url: &str,
) -> (
    tokio::task::JoinHandle<Result<cdc_reader::reader::RunSummary, cdc_reader::ReaderError>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let slot = slot_name(name);
    let publication = format!("{name}_pub");
    let bootstrap = bootstrap();
    let args = cdc_reader::config::ReaderArgs::try_parse_from([
        "cdc-reader",
        "--database-url",
        url,
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--slot-name",
        &slot,
        "--publication-name",
        &publication,
        "--topic-prefix",
        prefix,
        "--status-interval",
        "200ms",
        "--provide-transaction-metadata",
        "--snapshot-mode",
        "no-data",
    ])
    .expect("reader flags");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        cdc_reader::reader::run(args, async {
            let _ = stopped.await;
        })
        .await
    });
    (handle, stop)
}

pub use db::testing::wait_until_streaming;

/// A producer run in-process: `orders` operations at `rate`/s.
pub fn start_producer(
    url: &str,
    orders: u64,
    rate: u64,
) -> tokio::task::JoinHandle<Result<producer::report::Summary, producer::runner::RunError>> {
    let cli = producer::cli::Cli::try_parse_from([
        "producer",
        "--database-url",
        url,
        "--orders",
        &orders.to_string(),
        "--rate",
        &rate.to_string(),
        "--mix",
        "create=50,update=30,cancel=10,delete=10",
        "--seed",
        "15",
        "--no-progress",
    ])
    .expect("producer flags");
    tokio::spawn(producer::run(cli.run.into_config()))
}

/// One record read back: key, value, headers as text.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    pub key: Option<String>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// Everything on `topic` now, read with `isolation` (`read_committed` / `read_uncommitted`).
pub fn read_topic(topic: &str, isolation: &str) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", "order-events-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Vec::new();
    }
    let mut list = TopicPartitionList::new();
    for partition in &partitions {
        list.add_partition_offset(topic, *partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut open = partitions.len();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while open > 0 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                use rdkafka::message::Headers;
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(ReadRecord {
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            None => {}
        }
    }
    records
}

/// The events on the output topic, read_committed, in topic order.
pub fn events(topic: &str) -> Vec<OrderEvent> {
    read_topic(topic, "read_committed")
        .into_iter()
        .filter_map(|r| r.value)
        .map(|v| OrderEvent::from_json(&v).expect("an event"))
        .collect()
}

/// What each order looks like in PostgreSQL: (customer, status, total, currency, items as
/// (line, sku, quantity, unit price)).
pub type DbOrder = (i64, String, String, String, Vec<(i32, String, i32, String)>);

pub async fn database_orders(pool: &sqlx::PgPool) -> BTreeMap<i64, DbOrder> {
    let rows: Vec<(i64, i64, String, String, String)> =
        sqlx::query_as("SELECT id, customer_id, status, total::text, currency FROM orders")
            .fetch_all(pool)
            .await
            .unwrap();
    let items: Vec<(i64, i32, String, i32, String)> = sqlx::query_as(
        "SELECT order_id, line_no, sku, quantity, unit_price::text FROM order_items ORDER BY order_id, line_no",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut orders: BTreeMap<i64, DbOrder> = rows
        .into_iter()
        .map(|(id, customer, status, total, currency)| {
            (id, (customer, status, total, currency, Vec::new()))
        })
        .collect();
    for (order_id, line, sku, quantity, price) in items {
        if let Some(order) = orders.get_mut(&order_id) {
            order.4.push((line, sku, quantity, price));
        }
    }
    orders
}

/// What the events say each live order looks like: the last event per order.
pub fn orders_from_events(events: &[OrderEvent]) -> BTreeMap<i64, DbOrder> {
    let mut last: BTreeMap<i64, &OrderEvent> = BTreeMap::new();
    for event in events {
        last.insert(event.order_id, event);
    }
    last.into_iter()
        .filter(|(_, e)| e.event_type != EventType::OrderDeleted)
        .filter_map(|(id, e)| {
            let order = e.order.as_ref()?;
            let items = e
                .items
                .iter()
                .map(|i| {
                    (
                        i.line_no,
                        i.sku.clone(),
                        i.quantity,
                        i.unit_price.to_string(),
                    )
                })
                .collect();
            Some((
                id,
                (
                    order.customer_id,
                    order.status.clone(),
                    order.total.to_string(),
                    order.currency.clone(),
                    items,
                ),
            ))
        })
        .collect()
}

/// Rows where order_totals and the GROUP BY over orders disagree.
pub async fn totals_differences(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "WITH expected AS (SELECT customer_id, count(*)::bigint AS order_count, sum(total)::numeric AS total_amount
                             FROM orders GROUP BY customer_id),
              actual AS (SELECT customer_id, order_count, total_amount FROM order_totals)
         SELECT count(*) FROM ((SELECT * FROM expected EXCEPT SELECT * FROM actual)
                               UNION ALL (SELECT * FROM actual EXCEPT SELECT * FROM expected)) d",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Runs `consumer --from domain --until-caught-up` (plus `extra`) on `topic`.
pub async fn consume_domain(url: &str, topic: &str, extra: &[&str]) {
    let bootstrap = bootstrap();
    let mut argv = vec![
        "consumer",
        "--database-url",
        url,
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--from",
        "domain",
        "--topics",
        topic,
        "--until-caught-up",
    ];
    argv.extend_from_slice(extra);
    consumer::run(consumer::Cli::try_parse_from(argv).expect("consumer flags"))
        .await
        .expect("consumer run");
}
