//! A bounds-checked reader over one pgoutput message.
//!
//! Every read checks the remaining length first and returns a [`DecodeError`] naming the field
//! and offset; nothing here can panic on short or garbage input. Byte strings are returned as
//! [`Bytes`] slices of the message (a reference-count bump, no copy).

use bytes::Bytes;

use super::error::{DecodeError, DecodeErrorKind};

/// Reads big-endian fields from the front of a message, remembering the offset for errors.
pub(crate) struct Cursor {
    data: Bytes,
    position: usize,
    /// The message kind being decoded, for error messages.
    message: &'static str,
}

impl Cursor {
    pub(crate) fn new(data: Bytes) -> Self {
        Cursor {
            data,
            position: 0,
            message: "(unknown)",
        }
    }

    /// Names the message kind being decoded, once the kind byte has been read.
    pub(crate) fn set_message(&mut self, message: &'static str) {
        self.message = message;
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.position)
    }

    /// An error of `kind` for `field` at the current offset.
    pub(crate) fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        self.error_at(self.position, field, kind)
    }

    fn error_at(&self, offset: usize, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            message: self.message,
            field,
            offset,
            kind,
        }
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .data
            .get(self.position..)
            .and_then(|rest| rest.first_chunk::<N>())
            .copied()
            .ok_or_else(|| self.truncated(field, N))?;
        self.position += N;
        Ok(bytes)
    }

    fn truncated(&self, field: &'static str, needed: usize) -> DecodeError {
        self.error(
            field,
            DecodeErrorKind::Truncated {
                needed,
                available: self.remaining(),
            },
        )
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.array(field).map(i16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_be_bytes)
    }

    /// A non-negative count or length stored as a signed integer (Int16/Int32 on the wire).
    fn length(&self, value: i64, start: usize, field: &'static str) -> Result<usize, DecodeError> {
        usize::try_from(value)
            .map_err(|_| self.error_at(start, field, DecodeErrorKind::NegativeLength { value }))
    }

    pub(crate) fn count_i16(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let start = self.position;
        let value = self.i16(field)?;
        self.length(i64::from(value), start, field)
    }

    pub(crate) fn count_i32(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let start = self.position;
        let value = self.i32(field)?;
        self.length(i64::from(value), start, field)
    }

    /// The next `len` bytes, as a slice sharing the message's buffer.
    pub(crate) fn bytes(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.truncated(field, len))?;
        let slice = self.data.slice(self.position..end);
        self.position = end;
        Ok(slice)
    }

    /// A NUL-terminated UTF-8 string (PostgreSQL's `String` field type), NUL consumed.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let rest = self.data.get(self.position..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&byte| byte == 0) else {
            return Err(self.error(field, DecodeErrorKind::UnterminatedString));
        };
        let text = rest
            .get(..len)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .ok_or_else(|| self.error(field, DecodeErrorKind::InvalidUtf8))?
            .to_owned();
        self.position += len + 1;
        Ok(text)
    }

    /// Fails unless the whole message has been read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(self.error(
                "end of message",
                DecodeErrorKind::TrailingBytes { remaining },
            )),
        }
    }

    /// An error for a one-byte marker that has a value the format does not allow; `offset`
    /// points at the marker itself.
    pub(crate) fn unexpected_byte(
        &self,
        found: u8,
        field: &'static str,
        expected: &'static str,
    ) -> DecodeError {
        self.error_at(
            self.position.saturating_sub(1),
            field,
            DecodeErrorKind::UnexpectedByte {
                found,
                printable: char::from(found),
                expected,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields_and_reports_offsets() {
        let mut cursor = Cursor::new(Bytes::from_static(&[0, 0, 0, 7, 0xFF, b'a', 0, 1]));
        cursor.set_message("Test");
        assert_eq!(cursor.u32("id"), Ok(7));
        assert_eq!(cursor.u8("flag"), Ok(0xFF));
        assert_eq!(cursor.string("name"), Ok("a".to_string()));
        let error = cursor.i16("count").unwrap_err();
        assert_eq!(error.offset, 7);
        assert_eq!(error.field, "count");
        assert_eq!(error.message, "Test");
        assert_eq!(
            error.kind,
            DecodeErrorKind::Truncated {
                needed: 2,
                available: 1
            }
        );
    }

    #[test]
    fn rejects_unterminated_and_non_utf8_strings() {
        let mut cursor = Cursor::new(Bytes::from_static(b"abc"));
        assert_eq!(
            cursor.string("name").unwrap_err().kind,
            DecodeErrorKind::UnterminatedString
        );
        let mut cursor = Cursor::new(Bytes::from_static(b"\xFF\0"));
        assert_eq!(
            cursor.string("name").unwrap_err().kind,
            DecodeErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn rejects_negative_counts_and_oversized_lengths() {
        let mut cursor = Cursor::new(Bytes::from_static(&[0xFF, 0xFF]));
        let error = cursor.count_i16("columns").unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::NegativeLength { value: -1 });
        assert_eq!(error.offset, 0);
        let mut cursor = Cursor::new(Bytes::from_static(b"ab"));
        assert!(cursor.bytes(usize::MAX, "value").is_err());
        assert_eq!(cursor.bytes(2, "value"), Ok(Bytes::from_static(b"ab")));
        assert_eq!(cursor.finish(), Ok(()));
    }
}
