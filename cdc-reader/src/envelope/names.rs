//! Making schema and field names valid Avro names, as Debezium's `schema.name.adjustment.mode`
//! and `field.name.adjustment.mode` do (its `SchemaNameAdjuster`).
//!
//! ```text
//!                     schema name (Key/Value/Envelope)          field name
//! none                dbz.public.odd-names.Value                1st value
//! avro                dbz.public.odd_names.Value                _1st_value
//! avro_unicode        dbz.public.odd_u002dnames.Value           _u0031st_u0020value
//! ```
//!
//! Avro allows `[A-Za-z_]` first and `[A-Za-z0-9_]` after (plus `.` in a schema's full name).
//! `avro` puts `_` in place of every other character (keeping a leading digit after it);
//! `avro_unicode` puts `_u` and the character's UTF-16 code in lower-case hex (`00` in front
//! when that has at most two digits), and, as in Debezium, treats `_` itself as a character to replace.

use super::config::NameAdjustment;

/// `name` adjusted as a schema's full name (dots allowed).
pub(crate) fn adjust_schema_name(name: &str, mode: NameAdjustment) -> String {
    adjust(name, mode, true)
}

/// `name` adjusted as a field name (no dots).
pub(crate) fn adjust_field_name(name: &str, mode: NameAdjustment) -> String {
    adjust(name, mode, false)
}

fn adjust(name: &str, mode: NameAdjustment, dots_allowed: bool) -> String {
    let unicode = match mode {
        NameAdjustment::None => return name.to_string(),
        NameAdjustment::Avro => false,
        NameAdjustment::AvroUnicode => true,
    };
    let letter = |unit: u16| {
        (u16::from(b'a')..=u16::from(b'z')).contains(&unit)
            || (u16::from(b'A')..=u16::from(b'Z')).contains(&unit)
    };
    let digit = |unit: u16| (u16::from(b'0')..=u16::from(b'9')).contains(&unit);
    let underscore = u16::from(b'_');
    let valid_first = |unit: u16| letter(unit) || (!unicode && unit == underscore);
    let valid_next =
        |unit: u16| valid_first(unit) || digit(unit) || (dots_allowed && unit == u16::from(b'.'));
    let replacement = |unit: u16| {
        if unicode {
            // Integer.toHexString, then "00" in front when it has at most two digits.
            let hex = format!("{unit:x}");
            if hex.len() <= 2 {
                format!("_u00{hex}")
            } else {
                format!("_u{hex}")
            }
        } else {
            "_".to_string()
        }
    };
    let units: Vec<u16> = name.encode_utf16().collect();
    let Some((&first, rest)) = units.split_first() else {
        return String::new();
    };
    let mut adjusted: Vec<u16> = Vec::with_capacity(units.len() + 8);
    if valid_first(first) {
        adjusted.push(first);
    } else {
        adjusted.extend(replacement(first).encode_utf16());
        if digit(first) && !unicode {
            adjusted.push(first);
        }
    }
    for &unit in rest {
        if valid_next(unit) {
            adjusted.push(unit);
        } else {
            adjusted.extend(replacement(unit).encode_utf16());
        }
    }
    String::from_utf16_lossy(&adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NameAdjustment::{Avro, AvroUnicode, None};

    #[test]
    fn avro_replaces_with_underscores() {
        assert_eq!(adjust_field_name("1st value", Avro), "_1st_value");
        assert_eq!(adjust_field_name("naïve-ö", Avro), "na_ve__");
        assert_eq!(adjust_field_name("$dollar", Avro), "_dollar");
        assert_eq!(adjust_field_name("plain_name", Avro), "plain_name");
        assert_eq!(adjust_field_name("a.b", Avro), "a_b");
        assert_eq!(
            adjust_schema_name("dbz.public.conformance_odd-names.Value", Avro),
            "dbz.public.conformance_odd_names.Value"
        );
        assert_eq!(adjust_field_name("1st value", None), "1st value");
        assert_eq!(adjust_field_name("", Avro), "");
    }

    #[test]
    fn avro_unicode_replaces_with_code_points() {
        assert_eq!(
            adjust_field_name("1st value", AvroUnicode),
            "_u0031st_u0020value"
        );
        assert_eq!(
            adjust_field_name("naïve-ö", AvroUnicode),
            "na_u00efve_u002d_u00f6"
        );
        assert_eq!(
            adjust_field_name("plain_name", AvroUnicode),
            "plain_u005fname"
        );
        assert_eq!(adjust_field_name("_x", AvroUnicode), "_u005fx");
        // Beyond two hex digits Debezium does not pad: Integer.toHexString.
        assert_eq!(adjust_field_name("aβ", AvroUnicode), "a_u3b2");
        assert_eq!(adjust_field_name("a\t", AvroUnicode), "a_u009");
        assert_eq!(adjust_field_name("a世", AvroUnicode), "a_u4e16");
        assert_eq!(
            adjust_schema_name("dbz.public.conformance_odd-names.Value", AvroUnicode),
            "dbz.public.conformance_u005fodd_u002dnames.Value"
        );
    }
}
