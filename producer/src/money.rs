//! Money as integer cents: exact arithmetic, decimal text on the wire.
//!
//! The tables store money as `numeric(12,2)`. Floats cannot hold 0.10 exactly, so the producer
//! never uses them for money: amounts are whole cents in an `i64`, parsed from and printed as
//! decimal text, and sent to PostgreSQL as text that SQL casts (`$1::numeric`).
//!
//! ```text
//! "12.3"  -> Money { cents: 1230 } -> "12.30"
//! "0.05"  -> Money { cents: 5 }    -> "0.05"
//! "1.999" -> error: more than 2 decimal places
//! ```

use std::fmt;

/// The largest amount `numeric(12,2)` holds: 9,999,999,999.99.
pub const MAX_CENTS: i64 = 999_999_999_999;

/// An amount of money in cents (never negative in this schema, but arithmetic is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money {
    pub cents: i64,
}

/// Why a decimal text is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a decimal number like 12.30")]
    NotDecimal(String),
    #[error("`{0}` has more than 2 decimal places")]
    TooPrecise(String),
    #[error("`{0}` is negative")]
    Negative(String),
    #[error("`{0}` is larger than 9999999999.99")]
    TooLarge(String),
}

impl Money {
    pub const ZERO: Money = Money { cents: 0 };

    pub fn from_cents(cents: i64) -> Money {
        Money { cents }
    }

    /// Parses `"12"`, `"12.3"` or `"12.30"` (no sign, no exponent, at most 2 decimals).
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let fail = |make: fn(String) -> MoneyError| make(text.to_string());
        if text.starts_with('-') {
            return Err(fail(MoneyError::Negative));
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(fail(MoneyError::NotDecimal));
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(fail(MoneyError::NotDecimal));
        }
        if fraction.len() > 2 {
            return Err(fail(MoneyError::TooPrecise));
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 10 {
            return Err(fail(MoneyError::TooLarge));
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail(MoneyError::NotDecimal))?
        };
        let fraction_cents: i64 = match fraction.len() {
            0 => 0,
            1 => i64::from(fraction.as_bytes()[0] - b'0') * 10,
            _ => fraction.parse().map_err(|_| fail(MoneyError::NotDecimal))?,
        };
        let cents = whole * 100 + fraction_cents;
        if cents > MAX_CENTS {
            return Err(fail(MoneyError::TooLarge));
        }
        Ok(Money { cents })
    }

    /// `self * quantity`, or `None` on overflow.
    pub fn checked_mul(self, quantity: i64) -> Option<Money> {
        self.cents.checked_mul(quantity).map(Money::from_cents)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.cents.checked_add(other.cents).map(Money::from_cents)
    }

    /// Whether a `numeric(12,2)` column can hold this amount.
    pub fn fits_numeric_12_2(self) -> bool {
        (0..=MAX_CENTS).contains(&self.cents)
    }
}

/// Always two decimals, as PostgreSQL prints `numeric(12,2)`: `1230` cents is `12.30`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_two_decimals() {
        assert_eq!(Money::parse("12.3").unwrap(), Money::from_cents(1230));
        assert_eq!(Money::parse("12.30").unwrap().to_string(), "12.30");
        assert_eq!(Money::parse("0.05").unwrap().to_string(), "0.05");
        assert_eq!(Money::parse("7").unwrap().to_string(), "7.00");
        assert_eq!(Money::parse("007.10").unwrap().cents, 710);
        assert_eq!(Money::parse("9999999999.99").unwrap().cents, MAX_CENTS);
    }

    #[test]
    fn rejects_what_numeric_12_2_cannot_hold() {
        assert!(matches!(
            Money::parse("1.999"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(Money::parse("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(
            Money::parse("10000000000"),
            Err(MoneyError::TooLarge(_))
        ));
        for bad in ["", ".5", "5.", "1e3", "abc", "1.2.3", " 1"] {
            assert!(
                matches!(Money::parse(bad), Err(MoneyError::NotDecimal(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        let price = Money::parse("0.10").unwrap();
        let line = price.checked_mul(3).unwrap();
        assert_eq!(line.to_string(), "0.30");
        assert_eq!(line.checked_add(price).unwrap().to_string(), "0.40");
        assert_eq!(Money::from_cents(i64::MAX).checked_mul(2), None);
    }
}
