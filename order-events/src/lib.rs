//! # order-events: a stream processor, exactly once with Kafka transactions
//!
//! A Kafka-to-Kafka stage beside the consumer: it reads the CDC topics of `orders` and
//! `order_items` and the transaction topic, joins each source transaction's rows (the pure
//! logic is [`projections::order_events`]) and writes one domain event per order per source
//! transaction to `orders.events.v1`. In Kafka Streams' words, its topology is:
//!
//! ```text
//!  source  orders-source        dbserver1.public.orders      ─┐
//!  source  order-items-source   dbserver1.public.order_items ─┼─> processor order-events-join ─> sink orders-events-sink  orders.events.v1
//!  source  transactions-source  dbserver1.transaction (END)  ─┘      │ state store order-events-state      sink dlq-sink  orders.events.v1.dlq
//!                                                                    └─> changelog order-events-state-changelog (compacted)
//! ```
//!
//! Exactly once is "consume, process, produce and commit the offsets in one Kafka
//! transaction": per batch, the events, the dead letters, the changed state-store entries
//! (changelog) and the input offsets (`send_offsets_to_transaction`) commit together or not
//! at all. Readers with `isolation.level=read_committed` never see an aborted batch's events.
//!
//! - [`config`]: the command line ([`Cli`]), every flag with its `ORDER_EVENTS_...` twin.
//! - [`topology`]: the names of the sources, processor, store and sinks, printed at start.
//! - [`kafka`]: the clients (transactional producer, read_committed consumer) and topics.
//! - [`restore`]: rebuilding the state store from the changelog on start (a progress bar).
//! - [`metrics`]: `--metrics-listen`: records in, events out, transactions, state size, latency.
//! - [`processor`]: the loop: poll a batch, join, write it all in one transaction; on a Kafka
//!   error abort and start again from the committed offsets and the changelog; when fenced
//!   by a newer instance with the same `transactional.id`, exit.

pub mod config;
pub mod kafka;
pub mod metrics;
pub mod processor;
pub mod restore;
pub mod topology;

pub use config::Cli;
pub use processor::run;
