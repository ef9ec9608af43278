//! Converting one value from PostgreSQL's text form to its JSON payload form.
//!
//! ```text
//! kind                    pgoutput text                  JSON written
//! Int64                   9000000000                     9000000000
//! Float32                 -0.000123                      -1.23E-4
//! Bytes                   \xdeadbeef                     "3q2+7w=="
//! Decimal scale 2         1234.56                        "AeJA"
//! VariableScaleDecimal    3.14159                        {"scale":5,"value":"BMsv"}
//! TimestampMicros         2024-03-15 12:34:56            1710506096000000
//! Array of Int32          {1,NULL,3}                     [1,null,3]
//! ```

use super::array::parse_array;
use super::config::BinaryHandling;
use super::decimal::{parse_decimal, parse_numeric, DecimalText, NumericValue};
use super::extra_types;
use super::json;
use super::kind::ValueKind;
use super::temporal::{self, TimestampValue};

/// Appends the JSON form of `text` (a non-NULL value of `kind`) to `out`, or says why the text
/// is not a valid value of that kind.
pub(crate) fn write_value(kind: &ValueKind, text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    match kind {
        ValueKind::Boolean => match text {
            "t" | "true" => out.extend_from_slice(b"true"),
            "f" | "false" => out.extend_from_slice(b"false"),
            _ => return Err("expected t or f".into()),
        },
        ValueKind::AlwaysNull => out.extend_from_slice(b"null"),
        ValueKind::Int16 => json::write_i64(out, i64::from(parse::<i16>(text)?)),
        ValueKind::Int32 => json::write_i64(out, i64::from(parse::<i32>(text)?)),
        ValueKind::Int64 => json::write_i64(out, parse_int64(text)?),
        ValueKind::Float32 => json::write_f32(out, parse_float(text)? as f32),
        ValueKind::Float64 => json::write_f64(out, parse_float(text)?),
        ValueKind::String { .. } | ValueKind::Enum { .. } | ValueKind::Unmapped => {
            json::write_str(out, text)
        }
        ValueKind::Bytes { binary } => write_binary(out, &decode_bytea(text)?, *binary),
        ValueKind::UnknownBytes {
            binary,
            geometric: false,
        } => write_binary(out, text.as_bytes(), *binary),
        ValueKind::UnknownBytes {
            binary,
            geometric: true,
        } => write_binary(out, java_geometric_text(text).as_bytes(), *binary),
        ValueKind::Decimal {
            scale,
            money: false,
            ..
        } if small_unscaled(text, *scale).is_some() => {
            // The common case (at most 18 digits) without big-number arithmetic.
            let unscaled = small_unscaled(text, *scale).unwrap_or_default();
            json::write_base64(out, minimal_twos_complement(&unscaled.to_be_bytes()));
        }
        ValueKind::Decimal { scale, money, .. } => {
            let decimal = finite_decimal(text, *money, "decimal.handling.mode=precise")?;
            let scaled = decimal
                .with_scale(*scale)
                .ok_or_else(|| format!("has more than the column's {scale} fraction digits"))?;
            json::write_base64(out, &scaled.unscaled_bytes());
        }
        ValueKind::VariableScaleDecimal => {
            let decimal = finite_decimal(text, false, "decimal.handling.mode=precise")?.stripped();
            out.extend_from_slice(b"{\"scale\":");
            json::write_i64(out, decimal.scale() as i64);
            out.extend_from_slice(b",\"value\":");
            json::write_base64(out, &decimal.unscaled_bytes());
            out.push(b'}');
        }
        ValueKind::DecimalAsDouble { money } => match numeric(text, *money)? {
            NumericValue::Finite(decimal) => {
                json::write_f64(out, parse_float(&decimal.to_plain_string())?)
            }
            NumericValue::NaN => json::write_f64(out, f64::NAN),
            NumericValue::PositiveInfinity => json::write_f64(out, f64::INFINITY),
            NumericValue::NegativeInfinity => json::write_f64(out, f64::NEG_INFINITY),
        },
        ValueKind::DecimalAsString { scale, money } => match numeric(text, *money)? {
            NumericValue::Finite(decimal) => {
                let decimal = match scale {
                    Some(scale) => decimal.with_scale(*scale).ok_or_else(|| {
                        format!("has more than the column's {scale} fraction digits")
                    })?,
                    None => decimal,
                };
                json::write_str(out, &decimal.to_plain_string());
            }
            // Debezium writes the Java enum constant names of its SpecialValueDecimal.
            NumericValue::NaN => json::write_str(out, "NAN"),
            NumericValue::PositiveInfinity => json::write_str(out, "POSITIVE_INFINITY"),
            NumericValue::NegativeInfinity => json::write_str(out, "NEGATIVE_INFINITY"),
        },
        ValueKind::Date { .. } => {
            json::write_i64(
                out,
                i64::from(temporal::parse_date(text).ok_or("expected YYYY-MM-DD")?),
            );
        }
        ValueKind::TimeMicros => {
            json::write_i64(out, temporal::parse_time(text).ok_or("expected HH:MM:SS")?)
        }
        ValueKind::TimeMillis { .. } => {
            json::write_i64(
                out,
                temporal::parse_time(text).ok_or("expected HH:MM:SS")? / 1000,
            );
        }
        ValueKind::TimestampMicros => {
            json::write_i64(out, temporal::timestamp_micros(timestamp(text)?))
        }
        ValueKind::TimestampMillis { .. } => {
            json::write_i64(out, temporal::timestamp_millis(timestamp(text)?));
        }
        ValueKind::ZonedTimestamp { fraction_digits } => {
            match temporal::parse_timestamptz(text)
                .ok_or("expected YYYY-MM-DD HH:MM:SS[.f]+HH[:MM]")?
            {
                TimestampValue::Micros(micros) => {
                    out.push(b'"');
                    temporal::write_zoned_timestamp(out, micros, *fraction_digits);
                    out.push(b'"');
                }
                TimestampValue::PositiveInfinity => json::write_str(out, "infinity"),
                TimestampValue::NegativeInfinity => json::write_str(out, "-infinity"),
            }
        }
        ValueKind::ZonedTime => {
            json::write_str(
                out,
                &temporal::format_timetz(text).ok_or("expected HH:MM:SS[.f]+HH[:MM]")?,
            );
        }
        ValueKind::Interval => {
            json::write_i64(
                out,
                temporal::interval_micros(text)
                    .ok_or("expected an interval like 1 day 02:00:00")?,
            );
        }
        ValueKind::IntervalString => {
            json::write_str(
                out,
                &temporal::interval_iso(text).ok_or("expected an interval like 1 day 02:00:00")?,
            );
        }
        ValueKind::BitBoolean => {
            let value: &[u8] = if extra_types::bit_boolean(text)? {
                b"true"
            } else {
                b"false"
            };
            out.extend_from_slice(value);
        }
        ValueKind::Bits { .. } => json::write_base64(out, &extra_types::bits_bytes(text)?),
        ValueKind::Point => {
            let (x, y) = extra_types::parse_point(text)?;
            extra_types::write_point(out, x, y);
        }
        ValueKind::Hstore => extra_types::write_hstore_json(out, text)?,
        ValueKind::HstoreMap => extra_types::write_hstore_map(out, text)?,
        ValueKind::Array { items, .. } => {
            out.push(b'[');
            for (index, element) in parse_array(text)?.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                match element {
                    // Debezium reads array elements through the JDBC driver, which turns
                    // `-infinity` into its smallest timestamp (while `infinity` stays a string).
                    Some(element)
                        if element.as_str() == "-infinity"
                            && matches!(**items, ValueKind::ZonedTimestamp { .. }) =>
                    {
                        json::write_str(out, NEGATIVE_INFINITY_IN_ARRAY)
                    }
                    Some(element) => write_value(items, element, out)?,
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b']');
        }
    }
    Ok(())
}

/// A geometric value (`box`, `circle`, `line`, ...) as the JDBC driver's `PGbox`, `PGcircle`,
/// ... print it: every number as a Java double (`((0,0),(1,2))` -> `(1.0,2.0),(0.0,0.0)` for a
/// box, whose text PostgreSQL already gives as `(1,2),(0,0)`).
fn java_geometric_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut number = String::new();
    let flush = |number: &mut String, out: &mut String| {
        if !number.is_empty() {
            match number.parse::<f64>() {
                Ok(value) => out.push_str(&json::java_double_to_string(value)),
                Err(_) => out.push_str(number),
            }
            number.clear();
        }
    };
    for c in text.chars() {
        if matches!(c, '(' | ')' | '<' | '>' | '{' | '}' | '[' | ']' | ',') {
            flush(&mut number, &mut out);
            out.push(c);
        } else if !c.is_whitespace() {
            number.push(c);
        }
    }
    flush(&mut number, &mut out);
    out
}

/// Bytes in the form of `binary.handling.mode`: base64 of Kafka Connect bytes (or a base64
/// string: the same text), URL-safe base64, or lower-case hex.
pub(crate) fn write_binary(out: &mut Vec<u8>, bytes: &[u8], mode: BinaryHandling) {
    use base64::Engine as _;
    match mode {
        BinaryHandling::Bytes | BinaryHandling::Base64 => json::write_base64(out, bytes),
        BinaryHandling::Base64UrlSafe => {
            out.push(b'"');
            out.extend_from_slice(
                base64::engine::general_purpose::URL_SAFE
                    .encode(bytes)
                    .as_bytes(),
            );
            out.push(b'"');
        }
        BinaryHandling::Hex => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push(b'"');
            for byte in bytes {
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0x0f)]);
            }
            out.push(b'"');
        }
    }
}

/// What Debezium writes for `-infinity` inside a `timestamptz[]` (seen in its output, see
/// `conformance/debezium/more_types.jsonl`).
const NEGATIVE_INFINITY_IN_ARRAY: &str = "+292269055-12-02T23:00:00.000000Z";

/// The unscaled value of a plain decimal at `scale`, when it has at most 18 digits in all.
fn small_unscaled(text: &str, scale: usize) -> Option<i64> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if integer.len() + scale > 18 || fraction.len() > scale || integer.len() + fraction.len() == 0 {
        return None;
    }
    let mut unscaled: i64 = 0;
    for digit in integer.bytes().chain(fraction.bytes()) {
        if !digit.is_ascii_digit() {
            return None;
        }
        unscaled = unscaled * 10 + i64::from(digit - b'0');
    }
    unscaled *= 10i64.pow((scale - fraction.len()) as u32);
    Some(if negative { -unscaled } else { unscaled })
}

/// Drops redundant leading sign bytes of a big-endian two's complement number.
fn minimal_twos_complement(bytes: &[u8]) -> &[u8] {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let redundant = (bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    &bytes[start..]
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| "not a number of the column's type".to_string())
}

/// `int8` or `oid` (an unsigned 32-bit number, which fits).
fn parse_int64(text: &str) -> Result<i64, String> {
    parse::<i64>(text)
}

/// `float4`/`float8` text, including PostgreSQL's `NaN`, `Infinity`, `-Infinity`.
fn parse_float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ if text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            Err("not a floating-point number".into())
        }
        _ => parse(text),
    }
}

fn timestamp(text: &str) -> Result<TimestampValue, String> {
    temporal::parse_timestamp(text).ok_or_else(|| "expected YYYY-MM-DD HH:MM:SS[.f]".into())
}

/// A `numeric` (or `money`, `$1,234.56`) value.
fn numeric(text: &str, money: bool) -> Result<NumericValue, String> {
    if money {
        return parse_money(text).map(NumericValue::Finite);
    }
    parse_numeric(text).ok_or_else(|| "not a numeric value".into())
}

/// A finite decimal; NaN/Infinity cannot be a Kafka Connect Decimal (Debezium fails too).
fn finite_decimal(text: &str, money: bool, mode: &str) -> Result<DecimalText, String> {
    match numeric(text, money)? {
        NumericValue::Finite(decimal) => Ok(decimal),
        _ => Err(format!(
            "NaN/Infinity cannot be written with {mode}; use decimal.handling.mode string or double"
        )),
    }
}

/// `money` as printed under lc_monetary C/en_US: `$1,234.56`, `-$1,234.56`, `($1.00)`.
fn parse_money(text: &str) -> Result<DecimalText, String> {
    let negative = text.starts_with('-') || text.starts_with('(');
    let digits: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut decimal = parse_decimal(&digits).ok_or("not a money value")?;
    decimal.negative = negative;
    Ok(decimal)
}

/// `bytea` in hex (`\xdeadbeef`, the default `bytea_output`) or escape format.
pub(crate) fn decode_bytea(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("\\x") {
        if hex.len() % 2 != 0 {
            return Err("odd number of hex digits".into());
        }
        return (0..hex.len())
            .step_by(2)
            .map(|at| {
                u8::from_str_radix(&hex[at..at + 2], 16).map_err(|_| "not a hex digit".to_string())
            })
            .collect();
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'\\' {
            decoded.push(bytes[index]);
            index += 1;
        } else if bytes.get(index + 1) == Some(&b'\\') {
            decoded.push(b'\\');
            index += 2;
        } else {
            let octal = text.get(index + 1..index + 4).ok_or("truncated escape")?;
            decoded.push(u8::from_str_radix(octal, 8).map_err(|_| "bad octal escape".to_string())?);
            index += 4;
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(kind: &ValueKind, text: &str) -> String {
        let mut out = Vec::new();
        write_value(kind, text, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Expected values from conformance/debezium/{binary_handling_mode_*,hstore_handling_mode_map,
    /// include_unknown_datatypes_true,interval_handling_mode_string}/ (Debezium 3.6.1).
    #[test]
    fn value_options_match_recorded_debezium_output() {
        let bytes = |binary| ValueKind::Bytes { binary };
        assert_eq!(
            json_of(&bytes(BinaryHandling::Base64), "\\xdeadbeef"),
            "\"3q2+7w==\""
        );
        assert_eq!(
            json_of(&bytes(BinaryHandling::Base64UrlSafe), "\\xdeadbeef"),
            "\"3q2-7w==\""
        );
        assert_eq!(
            json_of(&bytes(BinaryHandling::Hex), "\\xdeadbeef"),
            "\"deadbeef\""
        );
        assert_eq!(
            json_of(&ValueKind::HstoreMap, r#""a"=>"1", "b"=>NULL"#),
            r#"{"a":"1","b":null}"#
        );
        assert_eq!(
            json_of(&ValueKind::IntervalString, "-10 mons -3 days +04:05:06.789"),
            "\"P0Y-10M-3DT4H5M6.789S\""
        );
        assert_eq!(java_geometric_text("(1,2),(0,0)"), "(1.0,2.0),(0.0,0.0)");
        assert_eq!(java_geometric_text("<(1,2),3>"), "<(1.0,2.0),3.0>");
        assert_eq!(java_geometric_text("{1,-1,0}"), "{1.0,-1.0,0.0}");
        let unknown = ValueKind::UnknownBytes {
            binary: BinaryHandling::Bytes,
            geometric: true,
        };
        assert_eq!(
            json_of(&unknown, "(5,5),(-1,-1)"),
            "\"KDUuMCw1LjApLCgtMS4wLC0xLjAp\""
        );
    }

    /// Expected values from conformance/debezium/types.jsonl (real Debezium 3.6.1 output).
    #[test]
    fn values_match_recorded_debezium_output() {
        let decimal = ValueKind::Decimal {
            scale: 2,
            precision: Some(12),
            money: false,
        };
        assert_eq!(json_of(&ValueKind::Int64, "9000000000"), "9000000000");
        assert_eq!(json_of(&ValueKind::Float32, "1.5"), "1.5");
        assert_eq!(json_of(&ValueKind::Float64, "1e+300"), "1.0E300");
        assert_eq!(json_of(&ValueKind::Boolean, "t"), "true");
        assert_eq!(json_of(&decimal, "1234.56"), "\"AeJA\"");
        assert_eq!(json_of(&decimal, "-9999999999.99"), "\"/xcrWvAB\"");
        assert_eq!(json_of(&decimal, "0.01"), "\"AQ==\"");
        assert_eq!(
            json_of(&ValueKind::VariableScaleDecimal, "3.14159"),
            r#"{"scale":5,"value":"BMsv"}"#
        );
        assert_eq!(
            json_of(
                &ValueKind::VariableScaleDecimal,
                "-123456789012345678901234567890.123456789"
            ),
            r#"{"scale":9,"value":"ox8WWp/qATpVIFzXUcZ+6w=="}"#
        );
        assert_eq!(
            json_of(&ValueKind::VariableScaleDecimal, "0"),
            r#"{"scale":0,"value":"AA=="}"#
        );
        assert_eq!(
            json_of(&ValueKind::Date { connect: false }, "2024-03-15"),
            "19797"
        );
        assert_eq!(
            json_of(&ValueKind::TimestampMicros, "1969-07-20 20:17:40.123456"),
            "-14182939876544"
        );
        assert_eq!(
            json_of(
                &ValueKind::ZonedTimestamp { fraction_digits: 6 },
                "2024-03-15 12:34:56+02"
            ),
            "\"2024-03-15T10:34:56.000000Z\""
        );
        assert_eq!(json_of(&ValueKind::TimeMicros, "12:34:56"), "45296000000");
        assert_eq!(
            json_of(&ValueKind::ZonedTime, "12:34:56+02"),
            "\"10:34:56Z\""
        );
        assert_eq!(
            json_of(
                &ValueKind::Bytes {
                    binary: BinaryHandling::Bytes
                },
                "\\xdeadbeef"
            ),
            "\"3q2+7w==\""
        );
        assert_eq!(
            json_of(
                &ValueKind::Bytes {
                    binary: BinaryHandling::Bytes
                },
                "\\x"
            ),
            "\"\""
        );
        let text_array = ValueKind::Array {
            items: Box::new(ValueKind::String { logical: None }),
            items_optional: true,
        };
        assert_eq!(
            json_of(
                &text_array,
                r#"{"with space","quo\"te",NULL,"comma,here",""}"#
            ),
            r#"["with space","quo\"te",null,"comma,here",""]"#
        );
        let int_array = ValueKind::Array {
            items: Box::new(ValueKind::Int32),
            items_optional: true,
        };
        assert_eq!(json_of(&int_array, "{1,NULL,3}"), "[1,null,3]");
        assert_eq!(json_of(&int_array, "{}"), "[]");
    }

    #[test]
    fn small_decimals_take_the_fast_path_with_the_same_bytes() {
        let decimal = ValueKind::Decimal {
            scale: 2,
            precision: Some(20),
            money: false,
        };
        for text in [
            "0",
            "0.00",
            "-0.01",
            "47.4",
            "-128",
            "127.99",
            "9999999999999999.99",
            "99999999999999999.99",
        ] {
            let slow = crate::envelope::decimal::parse_decimal(text)
                .unwrap()
                .with_scale(2)
                .unwrap()
                .unscaled_bytes();
            let mut expected = Vec::new();
            json::write_base64(&mut expected, &slow);
            assert_eq!(
                json_of(&decimal, text),
                String::from_utf8(expected).unwrap(),
                "{text}"
            );
        }
        assert_eq!(small_unscaled("1.234", 2), None);
        assert_eq!(small_unscaled("12.3", 2), Some(1230));
    }

    #[test]
    fn decimal_modes_and_special_values() {
        let as_double = ValueKind::DecimalAsDouble { money: false };
        let as_string = ValueKind::DecimalAsString {
            scale: Some(2),
            money: false,
        };
        assert_eq!(json_of(&as_double, "47.40"), "47.4");
        assert_eq!(json_of(&as_double, "NaN"), "\"NaN\"");
        assert_eq!(json_of(&as_string, "47.4"), "\"47.40\"");
        assert_eq!(json_of(&as_string, "NaN"), "\"NAN\"");
        assert_eq!(json_of(&as_string, "-Infinity"), "\"NEGATIVE_INFINITY\"");
        assert!(write_value(&ValueKind::VariableScaleDecimal, "NaN", &mut Vec::new()).is_err());
        let money = ValueKind::Decimal {
            scale: 2,
            precision: None,
            money: true,
        };
        assert_eq!(
            json_of(&money, "-$1,234.56"),
            json_of(
                &ValueKind::Decimal {
                    scale: 2,
                    precision: None,
                    money: false
                },
                "-1234.56"
            )
        );
    }

    #[test]
    fn special_floats_and_timestamps() {
        assert_eq!(json_of(&ValueKind::Float64, "NaN"), "\"NaN\"");
        assert_eq!(json_of(&ValueKind::Float32, "-Infinity"), "\"-Infinity\"");
        assert_eq!(
            json_of(&ValueKind::TimestampMicros, "infinity"),
            "9223372036825200000"
        );
        assert_eq!(
            json_of(
                &ValueKind::TimestampMillis { connect: false },
                "2024-03-15 12:34:56.789"
            ),
            "1710506096789"
        );
        assert_eq!(
            json_of(
                &ValueKind::ZonedTimestamp { fraction_digits: 6 },
                "-infinity"
            ),
            "\"-infinity\""
        );
        assert!(write_value(&ValueKind::Int32, "12x", &mut Vec::new()).is_err());
        assert!(write_value(&ValueKind::Float64, "nan", &mut Vec::new()).is_err());
    }

    /// Range ends and special values, expected values from
    /// conformance/debezium/special_values.jsonl (Debezium 3.6.1).
    #[test]
    fn range_ends_as_debezium_writes_them() {
        let variable = ValueKind::VariableScaleDecimal;
        assert_eq!(json_of(&variable, "-0"), r#"{"scale":0,"value":"AA=="}"#);
        let decimal = ValueKind::Decimal {
            scale: 2,
            precision: Some(10),
            money: false,
        };
        assert_eq!(json_of(&decimal, "-0.00"), "\"AA==\"");
        assert_eq!(json_of(&decimal, "99999999.99"), "\"AlQL4/8=\"");
        assert_eq!(json_of(&ValueKind::Float64, "-0"), "-0.0");
        assert_eq!(json_of(&ValueKind::Float32, "-0"), "-0.0");
        assert_eq!(
            json_of(&ValueKind::Date { connect: false }, "4713-11-24 BC"),
            "-2440222"
        );
        assert_eq!(
            json_of(&ValueKind::Date { connect: false }, "5874897-12-31"),
            "2145042905"
        );
        assert_eq!(
            json_of(&ValueKind::Date { connect: false }, "0044-03-15 BC"),
            "-735160"
        );
        assert_eq!(
            json_of(&ValueKind::TimestampMicros, "4713-11-24 00:00:00 BC"),
            "-210835180800000000"
        );
        // Java's saturating-then-wrapping arithmetic, reproduced.
        assert_eq!(
            json_of(&ValueKind::TimestampMicros, "294276-12-31 23:59:59.999999"),
            "-9223372036853775810"
        );
        let zoned = ValueKind::ZonedTimestamp { fraction_digits: 6 };
        assert_eq!(
            json_of(&zoned, "294276-12-31 23:59:59.999999+00"),
            "\"+294276-12-31T23:59:59.999999Z\""
        );
        assert_eq!(
            json_of(&zoned, "4713-11-24 00:00:00+00 BC"),
            "\"-4712-11-24T00:00:00.000000Z\""
        );
        assert_eq!(json_of(&ValueKind::TimeMicros, "24:00:00"), "86400000000");
        assert_eq!(
            json_of(&ValueKind::ZonedTime, "24:00:00+00"),
            "\"00:00:00Z\""
        );
        assert_eq!(
            json_of(&ValueKind::ZonedTime, "23:59:59.999999-15:59"),
            "\"15:58:59.999999Z\""
        );
        assert_eq!(
            json_of(&ValueKind::Interval, "178000000 years"),
            "9223372036854775807"
        );
        assert_eq!(
            json_of(&ValueKind::Interval, "-178000000 years"),
            "-9223372036854775808"
        );
        let money = ValueKind::Decimal {
            scale: 2,
            precision: None,
            money: true,
        };
        assert_eq!(
            json_of(&money, "$92,233,720,368,547,758.07"),
            "\"f/////////8=\""
        );
        assert_eq!(
            json_of(&money, "-$92,233,720,368,547,758.08"),
            "\"gAAAAAAAAAA=\""
        );
    }

    /// Values Debezium cannot write (it logs a warning and leaves the field null, or stops):
    /// an error here, which the builder turns into a null field and a warning.
    #[test]
    fn values_without_a_debezium_form_are_errors_not_panics() {
        let decimal = ValueKind::Decimal {
            scale: 2,
            precision: Some(10),
            money: false,
        };
        let numeric_array = ValueKind::Array {
            items: Box::new(ValueKind::VariableScaleDecimal),
            items_optional: true,
        };
        let int_array = ValueKind::Array {
            items: Box::new(ValueKind::Int32),
            items_optional: true,
        };
        for (kind, text) in [
            (&ValueKind::VariableScaleDecimal, "NaN"),
            (&ValueKind::VariableScaleDecimal, "Infinity"),
            (&decimal, "NaN"),
            (&numeric_array, "{1.5,NaN}"),
            (&int_array, "{{1,2},{3,4}}"),
            (
                &ValueKind::Interval,
                "2147483647 days 2562047788:00:54.775807",
            ),
        ] {
            assert!(write_value(kind, text, &mut Vec::new()).is_err(), "{text}");
        }
    }

    #[test]
    fn bytea_escape_format() {
        assert_eq!(
            decode_bytea(r"a\\b\001").unwrap(),
            vec![b'a', b'\\', b'b', 1]
        );
        assert!(decode_bytea(r"\x0").is_err());
    }
}
