//! # producer: the application whose writes we capture
//!
//! It demonstrates the **transactional outbox**: the business rows and the event that
//! describes them commit together, or not at all. CDC (cdc-reader, or Debezium) then reads both
//! from the WAL; nothing here talks to Kafka, except the `--direct-publish` demo of the dual
//! write the outbox avoids.
//!
//! ```text
//!   workload (seeded ops) ─┐
//!                          ├─> orders: BEGIN; orders + order_items + outbox_events; COMMIT ─> PostgreSQL
//!   http (POST/PATCH/...) ─┘                                    └─(--direct-publish)─> Kafka outbox.events
//! ```
//!
//! Read it in this order:
//! - [`money`]: money as integer cents, decimal text on the wire (never floats).
//! - [`domain`]: orders, lines, the status lifecycle NEW -> PAID -> SHIPPED (or CANCELLED), validation.
//! - [`outbox`]: the event types and the JSON payload each outbox row carries.
//! - [`orders`]: the transactional writes (create, change status, change lines, cancel, delete),
//!   each one transaction with its outbox row; used by both modes.
//! - [`workload`]: the seeded, deterministic sequence of operations and the `--mix` parser.
//! - [`runner`]: the CLI run: workers, pacing, progress bar; [`report`]: the summary.
//! - [`retry`]: what is retried when PostgreSQL or Kafka goes away, and COMMITs in doubt.
//! - [`direct_publish`]: the dual write (commit, then publish) and its failure injection;
//!   [`order_event_avro`]: its `--format avro` schema and datum.
//! - [`requests`] and [`http`]: the HTTP API (`producer serve`).
//! - [`metrics`]: `producer serve --metrics-listen`: operations per kind, transaction latency.
//! - [`cli`]: the command-line flags.

pub mod cli;
pub mod direct_publish;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod money;
pub mod order_event_avro;
pub mod orders;
pub mod outbox;
pub mod report;
pub mod requests;
pub mod retry;
pub mod runner;
pub mod workload;

pub use runner::{run, RunConfig, RunError};
