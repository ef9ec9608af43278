//! The Confluent wire format: how an Avro record sits in a Kafka key or value.
//!
//! ```text
//! byte 0      magic byte, always 0
//! bytes 1..5  the schema id the registry gave, big-endian u32
//! bytes 5..   the Avro binary datum (no container header, no sync markers)
//!
//! 00 00 00 00 07 | 02 54 ...      schema 7, then the datum
//! ```
//!
//! Sans-IO: bytes in, bytes out. A tombstone (a null value) is not encoded at all.

/// The first byte of every record in the Confluent wire format.
pub const MAGIC_BYTE: u8 = 0;
/// Magic byte + schema id.
pub const HEADER_LEN: usize = 5;

/// Why bytes are not a record in the Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0} bytes are too short for the Confluent wire format (magic byte 0 + 4-byte schema id + datum)")]
    TooShort(usize),
    #[error("the first byte is {0:#04x}, not the magic byte 0: not a record in the Confluent wire format")]
    BadMagic(u8),
}

/// The 5-byte header and the datum.
pub fn encode(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.extend_from_slice(&header(schema_id));
    out.extend_from_slice(datum);
    out
}

/// The 5-byte header alone, for a datum written after it.
pub fn header(schema_id: u32) -> [u8; HEADER_LEN] {
    let id = schema_id.to_be_bytes();
    [MAGIC_BYTE, id[0], id[1], id[2], id[3]]
}

/// The schema id and the datum of a record.
pub fn decode(bytes: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::TooShort(bytes.len()));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(WireError::BadMagic(bytes[0]));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Whether bytes look like the wire format (magic byte 0 and a header): JSON never starts with 0.
pub fn looks_like_avro(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[0] == MAGIC_BYTE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_then_big_endian_id() {
        let bytes = encode(0x0102_0304, &[0x02, 0x54]);
        assert_eq!(bytes, [0, 1, 2, 3, 4, 0x02, 0x54]);
        assert_eq!(decode(&bytes), Ok((0x0102_0304, &[0x02u8, 0x54][..])));
    }

    #[test]
    fn an_empty_datum_is_still_a_record() {
        assert_eq!(decode(&encode(7, &[])), Ok((7, &[][..])));
    }

    #[test]
    fn json_and_short_bytes_are_refused() {
        assert_eq!(decode(b"{\"a\":1}"), Err(WireError::BadMagic(b'{')));
        assert_eq!(decode(&[0, 0, 1]), Err(WireError::TooShort(3)));
        assert!(!looks_like_avro(b"{\"schema\":"));
        assert!(looks_like_avro(&[0, 0, 0, 0, 1]));
    }
}
