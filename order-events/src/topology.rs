//! The topology, in Kafka Streams' vocabulary: what the processor is made of, by name.
//!
//! Kafka Streams prints a topology with `Topology#describe()`; `order-events` logs the same
//! kind of description at start, so a learner sees the pieces before the records flow.

use crate::config::Cli;

/// The names of the nodes (for the log and the README).
pub const ORDERS_SOURCE: &str = "orders-source";
pub const ITEMS_SOURCE: &str = "order-items-source";
pub const TRANSACTIONS_SOURCE: &str = "transactions-source";
pub const JOIN_PROCESSOR: &str = "order-events-join";
pub const STATE_STORE: &str = "order-events-state";
pub const EVENTS_SINK: &str = "orders-events-sink";
pub const DLQ_SINK: &str = "dlq-sink";

/// A multi-line description of the topology with the configured topic names.
pub fn describe(cli: &Cli) -> String {
    format!(
        "Topologies:\n  Sub-topology: 0\n    Source: {ORDERS_SOURCE} (topics: [{}]) --> {JOIN_PROCESSOR}\n    Source: {ITEMS_SOURCE} (topics: [{}]) --> {JOIN_PROCESSOR}\n    Source: {TRANSACTIONS_SOURCE} (topics: [{}]) --> {JOIN_PROCESSOR}\n    Processor: {JOIN_PROCESSOR} (stores: [{STATE_STORE}, changelog {}]) --> {EVENTS_SINK}, {DLQ_SINK}\n    Sink: {EVENTS_SINK} (topic: {})\n    Sink: {DLQ_SINK} (topic: {})",
        cli.orders_topic(),
        cli.items_topic(),
        cli.transaction_topic(),
        cli.changelog_topic,
        cli.output_topic,
        cli.dlq_topic(),
    )
}
