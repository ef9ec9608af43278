//! Logical replication from PostgreSQL: the first stage of cdc-reader.
//!
//! - [`connection`]: the replication connection (startup with `replication=database`,
//!   authentication, simple queries, the CopyBoth stream). Thin I/O: it moves frames.
//! - [`protocol`]: the CopyData payloads of the stream (XLogData, primary keepalive, standby
//!   status update), decoded and encoded without I/O.
//! - [`slot`]: the slot and the publication: create them when missing, explain what to do when
//!   the server says no.

pub mod connection;
pub mod protocol;
pub mod slot;
