//! Avro's name rules, and Debezium's `schema.name.adjustment.mode=avro`.
//!
//! An Avro name (record, field) is `[A-Za-z_][A-Za-z0-9_]*`; a full name is names joined by
//! dots (`dbserver1.public.orders.Envelope`). Kafka Connect allows any string, so a name from a
//! table like `order-items` or a topic prefix `1shop` would make an invalid Avro schema: each
//! character Avro refuses becomes `_`, as Debezium's avro adjustment mode does
//! (`order-items` -> `order_items`), and a leading digit keeps its place after a `_` (`1shop`
//! -> `_1shop`; Debezium's `field.name.adjustment.mode=avro` writes the column `1st value` as
//! `_1st_value`). Characters count as in Java (UTF-16 units): one outside the Basic
//! Multilingual Plane becomes two `_`. A full name is adjusted part by part, so a part after a
//! dot that starts with a digit gets its `_` too (Debezium's adjuster leaves it as it is).

/// A single name (no dots) that Avro accepts: Debezium's `SchemaNameAdjuster` in `avro` mode
/// (`_` for each refused UTF-16 unit; a leading digit is kept, after a `_`).
pub fn adjust_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (index, c) in name.chars().enumerate() {
        if c == '_' || c.is_ascii_alphabetic() || (index > 0 && c.is_ascii_digit()) {
            out.push(c);
        } else if c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            for _ in 0..c.len_utf16() {
                out.push('_');
            }
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// A full name: each dot-separated part adjusted.
pub fn adjust_full_name(name: &str) -> String {
    name.split('.')
        .map(adjust_name)
        .collect::<Vec<_>>()
        .join(".")
}

/// `a.b.C` -> (`C`, Some(`a.b`)): Avro's name and namespace.
pub fn split_full_name(full: &str) -> (&str, Option<&str>) {
    match full.rfind('.') {
        Some(dot) => (&full[dot + 1..], Some(&full[..dot])),
        None => (full, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_stay() {
        assert_eq!(
            adjust_full_name("dbserver1.public.orders.Envelope"),
            "dbserver1.public.orders.Envelope"
        );
    }

    #[test]
    fn refused_characters_become_underscores() {
        assert_eq!(adjust_name("order-items"), "order_items");
        assert_eq!(adjust_name("1shop"), "_1shop");
        assert_eq!(
            adjust_full_name("shop.public.größe.Value"),
            "shop.public.gr__e.Value"
        );
    }

    #[test]
    fn as_debezium_avro_mode_writes_the_odd_names_columns() {
        // Debezium 3.6.1 with field.name.adjustment.mode=avro (scripts/conformance --avro,
        // conformance/debezium/avro/name_adjustment_mode_avro/odd_names.jsonl).
        assert_eq!(adjust_name("1st value"), "_1st_value");
        assert_eq!(adjust_name("naïve-ö"), "na_ve__");
        assert_eq!(adjust_name("$dollar"), "_dollar");
        assert_eq!(adjust_name("plain_name"), "plain_name");
        assert_eq!(
            adjust_full_name("dbz.public.conformance_odd-names.Value"),
            "dbz.public.conformance_odd_names.Value"
        );
        // A character outside the BMP is two UTF-16 units in Java: two `_`.
        assert_eq!(adjust_name("a😀b"), "a__b");
    }

    #[test]
    fn splits_at_the_last_dot() {
        assert_eq!(split_full_name("a.b.Envelope"), ("Envelope", Some("a.b")));
        assert_eq!(split_full_name("Envelope"), ("Envelope", None));
    }
}
