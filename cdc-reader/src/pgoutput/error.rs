//! What can go wrong while decoding a pgoutput message, and where.
//!
//! Every error names the message kind being decoded, the field, and the byte offset in the
//! message where decoding stopped, so a bad capture can be found with a hex dump. Callers that
//! must branch (skip a message, stop the stream) match on [`DecodeErrorKind`].

/// A pgoutput message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot decode pgoutput {message} message: {kind} (field {field}, at byte offset {offset})"
)]
pub struct DecodeError {
    /// The message kind being decoded, e.g. "Insert ('I')".
    pub message: &'static str,
    /// The field being read, e.g. "relation id".
    pub field: &'static str,
    /// Offset in the message (the kind byte is offset 0) where the field starts.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The precise reason a pgoutput message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The message was empty: not even a kind byte.
    #[error("empty message, expected a message kind byte")]
    Empty,
    /// The first byte is not a known message kind.
    #[error("unknown message kind {tag:#04x} ({printable:?}); is the slot using pgoutput with proto_version 1 or 2?")]
    UnknownMessageKind {
        /// The kind byte received.
        tag: u8,
        /// The kind byte as a character.
        printable: char,
    },
    /// The message ended before the field was complete.
    #[error("message truncated: needed {needed} byte(s), only {available} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// A string field had no terminating NUL byte.
    #[error("string is not NUL-terminated before the end of the message")]
    UnterminatedString,
    /// A string field is not valid UTF-8.
    #[error("string is not valid UTF-8 (is the database encoding UTF8?)")]
    InvalidUtf8,
    /// A one-byte marker had a value the format does not allow.
    #[error("unexpected byte {found:#04x} ({printable:?}), expected {expected}")]
    UnexpectedByte {
        /// The byte received.
        found: u8,
        /// The byte as a character.
        printable: char,
        /// What the format allows here, e.g. "'K' or 'O'".
        expected: &'static str,
    },
    /// A length or count field was negative.
    #[error("negative length or count {value}")]
    NegativeLength {
        /// The value received.
        value: i64,
    },
    /// Bytes were left over after the last field: the message is longer than its format.
    #[error("{remaining} unexpected byte(s) after the end of the message")]
    TrailingBytes {
        /// How many bytes were left over.
        remaining: usize,
    },
}
