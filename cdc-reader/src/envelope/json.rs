//! Writing JSON text the way Kafka Connect's `JsonConverter` (Jackson underneath) writes it.
//!
//! The envelope builder writes JSON by hand into a byte buffer instead of building a tree:
//! the schema half of every record is cached as text, and only the payload is written per
//! record. Byte-for-byte agreement with Debezium needs three Jackson habits reproduced here:
//!
//! ```text
//! strings  control characters as \b \t \n \f \r, others as \u00XX (upper-case hex);
//!          characters beyond U+FFFF as an escaped UTF-16 pair: 🎉 -> \uD83C\uDF89;
//!          everything else, other non-ASCII included, written raw (UTF-8)
//! doubles  Java's Double.toString: 2.25, 1.0E300, -1.23E-4, 0.0 (always a '.' digit);
//!          NaN and infinities as the quoted strings "NaN", "Infinity", "-Infinity"
//! bytes    standard base64 with padding: [0xde,0xad,0xbe,0xef] -> "3q2+7w=="
//! ```

use base64::Engine as _;

/// Appends `text` as a quoted JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    write_str_content(out, text);
    out.push(b'"');
}

/// Appends the escaped content of a JSON string, without the quotes.
pub(crate) fn write_str_content(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let push_unicode_escape = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((unit >> shift) & 0x0f)]);
        }
    };
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            // A 4-byte UTF-8 sequence: a character beyond U+FFFF. Jackson's UTF-8 generator
            // writes its UTF-16 surrogate pair as two escapes.
            0xf0..=0xf7 => {
                out.extend_from_slice(&bytes[start..index]);
                let character = text[index..].chars().next().unwrap_or('\u{fffd}');
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
                index += character.len_utf8();
                start = index;
                continue;
            }
            _ => {
                index += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..index]);
        if short.is_empty() {
            push_unicode_escape(out, u16::from(byte));
        } else {
            out.extend_from_slice(short);
        }
        index += 1;
        start = index;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `text` as a quoted JSON string to a `String` (for schema text built once).
pub(crate) fn push_str(out: &mut String, text: &str) {
    let mut buffer = Vec::with_capacity(text.len() + 2);
    write_str(&mut buffer, text);
    out.push_str(&String::from_utf8_lossy(&buffer));
}

/// Appends an integer (by hand: `write!` costs more than the rest of a small value).
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

/// Appends an unsigned integer.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends a number as exactly `width` digits, zero-padded (for dates and times).
pub(crate) fn write_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut rest = value;
    for slot in digits[20 - width..].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits[20 - width..]);
}

/// Appends a JSON number the way Jackson writes a Java `double`.
pub(crate) fn write_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        out.extend_from_slice(java_double_to_string(value).as_bytes());
    } else {
        write_str(out, non_finite_name(value.is_nan(), value > 0.0));
    }
}

/// Appends a JSON number the way Jackson writes a Java `float`.
pub(crate) fn write_f32(out: &mut Vec<u8>, value: f32) {
    if value.is_finite() {
        out.extend_from_slice(java_float_to_string(value).as_bytes());
    } else {
        write_str(out, non_finite_name(value.is_nan(), value > 0.0));
    }
}

fn non_finite_name(is_nan: bool, positive: bool) -> &'static str {
    match (is_nan, positive) {
        (true, _) => "NaN",
        (false, true) => "Infinity",
        (false, false) => "-Infinity",
    }
}

/// Appends `bytes` as a quoted base64 string (how `JsonConverter` writes BYTES and Decimal).
pub(crate) fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    let encoded_len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + encoded_len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

/// Java's `Double.toString` for a finite value.
pub(crate) fn java_double_to_string(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, like Java 19+ (Java 17 agrees on
    // all but rare corner cases).
    java_style(&format!("{:e}", value))
}

/// Java's `Float.toString` for a finite value.
pub(crate) fn java_float_to_string(value: f32) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    java_style(&format!("{:e}", value))
}

/// Turns Rust's scientific form (`-1.23e-4`, `1e300`, `2.25e0`) into Java's layout: plain
/// decimals for 10^-3 <= |x| < 10^7, else `d.dddE<exp>`.
fn java_style(scientific: &str) -> String {
    let (negative, unsigned) = match scientific.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, scientific),
    };
    let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut text = String::with_capacity(digits.len() + 8);
    if negative {
        text.push('-');
    }
    if (-3..7).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() > int_len {
                text.push_str(&digits[..int_len]);
                text.push('.');
                text.push_str(&digits[int_len..]);
            } else {
                text.push_str(&digits);
                text.extend(std::iter::repeat_n('0', int_len - digits.len()));
                text.push_str(".0");
            }
        } else {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            text.push_str(&digits);
        }
    } else {
        text.push_str(&digits[..1]);
        text.push('.');
        if digits.len() > 1 {
            text.push_str(&digits[1..]);
        } else {
            text.push('0');
        }
        text.push('E');
        text.push_str(&exponent.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_json(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_like_jackson() {
        assert_eq!(string_json("plain"), r#""plain""#);
        assert_eq!(string_json("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string_json("tab\tnl\ncr\r"), r#""tab\tnl\ncr\r""#);
        assert_eq!(
            string_json("\u{1}\u{1f}\u{8}\u{c}"),
            r#""\u0001\u001F\b\f""#
        );
        assert_eq!(string_json("Grüße 世界 /"), "\"Grüße 世界 /\"");
        // Recorded from Debezium (Kafka's JsonConverter): raw BMP characters, escaped pairs beyond.
        assert_eq!(
            string_json("世界 🎉 \"quoted\""),
            r#""世界 \uD83C\uDF89 \"quoted\"""#
        );
    }

    #[test]
    fn doubles_follow_java_double_to_string() {
        let cases: &[(f64, &str)] = &[
            (2.25, "2.25"),
            (-0.5, "-0.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1234567.0, "1234567.0"),
            (1.0e7, "1.0E7"),
            (12345678.9, "1.23456789E7"),
            (0.001, "0.001"),
            (0.000123, "1.23E-4"),
            (1e300, "1.0E300"),
            (1e-300, "1.0E-300"),
            (2.71, "2.71"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (value, expected) in cases {
            assert_eq!(java_double_to_string(*value), *expected, "{value}");
        }
    }

    #[test]
    fn floats_follow_java_float_to_string() {
        assert_eq!(java_float_to_string(1.5), "1.5");
        assert_eq!(java_float_to_string(-0.000123), "-1.23E-4");
        assert_eq!(java_float_to_string(0.1), "0.1");
        assert_eq!(java_float_to_string(16777216.0), "1.6777216E7");
    }

    #[test]
    fn non_finite_numbers_are_quoted_names() {
        let mut out = Vec::new();
        write_f64(&mut out, f64::NAN);
        out.push(b' ');
        write_f32(&mut out, f32::NEG_INFINITY);
        assert_eq!(String::from_utf8(out).unwrap(), r#""NaN" "-Infinity""#);
    }

    #[test]
    fn integers() {
        let mut out = Vec::new();
        for value in [0, 7, -1, i64::MIN, i64::MAX] {
            out.clear();
            write_i64(&mut out, value);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), value.to_string());
        }
        out.clear();
        write_padded(&mut out, 7, 4);
        write_padded(&mut out, 123_456, 6);
        assert_eq!(String::from_utf8(out).unwrap(), "0007123456");
    }

    #[test]
    fn bytes_are_base64() {
        let mut out = Vec::new();
        write_base64(&mut out, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(String::from_utf8(out).unwrap(), r#""3q2+7w==""#);
    }
}
