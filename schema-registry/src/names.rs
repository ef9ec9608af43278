//! Avro's name rules, and Debezium's `schema.name.adjustment.mode=avro`.
//!
//! An Avro name (record, field) is `[A-Za-z_][A-Za-z0-9_]*`; a full name is names joined by
//! dots (`dbserver1.public.orders.Envelope`). Kafka Connect allows any string, so a name from a
//! table like `order-items` or a topic prefix `1shop` would make an invalid Avro schema: each
//! character Avro refuses becomes `_`, as Debezium's avro adjustment mode does
//! (`order-items` -> `order_items`, `1shop` -> `_shop`).

/// A single name (no dots) that Avro accepts.
pub fn adjust_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (index, c) in name.chars().enumerate() {
        let valid = c == '_' || c.is_ascii_alphabetic() || (index > 0 && c.is_ascii_digit());
        out.push(if valid { c } else { '_' });
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
        assert_eq!(adjust_name("1shop"), "_shop");
        assert_eq!(
            adjust_full_name("shop.public.größe.Value"),
            "shop.public.gr__e.Value"
        );
    }

    #[test]
    fn splits_at_the_last_dot() {
        assert_eq!(split_full_name("a.b.Envelope"), ("Envelope", Some("a.b")));
        assert_eq!(split_full_name("Envelope"), ("Envelope", None));
    }
}
