//! `numeric` values: PostgreSQL's decimal text in, Kafka Connect's Decimal bytes out.
//!
//! Kafka Connect's `org.apache.kafka.connect.data.Decimal` (and Debezium's
//! `VariableScaleDecimal`) carry a number as an *unscaled* integer plus a scale: 47.40 at scale 2
//! is 4740. The integer is written as Java's `BigInteger.toByteArray()` does: big-endian two's
//! complement in the fewest bytes that keep the sign bit right, then base64 in JSON:
//!
//! ```text
//! 47.40  scale 2 -> 4740          -> 12 84       -> "EoQ="
//! 0      scale 0 -> 0             -> 00          -> "AA=="
//! -1     scale 0 -> -1            -> ff          -> "/w=="
//! 128    scale 0 -> 128           -> 00 80       (a leading 00 keeps it positive)
//! -129   scale 0 -> -129          -> ff 7f
//! ```
//!
//! pgoutput sends `numeric` as text (`12.30`, `-0.5`, `NaN`, `Infinity`), with any number of
//! digits, so the unscaled integer is computed here with a small arbitrary-precision routine.

/// A finite decimal as PostgreSQL prints it: sign, integer digits, fraction digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecimalText {
    pub negative: bool,
    /// ASCII digits before the point, without leading zeros ("" for 0.5).
    pub integer: String,
    /// ASCII digits after the point, as given (trailing zeros kept: they are the scale).
    pub fraction: String,
}

/// A `numeric` value: a number or one of PostgreSQL's special values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NumericValue {
    Finite(DecimalText),
    NaN,
    PositiveInfinity,
    NegativeInfinity,
}

impl DecimalText {
    /// The scale: digits after the point.
    pub fn scale(&self) -> usize {
        self.fraction.len()
    }

    /// True when every digit is zero.
    pub fn is_zero(&self) -> bool {
        self.integer
            .bytes()
            .chain(self.fraction.bytes())
            .all(|d| d == b'0')
    }

    /// The same number at `scale` digits after the point, padding with zeros. `None` when that
    /// would drop non-zero digits (Java's `setScale` without rounding throws there too).
    pub fn with_scale(&self, scale: usize) -> Option<DecimalText> {
        let mut fraction = self.fraction.clone();
        if fraction.len() > scale {
            if fraction[scale..].bytes().any(|d| d != b'0') {
                return None;
            }
            fraction.truncate(scale);
        } else {
            fraction.extend(std::iter::repeat_n('0', scale - fraction.len()));
        }
        Some(DecimalText {
            negative: self.negative,
            integer: self.integer.clone(),
            fraction,
        })
    }

    /// Java's `stripTrailingZeros()` followed by "a negative scale becomes 0": what Debezium
    /// does before writing a `VariableScaleDecimal` (12.300 -> 12.3, 1200 -> 1200, 0.00 -> 0).
    pub fn stripped(&self) -> DecimalText {
        let fraction = self.fraction.trim_end_matches('0').to_string();
        DecimalText {
            negative: self.negative && !self.is_zero(),
            integer: self.integer.clone(),
            fraction,
        }
    }

    /// Java's `BigDecimal.toPlainString()`: `-12.30`, `0.5` -> `0.5`, `0` -> `0`.
    pub fn to_plain_string(&self) -> String {
        let mut text = String::with_capacity(self.integer.len() + self.fraction.len() + 3);
        if self.negative && !self.is_zero() {
            text.push('-');
        }
        if self.integer.is_empty() {
            text.push('0');
        } else {
            text.push_str(&self.integer);
        }
        if !self.fraction.is_empty() {
            text.push('.');
            text.push_str(&self.fraction);
        }
        text
    }

    /// The unscaled value as `BigInteger.toByteArray()` writes it.
    pub fn unscaled_bytes(&self) -> Vec<u8> {
        let digits = self.integer.bytes().chain(self.fraction.bytes());
        twos_complement(self.negative, &magnitude_be(digits))
    }
}

/// Parses PostgreSQL's `numeric` text output.
pub(crate) fn parse_numeric(text: &str) -> Option<NumericValue> {
    match text {
        "NaN" => return Some(NumericValue::NaN),
        "Infinity" => return Some(NumericValue::PositiveInfinity),
        "-Infinity" => return Some(NumericValue::NegativeInfinity),
        _ => {}
    }
    parse_decimal(text).map(NumericValue::Finite)
}

/// Parses a plain decimal (`-12.30`, `+5`, `.5`, `7.`); no exponents, as PostgreSQL never
/// prints one for `numeric`.
pub(crate) fn parse_decimal(text: &str) -> Option<DecimalText> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (integer.is_empty() && fraction.is_empty()) || !all_digits(integer) || !all_digits(fraction)
    {
        return None;
    }
    Some(DecimalText {
        negative,
        integer: integer.trim_start_matches('0').to_string(),
        fraction: fraction.to_string(),
    })
}

/// Big-endian magnitude bytes (no leading zero bytes; empty for zero) of a run of decimal digits.
fn magnitude_be(digits: impl Iterator<Item = u8>) -> Vec<u8> {
    // Little-endian base-2^32 limbs, fed nine decimal digits at a time.
    let mut limbs: Vec<u32> = Vec::new();
    let mut chunk: u64 = 0;
    let mut chunk_len = 0u32;
    let feed = |limbs: &mut Vec<u32>, chunk: u64, chunk_len: u32| {
        let mut carry = chunk;
        let multiplier = 10u64.pow(chunk_len);
        for limb in limbs.iter_mut() {
            let product = u64::from(*limb) * multiplier + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    };
    for digit in digits {
        chunk = chunk * 10 + u64::from(digit - b'0');
        chunk_len += 1;
        if chunk_len == 9 {
            feed(&mut limbs, chunk, chunk_len);
            chunk = 0;
            chunk_len = 0;
        }
    }
    if chunk_len > 0 {
        feed(&mut limbs, chunk, chunk_len);
    }
    let mut bytes: Vec<u8> = limbs
        .iter()
        .rev()
        .flat_map(|limb| limb.to_be_bytes())
        .collect();
    let leading_zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..leading_zeros);
    bytes
}

/// Minimal big-endian two's complement of `±magnitude`, like `BigInteger.toByteArray()`.
fn twos_complement(negative: bool, magnitude: &[u8]) -> Vec<u8> {
    if magnitude.is_empty() {
        return vec![0];
    }
    if !negative {
        let mut bytes = Vec::with_capacity(magnitude.len() + 1);
        if magnitude[0] & 0x80 != 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(magnitude);
        return bytes;
    }
    let mut bytes: Vec<u8> = magnitude.iter().map(|b| !b).collect();
    for byte in bytes.iter_mut().rev() {
        let (sum, overflow) = byte.overflowing_add(1);
        *byte = sum;
        if !overflow {
            break;
        }
    }
    if bytes[0] & 0x80 == 0 {
        bytes.insert(0, 0xff);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes_of(text: &str) -> Vec<u8> {
        parse_decimal(text).unwrap().unscaled_bytes()
    }

    /// Test helper: decimal digits of a big-endian two's complement integer.
    fn decode(bytes: &[u8]) -> String {
        let negative = bytes[0] & 0x80 != 0;
        let mut magnitude: Vec<u8> = bytes.to_vec();
        if negative {
            // magnitude = !(x - 1)
            for byte in magnitude.iter_mut().rev() {
                let (diff, borrow) = byte.overflowing_sub(1);
                *byte = diff;
                if !borrow {
                    break;
                }
            }
            for byte in magnitude.iter_mut() {
                *byte = !*byte;
            }
        }
        // Repeated division by 10 of the big-endian magnitude.
        let mut digits = Vec::new();
        while magnitude.iter().any(|b| *b != 0) {
            let mut remainder = 0u32;
            for byte in magnitude.iter_mut() {
                let value = (remainder << 8) | u32::from(*byte);
                *byte = (value / 10) as u8;
                remainder = value % 10;
            }
            digits.push(b'0' + remainder as u8);
        }
        if digits.is_empty() {
            digits.push(b'0');
        }
        if negative {
            digits.push(b'-');
        }
        digits.reverse();
        String::from_utf8(digits).unwrap()
    }

    #[test]
    fn known_encodings_match_java_big_integer() {
        assert_eq!(bytes_of("47.40"), vec![0x12, 0x84]);
        assert_eq!(bytes_of("0"), vec![0x00]);
        assert_eq!(bytes_of("0.00"), vec![0x00]);
        assert_eq!(bytes_of("-1"), vec![0xff]);
        assert_eq!(bytes_of("127"), vec![0x7f]);
        assert_eq!(bytes_of("128"), vec![0x00, 0x80]);
        assert_eq!(bytes_of("-128"), vec![0x80]);
        assert_eq!(bytes_of("-129"), vec![0xff, 0x7f]);
        assert_eq!(bytes_of("-256"), vec![0xff, 0x00]);
        assert_eq!(bytes_of("255"), vec![0x00, 0xff]);
        assert_eq!(bytes_of("65536"), vec![0x01, 0x00, 0x00]);
        // From the recorded Debezium output (conformance/debezium/types.jsonl):
        // -9999999999.99 -> "/xcrWvAB"
        assert_eq!(
            bytes_of("-9999999999.99"),
            vec![0xff, 0x17, 0x2b, 0x5a, 0xf0, 0x01]
        );
    }

    #[test]
    fn many_digits_round_trip() {
        let text = "-123456789012345678901234567890123456789";
        let parsed = parse_decimal(text).unwrap();
        assert_eq!(decode(&parsed.unscaled_bytes()), text);
    }

    #[test]
    fn scale_and_strip_follow_big_decimal() {
        let value = parse_decimal("12.300").unwrap();
        assert_eq!(value.stripped().to_plain_string(), "12.3");
        assert_eq!(
            parse_decimal("1200").unwrap().stripped().to_plain_string(),
            "1200"
        );
        assert_eq!(
            parse_decimal("-0.000")
                .unwrap()
                .stripped()
                .to_plain_string(),
            "0"
        );
        assert_eq!(
            parse_decimal("5")
                .unwrap()
                .with_scale(2)
                .unwrap()
                .to_plain_string(),
            "5.00"
        );
        assert_eq!(
            parse_decimal("5.10")
                .unwrap()
                .with_scale(1)
                .unwrap()
                .to_plain_string(),
            "5.1"
        );
        assert!(parse_decimal("5.15").unwrap().with_scale(1).is_none());
        assert_eq!(parse_decimal(".5").unwrap().to_plain_string(), "0.5");
    }

    #[test]
    fn special_values_and_garbage() {
        assert_eq!(parse_numeric("NaN"), Some(NumericValue::NaN));
        assert_eq!(
            parse_numeric("-Infinity"),
            Some(NumericValue::NegativeInfinity)
        );
        assert_eq!(parse_numeric("1e5"), None);
        assert_eq!(parse_numeric(""), None);
        assert_eq!(parse_numeric("-"), None);
        assert_eq!(parse_numeric("1.2.3"), None);
    }

    proptest! {
        #[test]
        fn unscaled_bytes_decode_to_the_same_number(
            negative in any::<bool>(),
            integer in "[0-9]{0,40}",
            fraction in "[0-9]{0,20}",
        ) {
            prop_assume!(!(integer.is_empty() && fraction.is_empty()));
            let text = format!("{}{}.{}", if negative { "-" } else { "" }, integer, fraction);
            let parsed = parse_decimal(&text).unwrap();
            let bytes = parsed.unscaled_bytes();
            let digits = format!("{integer}{fraction}");
            let trimmed = digits.trim_start_matches('0');
            let expected = match (trimmed.is_empty(), negative) {
                (true, _) => "0".to_string(),
                (false, true) => format!("-{trimmed}"),
                (false, false) => trimmed.to_string(),
            };
            prop_assert_eq!(decode(&bytes), expected);
            // Minimal: no redundant sign byte.
            if bytes.len() > 1 {
                let redundant = (bytes[0] == 0x00 && bytes[1] & 0x80 == 0)
                    || (bytes[0] == 0xff && bytes[1] & 0x80 != 0);
                prop_assert!(!redundant, "{:?}", bytes);
            }
        }

        #[test]
        fn small_values_match_i128(value in any::<i64>()) {
            let bytes = parse_decimal(&value.to_string()).unwrap().unscaled_bytes();
            let full = value.to_be_bytes();
            // Strip redundant sign bytes from the fixed-width form to get Java's minimal form.
            let mut start = 0;
            while start < full.len() - 1
                && ((full[start] == 0x00 && full[start + 1] & 0x80 == 0)
                    || (full[start] == 0xff && full[start + 1] & 0x80 != 0))
            {
                start += 1;
            }
            prop_assert_eq!(bytes, full[start..].to_vec());
        }
    }
}
