//! Produces a synthetic order history as Debezium records, for the replay benchmark
//! (`bench/replay.sh`) and for trying the consumer before cdc-reader runs.
//!
//! ```text
//! cargo run --release -p consumer --example produce_synthetic -- \
//!     --topic bench.orders --events 1000000 [--partitions 1] [--no-schemas] [--write-orders]
//! ```
//!
//! With `--write-orders` the final rows are also written to `orders` of `DATABASE_URL`
//! (which must be empty), so `order_totals` can be checked against the `GROUP BY`.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use projections::synthetic::{debezium_records, random_history, with_redeliveries};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    database: db::DatabaseArgs,
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS)]
    bootstrap_servers: String,
    /// The topic to create and fill.
    #[arg(long, env = "SYNTHETIC_TOPIC")]
    topic: String,
    /// About how many change events (records, tombstones included).
    #[arg(long, env = "SYNTHETIC_EVENTS", default_value_t = 1_000_000)]
    events: usize,
    #[arg(long, env = "SYNTHETIC_PARTITIONS", default_value_t = 1)]
    partitions: i32,
    #[arg(long, env = "SYNTHETIC_CUSTOMERS", default_value_t = 10_000)]
    customers: u64,
    #[arg(long, env = "SYNTHETIC_SEED", default_value_t = 1)]
    seed: u64,
    /// Payload-only records (JsonConverter with schemas.enable=false).
    #[arg(long, env = "SYNTHETIC_NO_SCHEMAS")]
    no_schemas: bool,
    /// Also write the final rows to `orders` (an empty table) for checking.
    #[arg(long, env = "SYNTHETIC_WRITE_ORDERS")]
    write_orders: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let args = Args::parse();
    // Deletes add a tombstone and restarts add duplicates: aim a little low.
    let changes = args.events * 9 / 10;
    let (events, final_rows) =
        random_history(args.seed, args.events / 50, changes, args.customers).finish();
    let delivered = with_redeliveries(&events, args.seed + 1, 20, 2_000);

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .create()?;
    let topic = NewTopic::new(&args.topic, args.partitions, TopicReplication::Fixed(1));
    let mut fill = true;
    for result in admin.create_topics([&topic], &AdminOptions::new()).await? {
        match result {
            Ok(_) => {}
            // Same name, same seed, same records: a filled topic is reused.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let probe: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &args.bootstrap_servers)
                    .set("group.id", "produce-synthetic-probe")
                    .create()?;
                let (_, high) = probe.fetch_watermarks(&args.topic, 0, Duration::from_secs(10))?;
                fill = high == 0;
                if !fill {
                    println!("topic {} exists and holds records: reusing it", args.topic);
                }
            }
            Err((name, code)) => anyhow::bail!("cannot create {name}: {code}"),
        }
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut produced = 0usize;
    for event in delivered.iter().filter(|_| fill) {
        for record in debezium_records(event, !args.no_schemas) {
            let mut message: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&args.topic).key(record.key.as_slice());
            if let Some(value) = &record.value {
                message = message.payload(value.as_slice());
            }
            pending.push(
                producer
                    .send_result(message)
                    .map_err(|(e, _)| e)
                    .context("enqueue")?,
            );
            produced += 1;
        }
        if pending.len() >= 100_000 {
            for delivery in pending.drain(..) {
                delivery.await?.map_err(|(e, _)| e).context("deliver")?;
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e).context("deliver")?;
    }
    if fill {
        println!(
            "produced {produced} records to {} in {:.1}s",
            args.topic,
            started.elapsed().as_secs_f64()
        );
    }

    if args.write_orders {
        let pool = db::connect(&args.database.database_url, 1).await?;
        let ids: Vec<i64> = final_rows.keys().copied().collect();
        let customers: Vec<i64> = final_rows.values().map(|r| r.customer_id).collect();
        let statuses: Vec<String> = final_rows.values().map(|r| r.status.clone()).collect();
        let totals: Vec<i64> = final_rows.values().map(|r| r.total.0).collect();
        sqlx::query(
            "INSERT INTO orders (id, customer_id, status, total) \
             SELECT i, c, s, t::numeric * 0.01 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) AS u(i, c, s, t)",
        )
        .bind(ids)
        .bind(customers)
        .bind(statuses)
        .bind(totals)
        .execute(&pool)
        .await
        .context("cannot write the final orders (is `orders` empty?)")?;
        println!(
            "wrote {} final orders to {}",
            final_rows.len(),
            db::describe(&args.database.database_url)
        );
    }
    Ok(())
}
