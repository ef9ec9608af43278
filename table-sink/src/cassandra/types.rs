//! The Cassandra type map: the sink's [`FieldType`]s as CQL column types, and the sink's
//! [`Value`]s as the driver's [`CqlValue`]s for a column of a given CQL type.
//!
//! ```text
//! FieldType                         CQL type (--auto-create, ADD COLUMN)
//! Boolean                           boolean
//! Int8 / Int16 / Int32 / Int64      tinyint / smallint / int / bigint
//! Float32 / Float64                 float / double
//! Text, Json, TimeTz                text        (JSON as its text; CQL has no json type)
//! Bytes                             blob
//! Decimal, VariableScaleDecimal     decimal     (exact: unscaled digits + scale)
//! Uuid                              uuid
//! Date                              date
//! Time                              time        (micros -> the column's nanos)
//! Timestamp, TimestampTz            timestamp   (milliseconds: microseconds are cut, see below)
//! Interval                          duration
//! Array(T)                          list<T>
//! ```
//!
//! Values are converted for the column that is really there (read from `system_schema`), not
//! for the record's own type, so a table made by hand with other types still works when the
//! value fits: an integer into `int` is range-checked, an exact decimal goes into `decimal`,
//! `double` or `text`, any value into `text`. A value that does not fit is a
//! [`ConversionError`], and the record goes to the dead-letter topic.
//!
//! CQL's `timestamp` holds milliseconds: a PostgreSQL `timestamp(6)` loses its last three
//! digits on the way in (`date`, `time`, `decimal`, the integers and text are exact).
//!
//! Pure: no I/O.

use scylla::value::{CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlValue};

use crate::change::{FieldType, Value};

/// A CQL column type, as `system_schema.columns.type` spells it (`int`, `list<text>`,
/// `frozen<list<int>>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Varint,
    Float,
    Double,
    Decimal,
    Text,
    Ascii,
    Blob,
    Uuid,
    Timeuuid,
    Date,
    Time,
    Timestamp,
    Duration,
    List(Box<CqlType>),
    Set(Box<CqlType>),
    /// A type the sink does not write (map, tuple, UDT, counter, inet, vector...).
    Other(String),
}

impl CqlType {
    /// Parses the type text of `system_schema.columns` (`frozen<...>` is looked through).
    pub fn parse(text: &str) -> CqlType {
        let text = text.trim();
        if let Some(inner) = strip_wrapper(text, "frozen") {
            return CqlType::parse(inner);
        }
        if let Some(inner) = strip_wrapper(text, "list") {
            return CqlType::List(Box::new(CqlType::parse(inner)));
        }
        if let Some(inner) = strip_wrapper(text, "set") {
            return CqlType::Set(Box::new(CqlType::parse(inner)));
        }
        match text.to_ascii_lowercase().as_str() {
            "boolean" => CqlType::Boolean,
            "tinyint" => CqlType::TinyInt,
            "smallint" => CqlType::SmallInt,
            "int" => CqlType::Int,
            "bigint" => CqlType::BigInt,
            "varint" => CqlType::Varint,
            "float" => CqlType::Float,
            "double" => CqlType::Double,
            "decimal" => CqlType::Decimal,
            "text" | "varchar" => CqlType::Text,
            "ascii" => CqlType::Ascii,
            "blob" => CqlType::Blob,
            "uuid" => CqlType::Uuid,
            "timeuuid" => CqlType::Timeuuid,
            "date" => CqlType::Date,
            "time" => CqlType::Time,
            "timestamp" => CqlType::Timestamp,
            "duration" => CqlType::Duration,
            _ => CqlType::Other(text.to_string()),
        }
    }

    /// The type as CQL DDL writes it.
    pub fn cql(&self) -> String {
        match self {
            CqlType::Boolean => "boolean".into(),
            CqlType::TinyInt => "tinyint".into(),
            CqlType::SmallInt => "smallint".into(),
            CqlType::Int => "int".into(),
            CqlType::BigInt => "bigint".into(),
            CqlType::Varint => "varint".into(),
            CqlType::Float => "float".into(),
            CqlType::Double => "double".into(),
            CqlType::Decimal => "decimal".into(),
            CqlType::Text => "text".into(),
            CqlType::Ascii => "ascii".into(),
            CqlType::Blob => "blob".into(),
            CqlType::Uuid => "uuid".into(),
            CqlType::Timeuuid => "timeuuid".into(),
            CqlType::Date => "date".into(),
            CqlType::Time => "time".into(),
            CqlType::Timestamp => "timestamp".into(),
            CqlType::Duration => "duration".into(),
            CqlType::List(inner) => format!("list<{}>", inner.cql()),
            CqlType::Set(inner) => format!("set<{}>", inner.cql()),
            CqlType::Other(text) => text.clone(),
        }
    }

    /// Whether a column of this type can be part of a primary key (collections only frozen,
    /// which --auto-create does not make; duration never).
    pub fn can_be_key(&self) -> bool {
        !matches!(
            self,
            CqlType::List(_) | CqlType::Set(_) | CqlType::Duration | CqlType::Other(_)
        )
    }
}

fn strip_wrapper<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(name)?.trim_start();
    rest.strip_prefix('<')?.strip_suffix('>')
}

/// The CQL type `--auto-create` gives a field of this type (the table in the module comment).
pub fn cql_type_for(field: &FieldType) -> CqlType {
    match field {
        FieldType::Boolean => CqlType::Boolean,
        FieldType::Int8 => CqlType::TinyInt,
        FieldType::Int16 => CqlType::SmallInt,
        FieldType::Int32 => CqlType::Int,
        FieldType::Int64 => CqlType::BigInt,
        FieldType::Float32 => CqlType::Float,
        FieldType::Float64 => CqlType::Double,
        FieldType::Text | FieldType::Json | FieldType::TimeTz => CqlType::Text,
        FieldType::Bytes => CqlType::Blob,
        FieldType::Decimal { .. } | FieldType::VariableScaleDecimal => CqlType::Decimal,
        FieldType::Uuid => CqlType::Uuid,
        FieldType::Date => CqlType::Date,
        FieldType::Time => CqlType::Time,
        FieldType::Timestamp | FieldType::TimestampTz => CqlType::Timestamp,
        FieldType::Interval => CqlType::Duration,
        FieldType::Array(inner) => CqlType::List(Box::new(cql_type_for(inner))),
    }
}

/// A value that does not fit its column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConversionError(pub String);

fn does_not_fit(value: &Value, column: &CqlType, why: &str) -> ConversionError {
    let shown = format!("{value:?}");
    let shown: String = shown.chars().take(80).collect();
    ConversionError(format!(
        "{shown} does not fit a CQL {} column: {why}",
        column.cql()
    ))
}

/// Converts one value for a column of type `column`; `Ok(None)` is CQL null.
pub fn to_cql(value: &Value, column: &CqlType) -> Result<Option<CqlValue>, ConversionError> {
    use CqlType as T;
    let converted = match (value, column) {
        (Value::Null, _) => return Ok(None),
        // Text columns take anything, written as the text PostgreSQL would show.
        (_, T::Text | T::Ascii) => CqlValue::Text(as_text(value)),
        (Value::Bool(b), T::Boolean) => CqlValue::Boolean(*b),
        (Value::Int(i), T::TinyInt) => CqlValue::TinyInt(
            i8::try_from(*i).map_err(|_| does_not_fit(value, column, "out of range -128..127"))?,
        ),
        (Value::Int(i), T::SmallInt) => CqlValue::SmallInt(
            i16::try_from(*i)
                .map_err(|_| does_not_fit(value, column, "out of range for 16 bits"))?,
        ),
        (Value::Int(i), T::Int) => CqlValue::Int(
            i32::try_from(*i)
                .map_err(|_| does_not_fit(value, column, "out of range for 32 bits"))?,
        ),
        (Value::Int(i), T::BigInt) => CqlValue::BigInt(*i),
        (Value::Int(i), T::Varint | T::Decimal) => CqlValue::Decimal(decimal(&i.to_string())?),
        (Value::Int(i), T::Double) => CqlValue::Double(*i as f64),
        (Value::Int(micros), T::Duration) => CqlValue::Duration(CqlDuration {
            months: 0,
            days: 0,
            nanoseconds: micros
                .checked_mul(1000)
                .ok_or_else(|| does_not_fit(value, column, "too long"))?,
        }),
        (Value::Float(f), T::Double) => CqlValue::Double(*f),
        (Value::Float(f), T::Float) => {
            if f.is_finite() && f.abs() > f32::MAX as f64 {
                return Err(does_not_fit(value, column, "out of range for 32 bits"));
            }
            CqlValue::Float(*f as f32)
        }
        (Value::Decimal(text), T::Decimal) => {
            CqlValue::Decimal(decimal(text).map_err(|e| does_not_fit(value, column, &e.0))?)
        }
        (Value::Decimal(text), T::Double) => CqlValue::Double(
            text.parse()
                .map_err(|_| does_not_fit(value, column, "not a number"))?,
        ),
        (Value::Bytes(bytes), T::Blob) => CqlValue::Blob(bytes.clone()),
        (Value::Uuid(uuid), T::Uuid) => CqlValue::Uuid(*uuid),
        (Value::Text(text), T::Uuid) => CqlValue::Uuid(
            uuid::Uuid::parse_str(text).map_err(|_| does_not_fit(value, column, "not a UUID"))?,
        ),
        (Value::Date(days), T::Date) => {
            CqlValue::Date(CqlDate((i64::from(*days) + (1_i64 << 31)) as u32))
        }
        (Value::TimeMicros(micros), T::Time) => {
            if !(0..86_400_000_000).contains(micros) {
                return Err(does_not_fit(value, column, "not a time of day"));
            }
            CqlValue::Time(CqlTime(micros * 1000))
        }
        (Value::TimestampMicros(micros), T::Timestamp) => {
            CqlValue::Timestamp(CqlTimestamp(micros.div_euclid(1000)))
        }
        (Value::TimestampTz(text), T::Timestamp) => {
            CqlValue::Timestamp(CqlTimestamp(iso_instant_millis(text).ok_or_else(|| {
                does_not_fit(value, column, "not an ISO-8601 instant with an offset")
            })?))
        }
        (Value::Array(items), T::List(inner) | T::Set(inner)) => {
            let mut converted = Vec::with_capacity(items.len());
            for item in items {
                match to_cql(item, inner)? {
                    Some(item) => converted.push(item),
                    None => {
                        return Err(does_not_fit(value, column, "CQL collections hold no nulls"))
                    }
                }
            }
            if matches!(column, T::List(_)) {
                CqlValue::List(converted)
            } else {
                CqlValue::Set(converted)
            }
        }
        _ => {
            return Err(does_not_fit(
                value,
                column,
                "no conversion between these types",
            ))
        }
    };
    Ok(Some(converted))
}

/// The value as text, for a `text` column (JSON compact, times as ISO-8601).
fn as_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(t) | Value::Decimal(t) | Value::TimestampTz(t) => t.clone(),
        Value::Bytes(b) => b.iter().map(|byte| format!("{byte:02x}")).collect(),
        Value::Uuid(u) => u.to_string(),
        Value::Json(j) => j.to_string(),
        Value::Date(days) => {
            let (y, m, d) = civil_from_days(i64::from(*days));
            format!("{y:04}-{m:02}-{d:02}")
        }
        Value::TimeMicros(micros) => format!(
            "{:02}:{:02}:{:02}.{:06}",
            micros / 3_600_000_000,
            micros / 60_000_000 % 60,
            micros / 1_000_000 % 60,
            micros % 1_000_000
        ),
        Value::TimestampMicros(micros) => {
            let (y, m, d) = civil_from_days(micros.div_euclid(86_400_000_000));
            let of_day = micros.rem_euclid(86_400_000_000);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}",
                of_day / 3_600_000_000,
                of_day / 60_000_000 % 60,
                of_day / 1_000_000 % 60,
                of_day % 1_000_000
            )
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(as_text).collect::<Vec<_>>().join(",")
        ),
    }
}

/// Exact decimal text (`-12.50`, `3`, `1e-3` is refused) as CQL's decimal: the unscaled
/// integer as big-endian two's complement bytes, and the scale (digits after the point).
pub fn decimal(text: &str) -> Result<CqlDecimal, ConversionError> {
    let bad = || ConversionError(format!("`{text}` is not a plain decimal number"));
    let (negative, digits) = match text.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.trim().strip_prefix('+').unwrap_or(text.trim())),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    let all_digits = whole.bytes().chain(fraction.bytes());
    // Magnitude in base 256, least significant byte first: multiply by 10 and add each digit.
    let mut magnitude: Vec<u8> = vec![0];
    for digit in all_digits {
        if !digit.is_ascii_digit() {
            return Err(bad());
        }
        let mut carry = u32::from(digit - b'0');
        for byte in magnitude.iter_mut() {
            let next = u32::from(*byte) * 10 + carry;
            *byte = (next & 0xff) as u8;
            carry = next >> 8;
        }
        while carry > 0 {
            magnitude.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // Room for the sign bit, then two's complement for a negative number.
    if magnitude.last().is_some_and(|top| top & 0x80 != 0) {
        magnitude.push(0);
    }
    if negative && magnitude.iter().any(|b| *b != 0) {
        let mut carry = 1u16;
        for byte in magnitude.iter_mut() {
            let next = u16::from(!*byte) + carry;
            *byte = (next & 0xff) as u8;
            carry = next >> 8;
        }
    }
    while magnitude.len() > 1 {
        let top = magnitude[magnitude.len() - 1];
        let below = magnitude[magnitude.len() - 2];
        let redundant = (top == 0 && below & 0x80 == 0) || (top == 0xff && below & 0x80 != 0);
        if !redundant {
            break;
        }
        magnitude.pop();
    }
    magnitude.reverse();
    let scale = i32::try_from(fraction.len()).map_err(|_| bad())?;
    Ok(CqlDecimal::from_signed_be_bytes_and_exponent(
        magnitude, scale,
    ))
}

/// `2026-12-03T14:20:00.123456Z` or `...+01:00` as milliseconds since the epoch.
pub fn iso_instant_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (time, offset_seconds) = if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        (time, 0)
    } else {
        let sign_at = rest.rfind(['+', '-'])?;
        let (time, offset) = rest.split_at(sign_at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let offset = &offset[1..];
        let (hours, minutes) = offset.split_once(':').unwrap_or((offset, "0"));
        let seconds = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
        (time, sign * seconds)
    };
    let mut time_parts = time.splitn(3, ':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let seconds_text = time_parts.next().unwrap_or("0");
    let (whole_seconds, fraction) = seconds_text.split_once('.').unwrap_or((seconds_text, ""));
    let second: i64 = whole_seconds.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis_of_second: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(
        (days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds) * 1000
            + millis_of_second,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal_parts(text: &str) -> (Vec<u8>, i32) {
        let d = decimal(text).expect("a decimal");
        let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
        (bytes.to_vec(), scale)
    }

    #[test]
    fn type_texts_parse_and_print() {
        assert_eq!(CqlType::parse("int"), CqlType::Int);
        assert_eq!(CqlType::parse("varchar"), CqlType::Text);
        assert_eq!(
            CqlType::parse("frozen<list<bigint>>"),
            CqlType::List(Box::new(CqlType::BigInt))
        );
        assert_eq!(CqlType::parse("map<text, int>").cql(), "map<text, int>");
        assert_eq!(CqlType::List(Box::new(CqlType::Text)).cql(), "list<text>");
        assert!(!CqlType::Duration.can_be_key());
        assert!(CqlType::Uuid.can_be_key());
    }

    #[test]
    fn field_types_map_to_the_cql_types_of_the_table() {
        let cases = [
            (FieldType::Boolean, "boolean"),
            (FieldType::Int8, "tinyint"),
            (FieldType::Int16, "smallint"),
            (FieldType::Int32, "int"),
            (FieldType::Int64, "bigint"),
            (FieldType::Float32, "float"),
            (FieldType::Float64, "double"),
            (FieldType::Text, "text"),
            (FieldType::Json, "text"),
            (FieldType::Bytes, "blob"),
            (
                FieldType::Decimal {
                    precision: Some(12),
                    scale: 2,
                },
                "decimal",
            ),
            (FieldType::VariableScaleDecimal, "decimal"),
            (FieldType::Uuid, "uuid"),
            (FieldType::Date, "date"),
            (FieldType::Time, "time"),
            (FieldType::Timestamp, "timestamp"),
            (FieldType::TimestampTz, "timestamp"),
            (FieldType::Interval, "duration"),
            (FieldType::Array(Box::new(FieldType::Int32)), "list<int>"),
        ];
        for (field, cql) in cases {
            assert_eq!(cql_type_for(&field).cql(), cql, "{field:?}");
        }
    }

    #[test]
    fn decimals_are_exact_twos_complement() {
        assert_eq!(decimal_parts("0"), (vec![0], 0));
        assert_eq!(decimal_parts("12.50"), (vec![0x04, 0xe2], 2)); // 1250
        assert_eq!(decimal_parts("-1"), (vec![0xff], 0));
        assert_eq!(decimal_parts("128"), (vec![0x00, 0x80], 0));
        assert_eq!(decimal_parts("-128"), (vec![0x80], 0));
        assert_eq!(decimal_parts("-129.5"), (vec![0xfa, 0xf1], 1)); // -1295
        assert_eq!(decimal_parts("-0.00"), (vec![0], 2));
        // Wider than any machine integer: 10^30.
        let (bytes, scale) = decimal_parts("1000000000000000000000000000000");
        assert_eq!(scale, 0);
        assert_eq!(bytes.len(), 13);
        assert!(decimal("1e5").is_err());
        assert!(decimal("").is_err());
        assert!(decimal("12.5.1").is_err());
    }

    #[test]
    fn integers_are_range_checked_for_their_column() {
        assert_eq!(
            to_cql(&Value::Int(7), &CqlType::Int),
            Ok(Some(CqlValue::Int(7)))
        );
        assert!(to_cql(&Value::Int(1 << 40), &CqlType::Int).is_err());
        assert!(to_cql(&Value::Int(300), &CqlType::TinyInt).is_err());
        assert_eq!(
            to_cql(&Value::Int(-3), &CqlType::SmallInt),
            Ok(Some(CqlValue::SmallInt(-3)))
        );
        assert_eq!(to_cql(&Value::Null, &CqlType::Int), Ok(None));
        assert_eq!(
            to_cql(&Value::Int(42), &CqlType::Text),
            Ok(Some(CqlValue::Text("42".into())))
        );
        assert!(to_cql(&Value::Text("x".into()), &CqlType::Int).is_err());
    }

    #[test]
    fn times_dates_and_instants() {
        assert_eq!(
            to_cql(&Value::Date(0), &CqlType::Date),
            Ok(Some(CqlValue::Date(CqlDate(1 << 31))))
        );
        assert_eq!(
            to_cql(&Value::TimeMicros(1_500), &CqlType::Time),
            Ok(Some(CqlValue::Time(CqlTime(1_500_000))))
        );
        assert_eq!(
            to_cql(&Value::TimestampMicros(-1), &CqlType::Timestamp),
            Ok(Some(CqlValue::Timestamp(CqlTimestamp(-1))))
        );
        assert_eq!(iso_instant_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            iso_instant_millis("2026-12-03T14:20:00.123456Z"),
            Some(1_796_307_600_123)
        );
        assert_eq!(
            iso_instant_millis("2026-12-03T15:20:00.5+01:00"),
            Some(1_796_307_600_500)
        );
        assert_eq!(iso_instant_millis("1969-12-31T23:59:59Z"), Some(-1000));
        assert_eq!(iso_instant_millis("yesterday"), None);
        assert_eq!(as_text(&Value::Date(20_424)), "2025-12-02");
        assert_eq!(
            as_text(&Value::TimestampMicros(1_000_001)),
            "1970-01-01T00:00:01.000001"
        );
    }

    #[test]
    fn lists_refuse_nulls_and_json_goes_into_text() {
        let list = Value::Array(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(
            to_cql(&list, &CqlType::List(Box::new(CqlType::Int))),
            Ok(Some(CqlValue::List(vec![
                CqlValue::Int(1),
                CqlValue::Int(2)
            ])))
        );
        let holey = Value::Array(vec![Value::Int(1), Value::Null]);
        assert!(to_cql(&holey, &CqlType::List(Box::new(CqlType::Int))).is_err());
        let json = Value::Json(serde_json::json!({"a": 1}));
        assert_eq!(
            to_cql(&json, &CqlType::Text),
            Ok(Some(CqlValue::Text("{\"a\":1}".into())))
        );
    }
}
