//! The command line of `order-events`; every flag has an environment twin.
//!
//! ```text
//! cargo run -p order-events
//! cargo run -p order-events -- --transactional-id order-events-0 --incomplete-after 60s
//! ```

use std::time::Duration;

use clap::Parser;

/// Joins orders and their items into domain events on orders.events.v1, exactly once.
#[derive(Debug, Clone, Parser)]
#[command(name = "order-events", version)]
pub struct Cli {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", default_value = db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS)]
    pub bootstrap_servers: String,

    /// cdc-reader's --topic-prefix: the inputs are <prefix>.public.orders,
    /// <prefix>.public.order_items and <prefix>.transaction.
    #[arg(long, env = "ORDER_EVENTS_SOURCE_PREFIX", default_value = "dbserver1")]
    pub source_prefix: String,

    /// The topic of the domain events.
    #[arg(
        long,
        env = "ORDER_EVENTS_OUTPUT_TOPIC",
        default_value = "orders.events.v1"
    )]
    pub output_topic: String,

    /// The dead-letter topic [default: <output-topic>.dlq].
    #[arg(long, env = "ORDER_EVENTS_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,

    /// The compacted changelog topic of the state store.
    #[arg(
        long,
        env = "ORDER_EVENTS_CHANGELOG_TOPIC",
        default_value = "order-events-state-changelog"
    )]
    pub changelog_topic: String,

    /// The consumer group the input offsets are committed for (Kafka Streams' application.id).
    #[arg(long, env = "ORDER_EVENTS_GROUP_ID", default_value = "order-events")]
    pub group_id: String,

    /// The producer's transactional.id: stable per instance. A second instance started with
    /// the same id fences the first, which exits.
    #[arg(
        long,
        env = "ORDER_EVENTS_TRANSACTIONAL_ID",
        default_value = "order-events-0"
    )]
    pub transactional_id: String,

    /// Records per Kafka transaction, at most.
    #[arg(long, env = "ORDER_EVENTS_BATCH_SIZE", default_value_t = 2000)]
    pub batch_size: usize,

    /// How long a batch collects records before it commits.
    #[arg(long, env = "ORDER_EVENTS_BATCH_TIMEOUT", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub batch_timeout: Duration,

    /// A source transaction still missing rows (or its END) this long after its last record
    /// arrived goes to the dead-letter topic. Counted only while less than a batch is left
    /// to read (time spent on a backlog does not count).
    #[arg(long, env = "ORDER_EVENTS_INCOMPLETE_AFTER", default_value = "60s", value_parser = humantime::parse_duration)]
    pub incomplete_after: Duration,

    /// Exit once every input partition reaches the end offset it had at start and no source
    /// transaction is waiting (tests, the workshop, benchmarks).
    #[arg(long, env = "ORDER_EVENTS_UNTIL_CAUGHT_UP")]
    pub until_caught_up: bool,

    /// Partitions of the topics it creates (output, dead letters, changelog).
    #[arg(long, env = "ORDER_EVENTS_TOPIC_PARTITIONS", default_value_t = 1)]
    pub topic_partitions: i32,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9103); off when unset.
    #[arg(long, env = "ORDER_EVENTS_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Cli {
    pub fn orders_topic(&self) -> String {
        format!("{}.public.orders", self.source_prefix)
    }
    pub fn items_topic(&self) -> String {
        format!("{}.public.order_items", self.source_prefix)
    }
    pub fn transaction_topic(&self) -> String {
        format!("{}.transaction", self.source_prefix)
    }
    pub fn dlq_topic(&self) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| format!("{}.dlq", self.output_topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_the_playground_topics() {
        let cli = Cli::parse_from(["order-events"]);
        assert_eq!(cli.orders_topic(), "dbserver1.public.orders");
        assert_eq!(cli.transaction_topic(), "dbserver1.transaction");
        assert_eq!(cli.dlq_topic(), "orders.events.v1.dlq");
        assert_eq!(cli.incomplete_after, Duration::from_secs(60));
    }
}
