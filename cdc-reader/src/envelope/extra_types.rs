//! The formats behind the less common types Debezium maps: bit strings, `point` and `hstore`.
//!
//! ```text
//! bit(1), varbit(1)  1                      -> boolean                           true
//! bit(8)             10100101               -> bytes io.debezium.data.Bits       "pQ=="  (little-endian, bit 0 = last digit)
//! varbit(33)         101                    -> bytes io.debezium.data.Bits       "BQ=="  (only the bytes up to the highest 1)
//! point              (1.5,-2.25)            -> struct io.debezium.data.geometry.Point
//!                                              {"x":1.5,"y":-2.25,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAALA","srid":null}
//! hstore             "a"=>"1", "b"=>NULL    -> string io.debezium.data.Json      "{\"a\":\"1\",\"b\":null}"
//!   (hstore.handling.mode=map)              -> map<string, optional string>      {"a":"1","b":null}
//! ```
//!
//! Debezium's quirks kept here on purpose: bit strings go through Java's `BitSet.toByteArray()`
//! (all zeroes are zero bytes, not `length/8` bytes), and an hstore becomes JSON through a Java
//! `HashMap`, so its keys come out in that map's iteration order, not in PostgreSQL's.

use super::json;

/// A bit string (`0`/`1` characters) as Debezium's `Bits` bytes.
pub(crate) fn bits_bytes(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if !digits.iter().all(|d| matches!(d, b'0' | b'1')) {
        return Err("expected a bit string of 0s and 1s".into());
    }
    let mut bytes = vec![0u8; digits.len().div_ceil(8)];
    for (bit, digit) in digits.iter().rev().enumerate() {
        if *digit == b'1' {
            bytes[bit / 8] |= 1 << (bit % 8);
        }
    }
    // BitSet.toByteArray(): no bytes beyond the highest set bit.
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    Ok(bytes)
}

/// A `bit(1)`/`varbit(1)` as a boolean: Java's `Integer.valueOf(text, 2) != 0`.
pub(crate) fn bit_boolean(text: &str) -> Result<bool, String> {
    Ok(!bits_bytes(text)?.is_empty())
}

/// `(x,y)` to its coordinates.
pub(crate) fn parse_point(text: &str) -> Result<(f64, f64), String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or("expected a point like (1.5,-2.25)")?;
    let (x, y) = inner
        .split_once(',')
        .ok_or("expected a point like (1.5,-2.25)")?;
    let coordinate = |text: &str| -> Result<f64, String> {
        match text.trim() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            number => number
                .parse()
                .map_err(|_| format!("{number:?} is not a coordinate")),
        }
    };
    Ok((coordinate(x)?, coordinate(y)?))
}

/// Appends Debezium's Point struct for `(x, y)`: the coordinates and their WKB (byte order
/// mark 1 = little-endian, geometry type 1 = point, x, y), no SRID.
pub(crate) fn write_point(out: &mut Vec<u8>, x: f64, y: f64) {
    let mut wkb = Vec::with_capacity(21);
    wkb.push(1);
    wkb.extend_from_slice(&1u32.to_le_bytes());
    wkb.extend_from_slice(&x.to_le_bytes());
    wkb.extend_from_slice(&y.to_le_bytes());
    out.extend_from_slice(b"{\"x\":");
    json::write_f64(out, x);
    out.extend_from_slice(b",\"y\":");
    json::write_f64(out, y);
    out.extend_from_slice(b",\"wkb\":");
    json::write_base64(out, &wkb);
    out.extend_from_slice(b",\"srid\":null}");
}

/// An hstore's text form (`"k"=>"v", "n"=>NULL`) to its pairs, in PostgreSQL's order.
pub(crate) fn parse_hstore(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after_key) = quoted(rest).ok_or("expected a quoted hstore key")?;
        let after_arrow = after_key
            .trim_start()
            .strip_prefix("=>")
            .ok_or("expected => after an hstore key")?
            .trim_start();
        let (value, after_value) = match after_arrow.strip_prefix("NULL") {
            Some(after) => (None, after),
            None => {
                let (value, after) = quoted(after_arrow).ok_or("expected a quoted hstore value")?;
                (Some(value), after)
            }
        };
        pairs.push((key, value));
        rest = after_value.trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma.trim_start();
        } else if !rest.is_empty() {
            return Err("expected , between hstore pairs".into());
        }
    }
    Ok(pairs)
}

/// A `"..."` string with `\"` and `\\` escapes at the start of `text`, and the text after it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut value = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((value, &text[1 + at + 1..])),
            _ => value.push(c),
        }
    }
    None
}

/// Appends an hstore as Debezium's JSON text (`hstore.handling.mode=json`: a JSON string
/// holding a JSON object), the keys in the order a Java `HashMap` filled in PostgreSQL's order
/// iterates them.
pub(crate) fn write_hstore_json(out: &mut Vec<u8>, text: &str) -> Result<(), String> {
    let mut object = Vec::with_capacity(text.len() + 2);
    write_hstore_map(&mut object, text)?;
    json::write_str(out, &String::from_utf8_lossy(&object));
    Ok(())
}

/// Appends an hstore as a Kafka Connect map (`hstore.handling.mode=map`), which JsonConverter
/// writes as a JSON object, in the same `HashMap` order.
pub(crate) fn write_hstore_map(out: &mut Vec<u8>, text: &str) -> Result<(), String> {
    let pairs = java_hash_map_order(parse_hstore(text)?);
    out.push(b'{');
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        json::write_str(out, key);
        out.push(b':');
        match value {
            Some(value) => json::write_str(out, value),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
    Ok(())
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units.
fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The iteration order of a `java.util.HashMap` the pairs were put into in order: by bucket
/// (`(h ^ h >>> 16) & (capacity - 1)`, the capacity doubling from 16 when the map is more than
/// three quarters full), in insertion order within a bucket. A later duplicate key replaces the
/// value but keeps the first one's place.
fn java_hash_map_order(pairs: Vec<(String, Option<String>)>) -> Vec<(String, Option<String>)> {
    let mut unique: Vec<(String, Option<String>)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        match unique.iter_mut().find(|(seen, _)| *seen == key) {
            Some(entry) => entry.1 = value,
            None => unique.push((key, value)),
        }
    }
    let mut capacity: usize = 16;
    while unique.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |key: &str| {
        let hash = java_string_hash(key) as u32;
        ((hash ^ (hash >> 16)) as usize) & (capacity - 1)
    };
    // A stable sort keeps insertion order within a bucket.
    unique.sort_by_key(|(key, _)| bucket(key));
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base64(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        json::write_base64(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    /// Expected values from conformance/debezium/extension_types.jsonl (Debezium 3.6.1).
    #[test]
    fn bit_strings_as_debezium_writes_them() {
        assert_eq!(base64(&bits_bytes("10100101").unwrap()), "\"pQ==\"");
        assert_eq!(base64(&bits_bytes("101000000001").unwrap()), "\"AQo=\"");
        assert_eq!(base64(&bits_bytes("101").unwrap()), "\"BQ==\"");
        assert_eq!(base64(&bits_bytes("00000000").unwrap()), "\"\"");
        assert_eq!(base64(&bits_bytes("").unwrap()), "\"\"");
        assert_eq!(
            base64(&bits_bytes(&"1".repeat(33)).unwrap()),
            "\"/////wE=\""
        );
        assert!(bit_boolean("1").unwrap());
        assert!(!bit_boolean("0").unwrap());
        assert!(bits_bytes("10x").is_err());
    }

    #[test]
    fn points_as_debezium_writes_them() {
        let json_of = |text: &str| {
            let (x, y) = parse_point(text).unwrap();
            let mut out = Vec::new();
            write_point(&mut out, x, y);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            json_of("(1.5,-2.25)"),
            r#"{"x":1.5,"y":-2.25,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAALA","srid":null}"#
        );
        assert_eq!(
            json_of("(-10000000000,1e-10)"),
            r#"{"x":-1.0E10,"y":1.0E-10,"wkb":"AQEAAAAAAAAgX6ACwru919nffNs9","srid":null}"#
        );
        assert!(parse_point("1,2").is_err());
    }

    #[test]
    fn hstore_as_json_in_java_hash_map_order() {
        let json_of = |text: &str| {
            let mut out = Vec::new();
            write_hstore_json(&mut out, text).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            json_of(r#""a"=>"1", "b"=>NULL"#),
            r#""{\"a\":\"1\",\"b\":null}""#
        );
        assert_eq!(json_of(""), r#""{}""#);
        assert_eq!(
            json_of(r#""q\"uote"=>"back\\slash""#),
            r#""{\"q\\\"uote\":\"back\\\\slash\"}""#
        );
        // "b" (98) lands in bucket 2, "a" (97) in bucket 1, "q" (113) in bucket 1 after "a".
        let keys: Vec<String> =
            java_hash_map_order(parse_hstore(r#""b"=>"1", "q"=>"2", "a"=>"3""#).unwrap())
                .into_iter()
                .map(|(key, _)| key)
                .collect();
        assert_eq!(keys, ["q", "a", "b"]);
        assert!(parse_hstore(r#""a"=>"#).is_err());
    }
}
