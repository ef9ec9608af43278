//! Column DEFAULTs in schemas, the way Debezium reads them from `pg_get_expr` text.
//!
//! Debezium puts a column's default into its field schema (`"default": "NEW"`), and that default
//! also replaces NULLs (see `EnvelopeConfig::replace_null_with_default`) and fills the non-key
//! columns of key-only old tuples. It reads the expression with a few text rules, chosen by the
//! column's type name (`pg_type.typname`):
//!
//! ```text
//! 'NEW'::text                         -> "NEW"     the first '...' literal
//! '-1'::integer / 7 / false           -> -1, 7, false   a literal without quotes as is
//! now() / nextval('s'::regclass)      -> the type's placeholder: 0, "", false, 1970-01-01 ...
//! CURRENT_TIMESTAMP, LOCALTIME, ...   -> the placeholder as well
//! NULL::text                          -> no default
//! 'ok'::conformance_mood (an enum)    -> "ok"      when the cast names the column's enum
//! ```
//!
//! Types without a rule (bytea, timetz, arrays, domains, ...) get no default, as in Debezium.

use super::decimal::parse_decimal;
use super::kind::ValueKind;
use super::table::ColumnSchema;
use super::temporal;
use super::value::write_value;

/// The column's default as JSON text, or None when Debezium would show none.
pub(crate) fn default_json(column: &ColumnSchema, kind: &ValueKind) -> Option<String> {
    let expression = column.default_expr.as_deref()?;
    let literal = literal_for_type(column, expression)?;
    render(kind, &literal)
}

/// Debezium's `extractDefault` with the placeholder of the column's type.
fn literal_for_type(column: &ColumnSchema, expression: &str) -> Option<String> {
    if let Some(labels) = &column.enum_values {
        if column.element_type_oid.is_none() && !column.type_name.starts_with('_') {
            return enum_literal(&column.type_name, expression, labels);
        }
    }
    let placeholder = match column.type_name.as_str() {
        "bool" => "false",
        "bpchar" | "varchar" | "text" | "xml" => "",
        "numeric" | "float4" | "float8" => "0.0",
        "int2" | "int4" | "int8" | "serial" | "bigserial" | "smallserial" => "0",
        "json" | "jsonb" => "{}",
        "uuid" => "00000000-0000-0000-0000-000000000000",
        "date" | "timestamp" | "timestamptz" => "1970-01-01",
        "time" => "00:00",
        "interval" => "epoch",
        _ => return None,
    };
    let trimmed = match column.type_name.as_str() {
        "bpchar" | "varchar" | "text" | "xml" | "json" | "jsonb" => expression,
        _ => expression.trim(),
    };
    if trimmed.starts_with("NULL::") {
        return None;
    }
    if is_function_call(trimmed) || is_current_date_time(trimmed) {
        return Some(placeholder.to_string());
    }
    if !trimmed.contains('\'') {
        return Some(trimmed.to_string());
    }
    // The first '...' literal, ending at the next quote (so 'it''s' reads as "it", like Debezium).
    let start = trimmed.find('\'')? + 1;
    let end = start + trimmed[start..].find('\'')?;
    Some(trimmed[start..end].to_string())
}

/// `^[(]?[A-Za-z0-9_.]+\((?:.+(?:, ?.+)*)?\)`: a name, an opening parenthesis, a closing one.
fn is_function_call(expression: &str) -> bool {
    let rest = expression.strip_prefix('(').unwrap_or(expression);
    let name_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .count();
    if name_len == 0 {
        return false;
    }
    match rest[name_len..].strip_prefix('(') {
        Some(arguments) => arguments
            .lines()
            .next()
            .is_some_and(|line| line.contains(')')),
        None => false,
    }
}

fn is_current_date_time(expression: &str) -> bool {
    matches!(
        expression.to_ascii_lowercase().as_str(),
        "current_timestamp" | "current_time" | "current_date" | "localtime" | "localtimestamp"
    )
}

/// `'ok'::mood` -> `ok`, only when the cast names the column's enum type.
fn enum_literal(type_name: &str, expression: &str, labels: &[String]) -> Option<String> {
    let cast_at = expression.rfind("::")?;
    let cast = expression[cast_at + 2..].trim_matches('"');
    let cast_name = cast.rsplit('.').next()?.trim_matches('"');
    if cast_name != type_name.rsplit('.').next()?.trim_matches('"') {
        return None;
    }
    let literal = expression[..cast_at]
        .strip_prefix('\'')?
        .strip_suffix('\'')?;
    labels
        .iter()
        .any(|label| label == literal)
        .then(|| literal.to_string())
}

/// Converts the literal to the column's JSON form, as Debezium's value converters would.
fn render(kind: &ValueKind, literal: &str) -> Option<String> {
    let text = match kind {
        // Java's Boolean.parseBoolean: "true" in any case is true, anything else false.
        ValueKind::Boolean => return Some(literal.eq_ignore_ascii_case("true").to_string()),
        // Kafka Connect cannot carry a struct default (KAFKA-12694): Debezium drops it.
        ValueKind::VariableScaleDecimal | ValueKind::Array { .. } | ValueKind::Unmapped => {
            return None
        }
        ValueKind::Decimal { .. }
        | ValueKind::DecimalAsDouble { .. }
        | ValueKind::DecimalAsString { .. } => parse_decimal(literal)?.to_plain_string(),
        ValueKind::Date { .. } => date_text(literal)?,
        ValueKind::TimeMicros | ValueKind::TimeMillis { .. } => time_text(literal),
        ValueKind::TimestampMicros | ValueKind::TimestampMillis { .. } => timestamp_text(literal)?,
        ValueKind::ZonedTimestamp { .. } => {
            let text = timestamp_text(literal)?;
            if temporal::parse_timestamptz(&text).is_some() {
                text
            } else {
                format!("{text}+00") // no offset: the JDBC driver reads it as UTC
            }
        }
        ValueKind::String {
            logical: Some("io.debezium.data.Uuid"),
        } => {
            let lower = literal.to_ascii_lowercase();
            let valid =
                lower.len() == 36 && lower.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if !valid {
                return None;
            }
            lower
        }
        _ => literal.to_string(),
    };
    let mut out = Vec::new();
    write_value(kind, &text, &mut out).ok()?;
    String::from_utf8(out).ok()
}

/// A date literal, taking only the date of a timestamp (`1970-01-01`, `2020-02-29`).
fn date_text(literal: &str) -> Option<String> {
    Some(literal.split(' ').next()?.to_string())
}

/// `00:00` -> `00:00:00`.
fn time_text(literal: &str) -> String {
    if literal.matches(':').count() == 1 {
        format!("{literal}:00")
    } else {
        literal.to_string()
    }
}

/// A date-only literal becomes midnight.
fn timestamp_text(literal: &str) -> Option<String> {
    if literal.contains(' ') {
        Some(literal.to_string())
    } else if literal.len() >= 10 {
        Some(format!("{literal} 00:00:00"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::config::TypeOptions;
    use crate::envelope::kind::oid;

    fn default_of(
        type_oid: u32,
        type_name: &str,
        type_modifier: i32,
        expression: &str,
    ) -> Option<String> {
        let column = ColumnSchema {
            type_modifier,
            default_expr: Some(expression.to_string()),
            ..ColumnSchema::new("c", type_oid, type_name, false)
        };
        let kind = ValueKind::of_column(&column, TypeOptions::default()).unwrap();
        default_json(&column, &kind)
    }

    /// Expected values from conformance/debezium/*.jsonl (real Debezium 3.6.1 schemas).
    #[test]
    fn defaults_match_recorded_debezium_schemas() {
        assert_eq!(
            default_of(oid::TEXT, "text", -1, "'NEW'::text").as_deref(),
            Some("\"NEW\"")
        );
        assert_eq!(default_of(oid::INT2, "int2", -1, "7").as_deref(), Some("7"));
        assert_eq!(
            default_of(oid::INT8, "int8", -1, "'-1'::integer").as_deref(),
            Some("-1")
        );
        assert_eq!(
            default_of(oid::BOOL, "bool", -1, "false").as_deref(),
            Some("false")
        );
        assert_eq!(
            default_of(oid::VARCHAR, "varchar", 24, "'v'::character varying").as_deref(),
            Some("\"v\"")
        );
        assert_eq!(
            default_of(oid::NUMERIC, "numeric", (12 << 16 | 2) + 4, "0.00").as_deref(),
            Some("\"AA==\"")
        );
        assert_eq!(
            default_of(oid::DATE, "date", -1, "'2020-02-29'::date").as_deref(),
            Some("18321")
        );
        assert_eq!(
            default_of(oid::TIMESTAMPTZ, "timestamptz", -1, "now()").as_deref(),
            Some("\"1970-01-01T00:00:00.000000Z\"")
        );
        let mood = ColumnSchema {
            default_expr: Some("'ok'::conformance_mood".into()),
            enum_values: Some(vec!["sad".into(), "ok".into(), "happy".into()]),
            ..ColumnSchema::new("c_mood", 16_500, "conformance_mood", false)
        };
        let kind = ValueKind::of_column(&mood, TypeOptions::default()).unwrap();
        assert_eq!(default_json(&mood, &kind).as_deref(), Some("\"ok\""));
    }

    #[test]
    fn generated_and_missing_defaults() {
        assert_eq!(
            default_of(oid::INT4, "int4", -1, "nextval('orders_id_seq'::regclass)").as_deref(),
            Some("0")
        );
        assert_eq!(
            default_of(oid::TIMESTAMP, "timestamp", -1, "CURRENT_TIMESTAMP").as_deref(),
            Some("0")
        );
        assert_eq!(
            default_of(oid::TIME, "time", -1, "LOCALTIME").as_deref(),
            Some("0")
        );
        assert_eq!(
            default_of(oid::INTERVAL, "interval", -1, "'01:00:00'::interval").as_deref(),
            Some("3600000000")
        );
        assert_eq!(default_of(oid::TEXT, "text", -1, "NULL::text"), None);
        assert_eq!(default_of(oid::NUMERIC, "numeric", -1, "1.5"), None); // VariableScaleDecimal
        assert_eq!(default_of(oid::BYTEA, "bytea", -1, "'\\x00'::bytea"), None);
        assert_eq!(default_of(oid::INT4, "int4", -1, "'abc'::integer"), None);
        assert_eq!(
            default_of(oid::TEXT, "text", -1, "'it''s'::text").as_deref(),
            Some("\"it\"")
        );
        assert_eq!(
            default_of(oid::UUID, "uuid", -1, "gen_random_uuid()").as_deref(),
            Some("\"00000000-0000-0000-0000-000000000000\"")
        );
        assert_eq!(
            default_of(oid::JSONB, "jsonb", -1, "'{}'::jsonb").as_deref(),
            Some("\"{}\"")
        );
    }
}
