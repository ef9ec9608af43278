//! Row values in pgoutput messages: the `TupleData` part of Insert, Update and Delete.
//!
//! ```text
//! Int16 column count
//! per column, one of:
//!   'n'                          NULL
//!   'u'                          unchanged TOASTed value (not sent; the old value still holds)
//!   't' Int32 length, bytes      the value in text output format (what `SELECT col::text` shows)
//!   'b' Int32 length, bytes      the value in binary send format (only with the `binary` option)
//! ```
//!
//! Values are slices of the received message ([`Bytes`]), not copies: decoding a row costs one
//! `Vec` for the columns and a UTF-8 check per text value, nothing more.

use std::fmt;

use bytes::Bytes;

use super::cursor::Cursor;
use super::error::DecodeErrorKind;
use super::DecodeError;

/// The column values of one row, in the relation's column order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleData {
    /// One value per column of the relation (dropped columns are not sent).
    pub columns: Vec<ColumnValue>,
}

/// One column's value in a [`TupleData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValue {
    /// `'n'`: SQL NULL.
    Null,
    /// `'u'`: a TOASTed value the change did not touch, so the server did not send it. Debezium
    /// shows it as a placeholder ("__debezium_unavailable_value").
    UnchangedToast,
    /// `'t'`: the value in PostgreSQL's text output format, checked to be UTF-8.
    Text(PgText),
    /// `'b'`: the value in the type's binary send format.
    Binary(Bytes),
}

impl ColumnValue {
    /// The text form of a `'t'` value; `None` for NULL, unchanged TOAST and binary values.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ColumnValue::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, ColumnValue::Null)
    }
}

/// A text value from the wire: UTF-8 checked once when decoded, kept as a slice of the message.
///
/// A `String` would copy every value; a bare `Bytes` would make each user check UTF-8 again.
/// This type holds the bytes and the promise that they are UTF-8.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PgText(Bytes);

impl PgText {
    /// Wraps `bytes` if they are valid UTF-8.
    pub fn new(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(PgText(bytes))
    }

    /// Wraps a static string (for tests and hand-built messages).
    pub const fn from_static(text: &'static str) -> Self {
        PgText(Bytes::from_static(text.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: the only constructors, `new` and `from_static`, accept valid UTF-8 only, and
        // `Bytes` is immutable, so the bytes are still valid UTF-8 here. Checking again would
        // cost a second pass over every value on the hot path.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The UTF-8 bytes, sharing the message's buffer.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Debug for PgText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PgText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for PgText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PgText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TupleData {
    /// Reads a `TupleData` at the cursor.
    pub(crate) fn decode(cursor: &mut Cursor) -> Result<Self, DecodeError> {
        let count = cursor.count_i16("tuple column count")?;
        // Every column takes at least one byte: never reserve more than the message can hold.
        let mut columns = Vec::with_capacity(count.min(cursor.remaining()));
        for _ in 0..count {
            columns.push(decode_column(cursor)?);
        }
        Ok(TupleData { columns })
    }
}

fn decode_column(cursor: &mut Cursor) -> Result<ColumnValue, DecodeError> {
    match cursor.u8("column kind")? {
        b'n' => Ok(ColumnValue::Null),
        b'u' => Ok(ColumnValue::UnchangedToast),
        b't' => {
            let len = cursor.count_i32("text value length")?;
            let bytes = cursor.bytes(len, "text value")?;
            PgText::new(bytes).map(ColumnValue::Text).map_err(|_| {
                let mut error = cursor.error("text value", DecodeErrorKind::InvalidUtf8);
                error.offset = error.offset.saturating_sub(len);
                error
            })
        }
        b'b' => {
            let len = cursor.count_i32("binary value length")?;
            cursor.bytes(len, "binary value").map(ColumnValue::Binary)
        }
        other => Err(cursor.unexpected_byte(other, "column kind", "'n', 'u', 't' or 'b'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &'static [u8]) -> Result<TupleData, DecodeError> {
        let mut cursor = Cursor::new(Bytes::from_static(bytes));
        TupleData::decode(&mut cursor)
    }

    #[test]
    fn decodes_every_column_kind() {
        let tuple = decode(b"\0\x04nut\0\0\0\x0242b\0\0\0\x01\xFF").unwrap();
        assert_eq!(
            tuple.columns,
            vec![
                ColumnValue::Null,
                ColumnValue::UnchangedToast,
                ColumnValue::Text(PgText::from_static("42")),
                ColumnValue::Binary(Bytes::from_static(b"\xFF")),
            ]
        );
        assert_eq!(tuple.columns[2].as_text(), Some("42"));
        assert!(tuple.columns[0].is_null());
        assert_eq!(tuple.columns[3].as_text(), None);
    }

    #[test]
    fn decodes_empty_text_and_zero_columns() {
        assert_eq!(decode(b"\0\0").unwrap().columns, vec![]);
        let tuple = decode(b"\0\x01t\0\0\0\0").unwrap();
        assert_eq!(tuple.columns[0].as_text(), Some(""));
    }

    #[test]
    fn rejects_bad_columns_with_offsets() {
        let error = decode(b"\0\x01x").unwrap_err();
        assert_eq!(error.offset, 2);
        assert!(matches!(
            error.kind,
            DecodeErrorKind::UnexpectedByte { found: b'x', .. }
        ));

        let error = decode(b"\0\x01t\0\0\0\x05ab").unwrap_err();
        assert_eq!(error.offset, 7);
        assert_eq!(
            error.kind,
            DecodeErrorKind::Truncated {
                needed: 5,
                available: 2
            }
        );

        let error = decode(b"\0\x01t\0\0\0\x01\xFF").unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::InvalidUtf8);
        assert_eq!(error.offset, 7);

        let error = decode(b"\0\x01t\xFF\xFF\xFF\xFF").unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::NegativeLength { value: -1 });

        // A huge column count with no columns behind it fails without a huge allocation.
        assert!(decode(b"\x7F\xFF").is_err());
    }
}
