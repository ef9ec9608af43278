//! # cdc-reader: PostgreSQL logical replication -> Debezium envelopes -> Kafka
//!
//! (module map written as the modules land)

pub mod conformance;
pub mod envelope;
pub mod lsn;
pub mod pgoutput;
pub mod replication;
