//! Money as whole cents: how `orders.total numeric(12,2)` travels through the projections.
//!
//! Sums of money must be exact, so amounts are never floats here: a total is its unscaled
//! integer at scale 2 (`12.30` is `1230` cents), the same integer Kafka Connect's `Decimal`
//! logical type carries. [`Cents::from_unscaled`] rescales a decimal of any scale to 2 and
//! refuses one that would lose digits (a schema that does not fit is a poison record, not a
//! rounding question).

use std::fmt;

/// The scale of `orders.total` (`numeric(12,2)`): what a decimal without a schema is assumed to have.
pub const TOTAL_SCALE: u32 = 2;

/// An amount of money in hundredths (cents), exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i64);

/// Why a decimal could not become [`Cents`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("decimal {unscaled}e-{scale} has more than {TOTAL_SCALE} decimal places")]
    TooPrecise { unscaled: i128, scale: u32 },
    #[error("decimal does not fit in 64-bit cents")]
    Overflow,
    #[error("`{0}` is not a decimal number")]
    NotADecimal(String),
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// The decimal `unscaled * 10^-scale`, in cents.
    ///
    /// ```text
    /// from_unscaled(1230, 2) = 1230 cents (12.30)
    /// from_unscaled(123, 1)  = 1230 cents (12.3)
    /// from_unscaled(12301, 3) = error: 12.301 has a third decimal place
    /// ```
    pub fn from_unscaled(unscaled: i128, scale: u32) -> Result<Cents, MoneyError> {
        let cents = if scale <= TOTAL_SCALE {
            let factor = 10i128
                .checked_pow(TOTAL_SCALE - scale)
                .ok_or(MoneyError::Overflow)?;
            unscaled.checked_mul(factor).ok_or(MoneyError::Overflow)?
        } else {
            let divisor = 10i128
                .checked_pow(scale - TOTAL_SCALE)
                .ok_or(MoneyError::Overflow)?;
            if unscaled % divisor != 0 {
                return Err(MoneyError::TooPrecise { unscaled, scale });
            }
            unscaled / divisor
        };
        i64::try_from(cents)
            .map(Cents)
            .map_err(|_| MoneyError::Overflow)
    }

    /// Parses a decimal string such as `"12.30"`, `"-0.5"` or `"7"` (the outbox payload's form,
    /// and Debezium's `decimal.handling.mode=string`).
    pub fn parse(text: &str) -> Result<Cents, MoneyError> {
        let not_decimal = || MoneyError::NotADecimal(text.to_string());
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(not_decimal());
        }
        let scale = u32::try_from(fraction.len()).map_err(|_| not_decimal())?;
        let mut unscaled: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            unscaled = unscaled
                .checked_mul(10)
                .and_then(|u| u.checked_add(i128::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        Cents::from_unscaled(if negative { -unscaled } else { unscaled }, scale)
    }

    /// A JSON number (Debezium's `decimal.handling.mode=double`), rounded to the nearest cent.
    ///
    /// A `numeric(12,2)` has at most 12 significant digits, well inside a double's 15, so
    /// rounding recovers the exact cents.
    pub fn from_f64(value: f64) -> Result<Cents, MoneyError> {
        let cents = (value * 100.0).round();
        if !cents.is_finite() || cents.abs() >= 9.0e15 {
            return Err(MoneyError::NotADecimal(value.to_string()));
        }
        Ok(Cents(cents as i64))
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_neg(self) -> Option<Cents> {
        self.0.checked_neg().map(Cents)
    }
}

/// `1230` cents prints as `12.30`, the text PostgreSQL accepts as a `numeric`.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescales_to_two_places() {
        assert_eq!(Cents::from_unscaled(1230, 2), Ok(Cents(1230)));
        assert_eq!(Cents::from_unscaled(123, 1), Ok(Cents(1230)));
        assert_eq!(Cents::from_unscaled(12300, 3), Ok(Cents(1230)));
        assert_eq!(Cents::from_unscaled(-5, 0), Ok(Cents(-500)));
        assert!(matches!(
            Cents::from_unscaled(12301, 3),
            Err(MoneyError::TooPrecise { .. })
        ));
    }

    #[test]
    fn parses_decimal_strings() {
        assert_eq!(Cents::parse("12.30"), Ok(Cents(1230)));
        assert_eq!(Cents::parse("12.3"), Ok(Cents(1230)));
        assert_eq!(Cents::parse("7"), Ok(Cents(700)));
        assert_eq!(Cents::parse("-0.05"), Ok(Cents(-5)));
        assert_eq!(Cents::parse(".5"), Ok(Cents(50)));
        assert!(Cents::parse("").is_err());
        assert!(Cents::parse("1.2.3").is_err());
        assert!(Cents::parse("12,30").is_err());
        assert!(Cents::parse("1.001").is_err());
    }

    #[test]
    fn doubles_round_to_the_cent() {
        assert_eq!(Cents::from_f64(12.3), Ok(Cents(1230)));
        assert_eq!(Cents::from_f64(0.1 + 0.2), Ok(Cents(30)));
        assert!(Cents::from_f64(f64::NAN).is_err());
    }

    #[test]
    fn displays_as_numeric_text() {
        assert_eq!(Cents(1230).to_string(), "12.30");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(-5).to_string(), "-0.05");
        assert_eq!(Cents(0).to_string(), "0.00");
    }
}
