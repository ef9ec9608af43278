//! The streaming-replication messages carried inside CopyData: sans-IO, bytes in, values out.
//!
//! After `START_REPLICATION SLOT ... LOGICAL ...` the connection switches to copy-both mode and
//! every message in either direction is a CopyData (`'d'`) whose payload starts with one tag
//! byte. The connection code unwraps the CopyData framing and hands the payload here; this
//! module never touches a socket. (PostgreSQL docs: "Streaming Replication Protocol".)
//!
//! ```text
//! server -> client
//!   'w' XLogData         u64 wal_start | u64 wal_end | i64 server_clock | WAL data ...
//!                        (for a logical slot the WAL data is one pgoutput message)
//!   'k' Primary keepalive u64 wal_end  | i64 server_clock | u8 reply_requested
//! client -> server
//!   'r' Standby status   u64 written | u64 flushed | u64 applied | i64 client_clock | u8 reply_requested
//! ```
//!
//! All integers are big-endian. Clocks are microseconds since 2000-01-01 00:00 UTC, PostgreSQL's
//! own epoch; [`PgTimestamp`] converts them to and from Unix time.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::lsn::Lsn;

/// A PostgreSQL timestamp: microseconds since 2000-01-01 00:00:00 UTC.
///
/// Used for the server and client clocks in replication messages and for commit timestamps in
/// pgoutput messages. Conversions saturate instead of overflowing, so a garbage value read off
/// the wire can never panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PgTimestamp(pub i64);

impl PgTimestamp {
    /// 2000-01-01 00:00:00 UTC, in microseconds since the Unix epoch (1970-01-01).
    pub const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

    /// The PostgreSQL timestamp for a number of microseconds since the Unix epoch.
    pub const fn from_unix_micros(unix_micros: i64) -> Self {
        PgTimestamp(unix_micros.saturating_sub(Self::POSTGRES_EPOCH_UNIX_MICROS))
    }

    /// Microseconds since the Unix epoch.
    pub const fn to_unix_micros(self) -> i64 {
        self.0.saturating_add(Self::POSTGRES_EPOCH_UNIX_MICROS)
    }

    /// Milliseconds since the Unix epoch (rounded down), the unit of Debezium's `ts_ms`.
    pub const fn to_unix_millis(self) -> i64 {
        self.to_unix_micros().div_euclid(1000)
    }

    /// The local clock now, as sent in a standby status update.
    pub fn now() -> Self {
        let unix_micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            // A clock set before 1970: report the epoch rather than fail a status update.
            Err(_) => 0,
        };
        Self::from_unix_micros(unix_micros)
    }
}

/// A message the server sends inside CopyData during streaming replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage {
    /// `'w'`: a piece of WAL; for logical replication, one output-plugin message.
    XLogData(XLogData),
    /// `'k'`: a heartbeat, possibly asking for an immediate status update.
    PrimaryKeepalive(PrimaryKeepalive),
}

/// `'w'` XLogData: WAL data starting at `wal_start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XLogData {
    /// Where the data starts in the WAL (for a logical slot: the LSN of this change).
    pub wal_start: Lsn,
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// The server's clock when it sent this message.
    pub server_clock: PgTimestamp,
    /// The payload; for a pgoutput slot, feed it to [`crate::pgoutput::decode`]. A slice of the
    /// received buffer, not a copy.
    pub data: Bytes,
}

/// `'k'` Primary keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryKeepalive {
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// The server's clock when it sent this message.
    pub server_clock: PgTimestamp,
    /// The server will disconnect us after `wal_sender_timeout` unless we reply soon: send a
    /// [`StandbyStatusUpdate`] now.
    pub reply_requested: bool,
}

/// `'r'` Standby status update: the client tells the server how far it has got.
///
/// `flush` is what matters for a logical slot: the server may recycle WAL before it and will
/// restart streaming from it after a reconnect, so it must only move forward and only past
/// changes that are durably delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyStatusUpdate {
    /// Last WAL byte + 1 received and written (for us: handed to the sink).
    pub write: Lsn,
    /// Last WAL byte + 1 durably stored (for us: acknowledged by the sink).
    pub flush: Lsn,
    /// Last WAL byte + 1 applied (for us: the same as `flush`).
    pub apply: Lsn,
    /// The client's clock when sending.
    pub clock: PgTimestamp,
    /// Ask the server to answer with a keepalive at once (useful to measure lag).
    pub reply_requested: bool,
}

/// Why a CopyData payload is not a valid replication message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The payload had no tag byte at all.
    #[error("empty CopyData payload: expected a replication message tag ('w' or 'k')")]
    Empty,
    /// The tag byte is not one this client knows.
    #[error("unknown replication message tag {tag:#04x} ({printable:?}): expected 'w' (XLogData) or 'k' (keepalive)")]
    UnknownTag {
        /// The tag byte received.
        tag: u8,
        /// The tag as a character, to read it in the message.
        printable: char,
    },
    /// The message is shorter or longer than its fixed layout.
    #[error("{message} message has {actual} bytes, expected {expected}")]
    WrongLength {
        /// Which message, e.g. "XLogData ('w')".
        message: &'static str,
        /// Bytes required (for XLogData: at least this many).
        expected: usize,
        /// Bytes received, tag included.
        actual: usize,
    },
}

const XLOG_DATA_HEADER_LEN: usize = 1 + 8 + 8 + 8;
const KEEPALIVE_LEN: usize = 1 + 8 + 8 + 1;
const STANDBY_STATUS_UPDATE_LEN: usize = 1 + 8 + 8 + 8 + 8 + 1;

impl ReplicationMessage {
    /// Parses one CopyData payload sent by the server.
    ///
    /// Takes `Bytes` so that the XLogData payload is a cheap slice of the input, not a copy.
    pub fn parse(payload: Bytes) -> Result<Self, ProtocolError> {
        let Some(&tag) = payload.first() else {
            return Err(ProtocolError::Empty);
        };
        match tag {
            b'w' => {
                let header = fixed_fields(&payload, "XLogData ('w')", XLOG_DATA_HEADER_LEN, false)?;
                let [wal_start, wal_end, server_clock] = read_u64s(header);
                Ok(ReplicationMessage::XLogData(XLogData {
                    wal_start: Lsn(wal_start),
                    wal_end: Lsn(wal_end),
                    server_clock: PgTimestamp(server_clock as i64),
                    data: payload.slice(XLOG_DATA_HEADER_LEN..),
                }))
            }
            b'k' => {
                let fields =
                    fixed_fields(&payload, "primary keepalive ('k')", KEEPALIVE_LEN, true)?;
                let [wal_end, server_clock] = read_u64s(fields);
                Ok(ReplicationMessage::PrimaryKeepalive(PrimaryKeepalive {
                    wal_end: Lsn(wal_end),
                    server_clock: PgTimestamp(server_clock as i64),
                    reply_requested: fields.get(16).is_some_and(|&flag| flag != 0),
                }))
            }
            other => Err(ProtocolError::UnknownTag {
                tag: other,
                printable: char::from(other),
            }),
        }
    }
}

impl StandbyStatusUpdate {
    /// Encodes the `'r'` message: the CopyData payload, without the CopyData framing.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(STANDBY_STATUS_UPDATE_LEN);
        out.put_u8(b'r');
        out.put_u64(self.write.0);
        out.put_u64(self.flush.0);
        out.put_u64(self.apply.0);
        out.put_i64(self.clock.0);
        out.put_u8(u8::from(self.reply_requested));
        out.freeze()
    }

    /// Parses an `'r'` message, the inverse of [`StandbyStatusUpdate::encode`] (for tests and
    /// for tools that inspect a client's traffic).
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        match payload.first() {
            None => return Err(ProtocolError::Empty),
            Some(b'r') => {}
            Some(&other) => {
                return Err(ProtocolError::UnknownTag {
                    tag: other,
                    printable: char::from(other),
                })
            }
        }
        let fields = fixed_fields(
            payload,
            "standby status update ('r')",
            STANDBY_STATUS_UPDATE_LEN,
            true,
        )?;
        let [write, flush, apply, clock] = read_u64s(fields);
        Ok(StandbyStatusUpdate {
            write: Lsn(write),
            flush: Lsn(flush),
            apply: Lsn(apply),
            clock: PgTimestamp(clock as i64),
            reply_requested: fields.get(32).is_some_and(|&flag| flag != 0),
        })
    }
}

/// The bytes after the tag, checked against the message's fixed length (`exact`) or minimum.
fn fixed_fields<'a>(
    payload: &'a [u8],
    message: &'static str,
    expected: usize,
    exact: bool,
) -> Result<&'a [u8], ProtocolError> {
    let length_ok = if exact {
        payload.len() == expected
    } else {
        payload.len() >= expected
    };
    match payload.get(1..) {
        Some(fields) if length_ok => Ok(fields),
        _ => Err(ProtocolError::WrongLength {
            message,
            expected,
            actual: payload.len(),
        }),
    }
}

/// The first `N` big-endian u64 fields of `fields`; the caller has checked the length, and a
/// short input would read as zeros rather than panic.
fn read_u64s<const N: usize>(fields: &[u8]) -> [u64; N] {
    let mut values = [0u64; N];
    for (value, chunk) in values.iter_mut().zip(fields.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *value = u64::from_be_bytes(bytes);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xlog_data_bytes() -> Vec<u8> {
        let mut bytes = vec![b'w'];
        bytes.extend_from_slice(&0x16_B374_D848u64.to_be_bytes());
        bytes.extend_from_slice(&0x16_B374_D900u64.to_be_bytes());
        bytes.extend_from_slice(&815_000_000_000_000i64.to_be_bytes());
        bytes.extend_from_slice(b"B...pgoutput");
        bytes
    }

    #[test]
    fn parses_xlog_data() {
        let message = ReplicationMessage::parse(Bytes::from(xlog_data_bytes()));
        assert_eq!(
            message,
            Ok(ReplicationMessage::XLogData(XLogData {
                wal_start: Lsn(0x16_B374_D848),
                wal_end: Lsn(0x16_B374_D900),
                server_clock: PgTimestamp(815_000_000_000_000),
                data: Bytes::from_static(b"B...pgoutput"),
            }))
        );
    }

    #[test]
    fn parses_xlog_data_with_empty_payload() {
        let bytes = xlog_data_bytes();
        let header_only = Bytes::copy_from_slice(&bytes[..XLOG_DATA_HEADER_LEN]);
        match ReplicationMessage::parse(header_only) {
            Ok(ReplicationMessage::XLogData(data)) => assert!(data.data.is_empty()),
            other => panic!("expected XLogData, got {other:?}"),
        }
    }

    #[test]
    fn parses_keepalive() {
        let mut bytes = vec![b'k'];
        bytes.extend_from_slice(&0x1_0000_0002u64.to_be_bytes());
        bytes.extend_from_slice(&(-5i64).to_be_bytes());
        bytes.push(1);
        assert_eq!(
            ReplicationMessage::parse(Bytes::from(bytes)),
            Ok(ReplicationMessage::PrimaryKeepalive(PrimaryKeepalive {
                wal_end: Lsn(0x1_0000_0002),
                server_clock: PgTimestamp(-5),
                reply_requested: true,
            }))
        );
    }

    #[test]
    fn rejects_truncated_and_unknown_messages() {
        assert_eq!(
            ReplicationMessage::parse(Bytes::new()),
            Err(ProtocolError::Empty)
        );
        assert_eq!(
            ReplicationMessage::parse(Bytes::from_static(b"w\0\0")),
            Err(ProtocolError::WrongLength {
                message: "XLogData ('w')",
                expected: 25,
                actual: 3
            })
        );
        assert_eq!(
            ReplicationMessage::parse(Bytes::from_static(&[b'k'; 19])),
            Err(ProtocolError::WrongLength {
                message: "primary keepalive ('k')",
                expected: 18,
                actual: 19
            })
        );
        assert_eq!(
            ReplicationMessage::parse(Bytes::from_static(b"x")),
            Err(ProtocolError::UnknownTag {
                tag: b'x',
                printable: 'x'
            })
        );
    }

    #[test]
    fn encodes_standby_status_update() {
        let update = StandbyStatusUpdate {
            write: Lsn(0x0102_0304_0506_0708),
            flush: Lsn(0x10),
            apply: Lsn(0x20),
            clock: PgTimestamp(0x30),
            reply_requested: false,
        };
        let encoded = update.encode();
        let mut expected = vec![b'r'];
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x10]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x20]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x30]);
        expected.push(0);
        assert_eq!(&encoded[..], &expected[..]);
        assert_eq!(StandbyStatusUpdate::parse(&encoded), Ok(update));
    }

    #[test]
    fn standby_status_update_roundtrips_reply_flag() {
        let update = StandbyStatusUpdate {
            write: Lsn(1),
            flush: Lsn(2),
            apply: Lsn(3),
            clock: PgTimestamp(-4),
            reply_requested: true,
        };
        let encoded = update.encode();
        assert_eq!(encoded.len(), 34);
        assert_eq!(encoded.last(), Some(&1));
        assert_eq!(StandbyStatusUpdate::parse(&encoded), Ok(update));
        assert!(StandbyStatusUpdate::parse(&encoded[..33]).is_err());
    }

    #[test]
    fn converts_postgres_epoch_to_unix_time() {
        assert_eq!(PgTimestamp(0).to_unix_micros(), 946_684_800_000_000);
        assert_eq!(PgTimestamp(0).to_unix_millis(), 946_684_800_000);
        assert_eq!(
            PgTimestamp::from_unix_micros(946_684_800_000_000),
            PgTimestamp(0)
        );
        // 2026-01-01T00:00:00.123456Z
        let unix_micros = 1_767_225_600_123_456;
        let timestamp = PgTimestamp::from_unix_micros(unix_micros);
        assert_eq!(timestamp.to_unix_micros(), unix_micros);
        assert_eq!(timestamp.to_unix_millis(), 1_767_225_600_123);
        // Before 1970: milliseconds round down, not toward zero.
        assert_eq!(PgTimestamp::from_unix_micros(-1).to_unix_millis(), -1);
    }

    #[test]
    fn epoch_conversion_saturates_on_garbage() {
        assert_eq!(PgTimestamp(i64::MAX).to_unix_micros(), i64::MAX);
        assert_eq!(
            PgTimestamp::from_unix_micros(i64::MIN),
            PgTimestamp(i64::MIN)
        );
    }

    #[test]
    fn now_is_after_2020() {
        assert!(PgTimestamp::now().to_unix_millis() > 1_577_836_800_000);
    }
}
