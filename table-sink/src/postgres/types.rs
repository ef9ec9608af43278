//! The PostgreSQL side of the type map: which column type a [`FieldType`] becomes when the
//! sink creates a table or adds a column, and the text form of each [`Value`] (what the
//! statements send; PostgreSQL casts it to the column's real type).
//!
//! ```text
//! FieldType              column            Value               text sent
//! Boolean                boolean           Bool(true)          true
//! Int8, Int16            smallint          Int(-3)             -3
//! Int32 / Int64          integer / bigint
//! Float32 / Float64      real / double     Float(NaN)          NaN   (Infinity, -Infinity)
//! Decimal{p,s}           numeric(p,s)      Decimal("47.40")    47.40
//! VariableScaleDecimal   numeric
//! Text                   text              Text("x")           x
//! Bytes                  bytea             Bytes([de,ad])      \xdead
//! Uuid                   uuid
//! Json                   jsonb             Json({"a":1})       {"a":1}
//! Date                   date              Date(20425)         2025-12-03
//! Time                   time              TimeMicros(..)      14:20:00.123456
//! Timestamp              timestamp         TimestampMicros(..) 2025-12-03 14:20:00.123456
//! TimestampTz            timestamptz       TimestampTz(s)      s as Debezium sent it
//! TimeTz                 timetz
//! Interval               interval          Int(93780000000)    93780000000 microseconds
//! Array(T)               T[]               Array([..])         {"x",NULL}
//! ```
//!
//! Sending text and casting in SQL (`u.c1::numeric(12,2)`) keeps one code path for every
//! type, batches rows as one `text[]` per column (see [`super::sql`]), and lets PostgreSQL
//! itself say when a value does not fit its column (that record is dead-lettered).

use crate::change::{FieldType, Value};

/// The column type for a field, as `CREATE TABLE` / `ADD COLUMN` write it.
pub fn column_type(ty: &FieldType) -> String {
    match ty {
        FieldType::Boolean => "boolean".into(),
        FieldType::Int8 | FieldType::Int16 => "smallint".into(),
        FieldType::Int32 => "integer".into(),
        FieldType::Int64 => "bigint".into(),
        FieldType::Float32 => "real".into(),
        FieldType::Float64 => "double precision".into(),
        FieldType::Text => "text".into(),
        FieldType::Bytes => "bytea".into(),
        FieldType::Decimal {
            precision: Some(p),
            scale,
        } if *p >= 1 && *p <= 1000 && scale <= p => format!("numeric({p},{scale})"),
        FieldType::Decimal { .. } | FieldType::VariableScaleDecimal => "numeric".into(),
        FieldType::Uuid => "uuid".into(),
        FieldType::Json => "jsonb".into(),
        FieldType::Date => "date".into(),
        FieldType::Time => "time".into(),
        FieldType::Timestamp => "timestamp".into(),
        FieldType::TimestampTz => "timestamptz".into(),
        FieldType::TimeTz => "timetz".into(),
        FieldType::Interval => "interval".into(),
        FieldType::Array(items) => {
            let mut inner: &FieldType = items;
            while let FieldType::Array(deeper) = inner {
                inner = deeper;
            }
            format!("{}[]", column_type(inner))
        }
    }
}

/// The text PostgreSQL parses into the column's type; `None` is SQL NULL. `ty` tells how an
/// integer is meant (an interval's micros).
pub fn sql_text(ty: &FieldType, value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Int(i) if *ty == FieldType::Interval => format!("{i} microseconds"),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(*f),
        Value::Text(s) => s.clone(),
        Value::Bytes(bytes) => {
            let mut text = String::with_capacity(2 + bytes.len() * 2);
            text.push_str("\\x");
            for b in bytes {
                text.push_str(&format!("{b:02x}"));
            }
            text
        }
        Value::Decimal(s) => s.clone(),
        Value::Uuid(u) => u.to_string(),
        Value::Json(j) => j.to_string(),
        Value::Date(days) => date_text(i64::from(*days)),
        Value::TimeMicros(micros) => time_text(*micros),
        Value::TimestampMicros(micros) => timestamp_text(*micros),
        Value::TimestampTz(s) => s.clone(),
        Value::Array(items) => {
            let item_ty = match ty {
                FieldType::Array(inner) => inner.as_ref(),
                other => other,
            };
            let parts: Vec<String> = items
                .iter()
                .map(|item| match (item, sql_text(item_ty, item)) {
                    (_, None) => "NULL".to_string(),
                    (Value::Array(_), Some(nested)) => nested,
                    (_, Some(text)) => quote_array_element(&text),
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    })
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        // Rust's shortest round-trip form; exponent form PostgreSQL reads too.
        format!("{f:e}")
    }
}

fn quote_array_element(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (as PostgreSQL counts).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2025-12-03`, or `0044-03-15 BC` before year 1 (year 0 is 1 BC).
pub fn date_text(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if year >= 1 {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{:04}-{month:02}-{day:02} BC", 1 - year)
    }
}

/// Microseconds since midnight -> `HH:MM:SS.ffffff` (`24:00:00` for a full day).
pub fn time_text(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    format!(
        "{:02}:{:02}:{:02}.{fraction:06}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// Microseconds since the epoch -> `YYYY-MM-DD HH:MM:SS.ffffff` (with ` BC` before year 1).
pub fn timestamp_text(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let in_day = micros.rem_euclid(86_400_000_000);
    let date = date_text(days);
    match date.strip_suffix(" BC") {
        Some(date) => format!("{date} {} BC", time_text(in_day)),
        None => format!("{date} {}", time_text(in_day)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types() {
        assert_eq!(
            column_type(&FieldType::Decimal {
                precision: Some(12),
                scale: 2
            }),
            "numeric(12,2)"
        );
        assert_eq!(
            column_type(&FieldType::Decimal {
                precision: None,
                scale: 2
            }),
            "numeric"
        );
        assert_eq!(column_type(&FieldType::TimestampTz), "timestamptz");
        assert_eq!(
            column_type(&FieldType::Array(Box::new(FieldType::Array(Box::new(
                FieldType::Int32
            ))))),
            "integer[]"
        );
    }

    #[test]
    fn dates_and_times_as_postgresql_reads_them() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(20425), "2025-12-03");
        assert_eq!(date_text(-1), "1969-12-31");
        assert_eq!(date_text(11016), "2000-02-29");
        // The README's type map: 4713-11-24 BC -> -2440222 (Julian day 0, proleptic Gregorian).
        assert_eq!(date_text(-2440222), "4713-11-24 BC");
        assert_eq!(time_text(45_296_789_000), "12:34:56.789000");
        assert_eq!(time_text(86_400_000_000), "24:00:00.000000");
        assert_eq!(
            timestamp_text(1_710_506_096_789_000),
            "2024-03-15 12:34:56.789000"
        );
        assert_eq!(timestamp_text(-1), "1969-12-31 23:59:59.999999");
    }

    #[test]
    fn values_as_text() {
        let t = |ty: FieldType, v: Value| sql_text(&ty, &v);
        assert_eq!(t(FieldType::Text, Value::Null), None);
        assert_eq!(
            t(FieldType::Bytes, Value::Bytes(vec![0xde, 0xad])).unwrap(),
            "\\xdead"
        );
        assert_eq!(
            t(FieldType::Interval, Value::Int(5)).unwrap(),
            "5 microseconds"
        );
        assert_eq!(
            t(FieldType::Float64, Value::Float(f64::NEG_INFINITY)).unwrap(),
            "-Infinity"
        );
        assert_eq!(t(FieldType::Float64, Value::Float(1e300)).unwrap(), "1e300");
        assert_eq!(t(FieldType::Float64, Value::Float(0.1)).unwrap(), "1e-1");
        let array = Value::Array(vec![
            Value::Text("a \"b\"".into()),
            Value::Null,
            Value::Text("c,d".into()),
        ]);
        assert_eq!(
            t(FieldType::Array(Box::new(FieldType::Text)), array).unwrap(),
            r#"{"a \"b\"",NULL,"c,d"}"#
        );
        let nested = Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Int(2)])]);
        assert_eq!(
            t(
                FieldType::Array(Box::new(FieldType::Array(Box::new(FieldType::Int32)))),
                nested
            )
            .unwrap(),
            r#"{{"1","2"}}"#
        );
    }
}
