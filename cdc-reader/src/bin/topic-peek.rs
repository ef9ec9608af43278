//! `topic-peek`: look into Kafka without Kafka's own tools (our machines have no Kafka CLI).
//!
//! ```text
//! cargo run -p cdc-reader --bin topic-peek -- --list                      # topics, partitions, records
//! cargo run -p cdc-reader --bin topic-peek -- dbserver1.public.orders     # the last 3 records, pretty
//! cargo run -p cdc-reader --bin topic-peek -- dbserver1.public.orders --last 10 --compact
//! ```
//!
//! A learner's tool, used by scripts/demo: it reads, never writes, and joins no consumer group.
//!
//! Records in the Confluent wire format (cdc-reader `--format avro`) are decoded with their
//! writer schema from the schema registry (`--schema-registry-url`): the key or value shows as
//! `{"schema_id":7,"subject":"dbserver1.public.orders-value","datum":{...}}`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

#[derive(Debug, Parser)]
#[command(
    name = "topic-peek",
    version,
    about = "List Kafka topics, or print the last records of one"
)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS)]
    kafka_bootstrap_servers: String,
    /// List the topics with their partitions and record counts (internal topics hidden).
    #[arg(long)]
    list: bool,
    /// The topic to print.
    topic: Option<String>,
    /// How many records (the most recent ones, over all partitions).
    #[arg(long, default_value_t = 3)]
    last: i64,
    /// One line per record instead of indented JSON.
    #[arg(long)]
    compact: bool,
    /// Print only the value's payload (without the JsonConverter schema).
    #[arg(long)]
    payload_only: bool,
    /// The schema registry's Confluent API, to decode Avro records.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = cdc_reader::config::DEFAULT_SCHEMA_REGISTRY_URL)]
    schema_registry_url: String,
}

/// Decodes Avro keys and values through the registry (a small runtime for its async client).
struct AvroPeek {
    runtime: tokio::runtime::Runtime,
    decoder: schema_registry::AvroDecoder,
}

impl AvroPeek {
    /// `{"schema_id", "subject", "datum"}`, or the error and the bytes in hex.
    fn show(&mut self, bytes: &[u8]) -> serde_json::Value {
        let decoder = &mut self.decoder;
        self.runtime.block_on(async {
            match decoder.decode(bytes).await {
                Ok(record) => {
                    let subjects = decoder
                        .client()
                        .subjects_of(record.schema_id())
                        .await
                        .unwrap_or_default();
                    let subject: Vec<String> = subjects
                        .iter()
                        .map(|(subject, version)| format!("{subject} (version {version})"))
                        .collect();
                    serde_json::json!({"schema_id": record.schema_id(), "subject": subject.join(", "), "datum": record.payload})
                }
                Err(error) => serde_json::json!({
                    "avro_error": error.to_string(),
                    "bytes": bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
                }),
            }
        })
    }
}

fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let args = Args::parse();
    db::check_args::exit_if_only_checking("topic-peek");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.kafka_bootstrap_servers)
        .set("enable.auto.commit", "false")
        .set("group.id", "topic-peek")
        .set("isolation.level", "read_committed")
        .create()
        .context("creating a Kafka client")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(args.topic.as_deref(), timeout)
        .with_context(|| {
            format!(
                "Kafka at {} does not answer: start it with `scripts/stack up`",
                args.kafka_bootstrap_servers
            )
        })?;

    if args.list || args.topic.is_none() {
        let mut topics: Vec<_> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__consumer"))
            .collect();
        topics.sort_by_key(|t| t.name().to_string());
        println!("{:<56} {:>10} {:>10}", "topic", "partitions", "records");
        for topic in topics {
            let mut records = 0;
            for partition in topic.partitions() {
                let (low, high) =
                    consumer.fetch_watermarks(topic.name(), partition.id(), timeout)?;
                records += high - low;
            }
            println!(
                "{:<56} {:>10} {:>10}",
                topic.name(),
                topic.partitions().len(),
                records
            );
        }
        return Ok(());
    }

    let topic = args.topic.as_deref().unwrap_or_default();
    let Some(found) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    else {
        bail!("topic {topic} does not exist (list them with --list)");
    };
    let partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    let messages = last_messages(&consumer, topic, &partitions, args.last, timeout)?;
    let mut avro = AvroPeek {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime for the registry client")?,
        decoder: schema_registry::AvroDecoder::new(schema_registry::RegistryClient::new(
            &args.schema_registry_url,
        )),
    };
    for message in &messages {
        let mut parse = |bytes: Option<&[u8]>| match bytes {
            None => serde_json::Value::Null,
            Some(b) if schema_registry::wire::looks_like_avro(b) => avro.show(b),
            Some(b) => serde_json::from_slice(b).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
            }),
        };
        let mut value = parse(message.payload());
        if args.payload_only {
            if let Some(payload) = value.get("payload").cloned() {
                value = payload;
            }
        }
        let mut key = parse(message.key());
        if args.payload_only {
            if let Some(payload) = key.get("payload").cloned() {
                key = payload;
            }
        }
        let headers: serde_json::Map<String, serde_json::Value> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|header| {
                        let text =
                            String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
                        (header.key.to_string(), serde_json::Value::String(text))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut record = serde_json::json!({
            "partition": message.partition(),
            "offset": message.offset(),
            "key": key,
            "value": value,
        });
        if !headers.is_empty() {
            record["headers"] = serde_json::Value::Object(headers);
        }
        if args.compact {
            println!("{record}");
        } else {
            println!("{}", serde_json::to_string_pretty(&record)?);
        }
    }
    Ok(())
}

/// The last `count` records of each partition, oldest first. Offsets are not records: in a
/// topic written with Kafka transactions (orders.events.v1) every commit takes an offset of its
/// own (a control record, never delivered), and aborted records are skipped (this client reads
/// `read_committed`). So the window is read to the partition's end, and widened (x4) while it
/// holds fewer records than asked for and the partition has older ones.
fn last_messages(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    count: i64,
    timeout: Duration,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let mut found = Vec::new();
    for &partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let mut window = count.max(1);
        loop {
            let start = (high - window).max(low);
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            consumer.assign(&assignment)?;
            let mut read: Vec<OwnedMessage> = Vec::new();
            let deadline = Instant::now() + timeout;
            // The end is reached when the position (the next offset to fetch, which moves past
            // control records too) gets to the high watermark.
            let at_end = || {
                consumer.position().ok().is_some_and(|list| {
                    list.elements()
                        .iter()
                        .any(|e| matches!(e.offset(), Offset::Offset(next) if next >= high))
                })
            };
            while start < high && Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(100)) {
                    None if at_end() => break,
                    None => continue,
                    Some(Err(error)) => return Err(error.into()),
                    Some(Ok(message)) => {
                        let last = message.offset() + 1 >= high;
                        read.push(message.detach());
                        if last {
                            break;
                        }
                    }
                }
            }
            if read.len() as i64 >= count || start == low || window >= 1 << 24 {
                let skip = read.len().saturating_sub(count.max(0) as usize);
                found.extend(read.into_iter().skip(skip));
                break;
            }
            window = window.saturating_mul(4);
        }
    }
    Ok(found)
}
