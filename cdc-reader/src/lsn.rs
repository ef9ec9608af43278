//! Log sequence numbers: positions in PostgreSQL's write-ahead log (WAL).
//!
//! Every change the cdc-reader sees is tagged with the WAL position it was written at, and the
//! reader tells the server how far it has safely got by sending an LSN back (the standby status
//! update in [`crate::replication::protocol`]). On the wire an LSN is a big-endian `u64`; people
//! and SQL (`pg_lsn`, `pg_replication_slots.confirmed_flush_lsn`) write it as two hexadecimal
//! halves separated by a slash:
//!
//! ```text
//!   u64 0x00000016_B374D848   <->   "16/B374D848"
//!        high 32     low 32          upper-case hex, no zero padding
//! ```

use std::fmt;
use std::str::FromStr;

/// A position in the write-ahead log; ordered like the log itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`: "no position". The server sends it where a position is not known, and a client
    /// that has confirmed nothing yet reports it.
    pub const ZERO: Lsn = Lsn(0);

    /// The position as the raw 64-bit number used on the wire.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// True for `0/0`.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Self {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> Self {
        lsn.0
    }
}

impl fmt::Display for Lsn {
    /// Formats like PostgreSQL's `pg_lsn` output: `16/B374D848`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Why a string is not an LSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN {input:?}: expected two hexadecimal numbers of at most 8 digits separated by '/', like \"16/B374D848\"")]
pub struct ParseLsnError {
    /// The text that was rejected.
    pub input: String,
}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    /// Parses `16/B374D848` (either case, with or without zero padding, like `pg_lsn` input).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || ParseLsnError {
            input: input.to_string(),
        };
        let (high, low) = input.split_once('/').ok_or_else(error)?;
        let half = |text: &str| -> Result<u64, ParseLsnError> {
            let is_hex = !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_hex || text.len() > 8 {
                return Err(error());
            }
            u64::from_str_radix(text, 16).map_err(|_| error())
        };
        Ok(Lsn((half(high)? << 32) | half(low)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_pg_lsn() {
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!(Lsn::ZERO.to_string(), "0/0");
        assert_eq!(Lsn(0x0000_0001_0000_00AB).to_string(), "1/AB");
        assert_eq!(Lsn(u64::MAX).to_string(), "FFFFFFFF/FFFFFFFF");
    }

    #[test]
    fn parses_pg_lsn_text() {
        assert_eq!("16/B374D848".parse(), Ok(Lsn(0x16_B374_D848)));
        assert_eq!("16/b374d848".parse(), Ok(Lsn(0x16_B374_D848)));
        assert_eq!("00000016/0000000A".parse(), Ok(Lsn(0x16_0000_000A)));
        assert_eq!("0/0".parse(), Ok(Lsn::ZERO));
        assert_eq!("FFFFFFFF/FFFFFFFF".parse(), Ok(Lsn(u64::MAX)));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "/",
            "16",
            "16/",
            "/B374D848",
            "16/B374D848/1",
            "G/0",
            "+1/0",
            "-1/0",
            " 1/0",
            "1/0 ",
            "100000000/0",
            "0/100000000",
        ] {
            let parsed = bad.parse::<Lsn>();
            assert_eq!(
                parsed,
                Err(ParseLsnError {
                    input: bad.to_string()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn display_and_parse_roundtrip() {
        for value in [0, 1, 0xFFFF_FFFF, 0x1_0000_0000, 0x16_B374_D848, u64::MAX] {
            let lsn = Lsn(value);
            assert_eq!(lsn.to_string().parse(), Ok(lsn));
        }
    }

    #[test]
    fn orders_like_the_log() {
        assert!(Lsn(0x1_0000_0000) > Lsn(0xFFFF_FFFF));
        assert!(Lsn::ZERO < Lsn(1));
        assert!(Lsn::ZERO.is_zero());
    }
}
