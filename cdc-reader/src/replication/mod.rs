//! Replication protocol. (being written)
pub mod protocol;
