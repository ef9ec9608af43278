//! Dates, times and intervals: PostgreSQL's text output in, Debezium's numbers and strings out.
//!
//! pgoutput sends temporal values in the server's output format (DateStyle ISO, IntervalStyle
//! postgres, the defaults). Debezium (`time.precision.mode=adaptive`, its default) writes them as:
//!
//! ```text
//! date         2024-03-15                   -> io.debezium.time.Date            19797 (days since 1970-01-01)
//! timestamp    2024-03-15 12:34:56          -> io.debezium.time.MicroTimestamp  1710506096000000 (µs, read as UTC)
//! timestamp(3) 2024-03-15 12:34:56.5        -> io.debezium.time.Timestamp       1710506096500 (ms)
//! timestamptz  2024-03-15 12:34:56+02       -> io.debezium.time.ZonedTimestamp  "2024-03-15T10:34:56.000000Z"
//! time         12:34:56                     -> io.debezium.time.MicroTime       45296000000 (µs past midnight)
//! time(3)      12:34:56.5                   -> io.debezium.time.Time            45296500 (ms past midnight)
//! timetz       12:34:56+02                  -> io.debezium.time.ZonedTime       "10:34:56Z"
//! interval     1 day 02:03:00               -> io.debezium.time.MicroDuration   93780000000 (µs; a month is 30.4375 days)
//! ```
//!
//! A ZonedTimestamp always has as many fraction digits as the column's precision (6 unless
//! declared `timestamptz(p)`), a ZonedTime only the digits it needs. `infinity` timestamps
//! become the PostgreSQL JDBC driver's magic numbers (or the strings `infinity`/`-infinity`
//! for timestamptz), as Debezium does.

/// What Debezium writes for `timestamp 'infinity'` (µs): the JDBC driver's `DATE_POSITIVE_INFINITY`.
pub(crate) const POSITIVE_INFINITY_MICROS: i64 = 9_223_372_036_825_200_000;
/// What Debezium writes for `timestamp '-infinity'` (µs): the JDBC driver's `DATE_NEGATIVE_INFINITY`.
pub(crate) const NEGATIVE_INFINITY_MICROS: i64 = -9_223_372_036_832_400_000;

use super::json;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A `timestamp`/`timestamptz` value: microseconds since 1970-01-01T00:00Z, or an infinity.
/// (i128: PostgreSQL's last timestamp, 294276 AD, is beyond an i64 of microseconds once its
/// time zone offset is applied, and Debezium's arithmetic on it must be reproduced.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampValue {
    Micros(i128),
    PositiveInfinity,
    NegativeInfinity,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year 0 is 1 BC).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// Splits a trailing " BC" off; PostgreSQL prints years before 1 AD as `0044-03-15 BC`.
fn split_era(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (text.strip_suffix(" AD").unwrap_or(text), false),
    }
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `YYYY-MM-DD` (4 or more year digits) to days since the epoch.
fn parse_ymd(text: &str, before_christ: bool) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year = digits(parts.next()?)?;
    let month = u32::try_from(digits(parts.next()?)?).ok()?;
    let day = u32::try_from(digits(parts.next()?)?).ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let year = if before_christ { 1 - year } else { year };
    Some(days_from_civil(year, month, day))
}

/// `HH:MM:SS[.ffffff]` to microseconds; hours may exceed 23 (`24:00:00` is a valid `time`).
fn parse_clock(text: &str) -> Option<i64> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = clock.splitn(3, ':');
    let hours = digits(parts.next()?)?;
    let minutes = digits(parts.next()?)?;
    let seconds = digits(parts.next()?)?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Nanoseconds, truncated to microseconds (Java's Duration.toNanos() / 1000).
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some(((hours * 60 + minutes) * 60 + seconds) * MICROS_PER_SECOND + nanos / 1000)
}

/// An offset `+HH`, `-HH:MM`, `+HH:MM:SS` in seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let mut parts = rest.splitn(3, ':');
    let hours = digits(parts.next()?)?;
    let minutes = parts.next().map_or(Some(0), digits)?;
    let seconds = parts.next().map_or(Some(0), digits)?;
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// Finds where a trailing UTC offset starts in `HH:MM:SS[.f]±HH[:MM[:SS]]`.
fn split_offset(text: &str) -> Option<(&str, &str)> {
    let at = text.rfind(['+', '-'])?;
    Some((&text[..at], &text[at..]))
}

/// A `date` to days since the epoch (`infinity` becomes Debezium's sentinel day numbers).
pub(crate) fn parse_date(text: &str) -> Option<i32> {
    let days = match text {
        // Debezium maps these through LocalDate -5877611-06-21 / -22 (sic) and an int cast.
        "infinity" => days_from_civil(-5_877_611, 6, 21),
        "-infinity" => days_from_civil(-5_877_611, 6, 22),
        _ => {
            let (date, bc) = split_era(text);
            parse_ymd(date, bc)?
        }
    };
    Some(days as i32)
}

/// A `timestamp` (no zone), read as UTC like Debezium does.
pub(crate) fn parse_timestamp(text: &str) -> Option<TimestampValue> {
    match text {
        "infinity" => return Some(TimestampValue::PositiveInfinity),
        "-infinity" => return Some(TimestampValue::NegativeInfinity),
        _ => {}
    }
    let (body, bc) = split_era(text);
    let (date, clock) = body.split_once(' ')?;
    let days = parse_ymd(date, bc)?;
    let micros = i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(parse_clock(clock)?);
    Some(TimestampValue::Micros(micros))
}

/// A `timestamptz`, converted to UTC.
pub(crate) fn parse_timestamptz(text: &str) -> Option<TimestampValue> {
    match text {
        "infinity" => return Some(TimestampValue::PositiveInfinity),
        "-infinity" => return Some(TimestampValue::NegativeInfinity),
        _ => {}
    }
    let (body, bc) = split_era(text);
    let (date, clock_and_offset) = body.split_once(' ')?;
    let (clock, offset) = split_offset(clock_and_offset)?;
    let days = parse_ymd(date, bc)?;
    let local = i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(parse_clock(clock)?);
    Some(TimestampValue::Micros(
        local - i128::from(parse_offset(offset)?) * i128::from(MICROS_PER_SECOND),
    ))
}

/// Milliseconds from microseconds, rounding down like Java's `Instant.toEpochMilli()`.
pub(crate) fn micros_to_millis(micros: i64) -> i64 {
    micros.div_euclid(1000)
}

/// The value as a millisecond epoch number (Debezium's `io.debezium.time.Timestamp`): exact
/// for every finite timestamp, the sentinels for the infinities.
pub(crate) fn timestamp_millis(value: TimestampValue) -> i64 {
    match value {
        TimestampValue::Micros(micros) => micros.div_euclid(1000) as i64,
        infinity => micros_to_millis(timestamp_micros(infinity)),
    }
}

/// The value as a microsecond epoch number (`infinity` as the JDBC driver's sentinel).
///
/// Debezium computes it as Java's `TimeUnit.SECONDS.toMicros(epochSecond) + nanos / 1000`: the
/// first part saturates at `Long.MAX_VALUE`/`MIN_VALUE`, the addition then wraps. So the last
/// microsecond of 294276 AD becomes `-9223372036853775810`, and so does ours.
pub(crate) fn timestamp_micros(value: TimestampValue) -> i64 {
    match value {
        TimestampValue::Micros(micros) => {
            let seconds = micros.div_euclid(i128::from(MICROS_PER_SECOND));
            let fraction = micros.rem_euclid(i128::from(MICROS_PER_SECOND)) as i64;
            let seconds =
                i64::try_from(seconds).unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX });
            seconds
                .saturating_mul(MICROS_PER_SECOND)
                .wrapping_add(fraction)
        }
        TimestampValue::PositiveInfinity => POSITIVE_INFINITY_MICROS,
        TimestampValue::NegativeInfinity => NEGATIVE_INFINITY_MICROS,
    }
}

/// Writes a UTC instant as Debezium's ZonedTimestamp: ISO-8601 with `Z`, and exactly
/// `fraction_digits` fraction digits when that is 1..=9, else only the digits needed.
#[cfg(test)]
pub(crate) fn format_zoned_timestamp(micros: i128, fraction_digits: u32) -> String {
    let mut out = Vec::with_capacity(32);
    write_zoned_timestamp(&mut out, micros, fraction_digits);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends a UTC instant as Debezium's ZonedTimestamp (quotes not included): ISO-8601 with
/// `Z`, exactly `fraction_digits` fraction digits when that is 1..=9, else only those needed.
pub(crate) fn write_zoned_timestamp(out: &mut Vec<u8>, micros: i128, fraction_digits: u32) {
    let days = micros.div_euclid(i128::from(MICROS_PER_DAY)) as i64;
    let time_of_day = micros.rem_euclid(i128::from(MICROS_PER_DAY)) as i64;
    let (year, month, day) = civil_from_days(days);
    write_iso_year(out, year);
    out.push(b'-');
    json::write_padded(out, u64::from(month), 2);
    out.push(b'-');
    json::write_padded(out, u64::from(day), 2);
    out.push(b'T');
    write_clock(out, time_of_day, fraction_digits);
    out.push(b'Z');
}

/// Java's ISO year: four digits, a `+` beyond 9999, a `-` before year 0.
fn write_iso_year(out: &mut Vec<u8>, year: i64) {
    if year > 9999 {
        out.push(b'+');
    } else if year < 0 {
        out.push(b'-');
    }
    json::write_padded(
        out,
        year.unsigned_abs(),
        4.max(digit_count(year.unsigned_abs())),
    );
}

fn digit_count(mut value: u64) -> usize {
    let mut count = 1;
    while value >= 10 {
        value /= 10;
        count += 1;
    }
    count
}

/// `HH:MM:SS` plus the fraction (see [`write_zoned_timestamp`]).
fn write_clock(out: &mut Vec<u8>, time_of_day: i64, fraction_digits: u32) {
    let seconds_total = (time_of_day / MICROS_PER_SECOND) as u64;
    let micros = (time_of_day % MICROS_PER_SECOND) as u64;
    json::write_padded(out, seconds_total / 3600, 2);
    out.push(b':');
    json::write_padded(out, seconds_total / 60 % 60, 2);
    out.push(b':');
    json::write_padded(out, seconds_total % 60, 2);
    let mut nanos = [0u8; 9];
    let mut rest = micros * 1000;
    for slot in nanos.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    if (1..=9).contains(&fraction_digits) {
        out.push(b'.');
        out.extend_from_slice(&nanos[..fraction_digits as usize]);
    } else if micros != 0 {
        let significant = nanos
            .iter()
            .rposition(|d| *d != b'0')
            .map_or(0, |last| last + 1);
        out.push(b'.');
        out.extend_from_slice(&nanos[..significant]);
    }
}

/// A `time` to microseconds past midnight.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    parse_clock(text)
}

/// A `timetz` as Debezium's ZonedTime: shifted to UTC (wrapping around midnight), e.g.
/// `00:00:00-05:30` -> `05:30:00Z`.
pub(crate) fn format_timetz(text: &str) -> Option<String> {
    let (clock, offset) = split_offset(text)?;
    let local = parse_clock(clock)?;
    let utc = (local - parse_offset(offset)? * MICROS_PER_SECOND).rem_euclid(MICROS_PER_DAY);
    let mut out = Vec::with_capacity(20);
    write_clock(&mut out, utc, 0);
    out.push(b'Z');
    String::from_utf8(out).ok()
}

/// An `interval` as the JDBC driver's `PGInterval` holds it: each field as parsed, and the
/// seconds as `getSeconds()` returns them (whole seconds plus rounded microseconds, a double).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IntervalParts {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub hours: i32,
    pub minutes: i32,
    pub seconds: f64,
}

/// Parses an `interval` in IntervalStyle postgres (`-1 years 2 mons -3 days 04:05:06.789`, what
/// pgoutput sends by default) or postgres_verbose (`@ 1 year 2 mons ago`), as `PGInterval` does.
pub(crate) fn parse_interval(text: &str) -> Option<IntervalParts> {
    if text.starts_with('P') {
        return None; // IntervalStyle iso_8601: not what pgoutput sends by default
    }
    let verbose = text.starts_with('@');
    let normalized = text.replace(['+', '@'], " ").to_lowercase();
    let (mut years, mut months, mut days, mut hours, mut minutes) = (0i32, 0i32, 0i32, 0i32, 0i32);
    let mut seconds = 0f64;
    let mut value_token: Option<&str> = None;
    let int_of = |token: Option<&str>| -> Option<i32> { token.map_or(Some(0), |t| t.parse().ok()) };
    for (index, token) in normalized.split_whitespace().enumerate() {
        if index % 2 == 0 {
            let Some(end_hours) = token.find(':') else {
                value_token = Some(token);
                continue;
            };
            let negative = token.starts_with('-');
            let start = usize::from(negative);
            hours = token.get(start..end_hours)?.parse().ok()?;
            minutes = token.get(end_hours + 1..end_hours + 3)?.parse().ok()?;
            if let Some(end_minutes) = token[end_hours + 1..].find(':') {
                seconds = token[end_hours + 1 + end_minutes + 1..].parse().ok()?;
            }
            if negative {
                hours = -hours;
                minutes = -minutes;
                seconds = -seconds;
            }
            value_token = None;
        } else if token.starts_with("year") {
            years = int_of(value_token)?;
        } else if token.starts_with("mon") {
            months = int_of(value_token)?;
        } else if token.starts_with("day") {
            days = int_of(value_token)?;
        } else if token.starts_with("hour") {
            hours = int_of(value_token)?;
        } else if token.starts_with("min") {
            minutes = int_of(value_token)?;
        } else if token.starts_with("sec") {
            seconds = value_token.map_or(Some(0.0), |t| t.parse().ok())?;
        }
    }
    if verbose && normalized.ends_with("ago") {
        (years, months, days, hours, minutes, seconds) =
            (-years, -months, -days, -hours, -minutes, -seconds);
    }
    // PGInterval.setSeconds: whole seconds plus rounded microseconds; getSeconds adds them back.
    let total_micros = java_math_round(seconds * 1e6);
    let whole_seconds = total_micros / MICROS_PER_SECOND;
    let micro_seconds = total_micros % MICROS_PER_SECOND;
    let seconds = whole_seconds as f64 + micro_seconds as f64 / 1e6;
    Some(IntervalParts {
        years,
        months,
        days,
        hours,
        minutes,
        seconds,
    })
}

/// An `interval` as Debezium's MicroDuration (`interval.handling.mode=numeric`).
///
/// Debezium goes through the JDBC driver's `PGInterval` and then floating point:
/// `((years*12 + months) * 30.4375 + days) * 86400 s + hours, minutes, seconds`, truncated to
/// whole microseconds. The same steps are repeated here, in the same order, so that even the
/// floating-point rounding agrees.
pub(crate) fn interval_micros(text: &str) -> Option<i64> {
    let parts = parse_interval(text)?;
    // MicroDuration.durationMicros with DAYS_PER_MONTH_AVG = 365.25 / 12.
    let days_per_month = 365.25 / 12.0;
    let number_of_days = f64::from(parts.years.wrapping_mul(12).wrapping_add(parts.months))
        * days_per_month
        + f64::from(parts.days);
    let number_of_seconds =
        ((number_of_days * 24.0 + f64::from(parts.hours)) * 60.0 + f64::from(parts.minutes)) * 60.0
            + parts.seconds;
    // Java's (long) cast: truncation toward zero, saturating; Rust's `as` does the same.
    Some((number_of_seconds * 1e6 + 0.0) as i64)
}

/// An `interval` as Debezium's `io.debezium.time.Interval` (`interval.handling.mode=string`):
/// `P<y>Y<m>M<d>DT<h>H<m>M<s>S`, each field as PostgreSQL printed it (nothing normalized), the
/// seconds as Java's `BigDecimal.valueOf(double)` without trailing zeros (at most 9 digits).
///
/// ```text
/// 1 day 02:03:00                      -> P0Y0M1DT2H3M0S
/// -1 years 2 mons -3 days 04:05:06.789 -> P-1Y2M-3DT4H5M6.789S
/// -00:00:01.5                          -> P0Y0M0DT0H0M-1.5S
/// ```
pub(crate) fn interval_iso(text: &str) -> Option<String> {
    let parts = parse_interval(text)?;
    Some(format!(
        "P{}Y{}M{}DT{}H{}M{}S",
        parts.years,
        parts.months,
        parts.days,
        parts.hours,
        parts.minutes,
        plain_seconds(parts.seconds)
    ))
}

/// `BigDecimal.valueOf(seconds)` (Java's `Double.toString` digits), cut to 9 fraction digits,
/// `stripTrailingZeros().toPlainString()`.
fn plain_seconds(seconds: f64) -> String {
    let java = json::java_double_to_string(seconds);
    let (mantissa, exponent) = match java.split_once('E') {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().unwrap_or(0)),
        None => (java.as_str(), 0),
    };
    let negative = mantissa.starts_with('-');
    let unsigned = mantissa.trim_start_matches('-');
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    // The digits and where the decimal point sits in them.
    let digits = format!("{integer}{fraction}");
    let point = integer.len() as i32 + exponent;
    let (mut whole, mut fraction) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    fraction.truncate(9);
    while fraction.ends_with('0') {
        fraction.pop();
    }
    let trimmed = whole.trim_start_matches('0');
    whole = if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    };
    let is_zero = whole == "0" && fraction.is_empty();
    let sign = if negative && !is_zero { "-" } else { "" };
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// Java's `Math.round(double)`: nearest, ties toward positive infinity.
fn java_math_round(value: f64) -> i64 {
    let floor = value.floor();
    if value - floor >= 0.5 {
        floor as i64 + 1
    } else {
        floor as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_day_numbers() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 3, 15), 19797);
        assert_eq!(days_from_civil(2020, 2, 29), 18321);
        assert_eq!(days_from_civil(1969, 7, 20), -165);
        for days in [-800_000, -1, 0, 1, 19797, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2024-03-15"), Some(19797));
        assert_eq!(parse_date("1969-07-20"), Some(-165));
        assert_eq!(
            parse_date("0001-01-01 BC"),
            Some(days_from_civil(0, 1, 1) as i32)
        );
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn timestamps_as_utc_micros() {
        assert_eq!(
            parse_timestamp("2024-03-15 12:34:56"),
            Some(TimestampValue::Micros(1_710_506_096_000_000))
        );
        assert_eq!(
            parse_timestamp("1969-07-20 20:17:40.123456"),
            Some(TimestampValue::Micros(-14_182_939_876_544))
        );
        assert_eq!(
            timestamp_micros(parse_timestamp("infinity").unwrap()),
            POSITIVE_INFINITY_MICROS
        );
        assert_eq!(micros_to_millis(-1), -1);
    }

    #[test]
    fn zoned_timestamps() {
        let micros = |text| match parse_timestamptz(text) {
            Some(TimestampValue::Micros(micros)) => micros,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            format_zoned_timestamp(micros("2024-03-15 12:34:56+02"), 6),
            "2024-03-15T10:34:56.000000Z"
        );
        assert_eq!(
            format_zoned_timestamp(micros("1960-01-01 00:00:00.5+00"), 6),
            "1960-01-01T00:00:00.500000Z"
        );
        assert_eq!(
            format_zoned_timestamp(micros("2024-05-01 10:06:30.25+00"), 6),
            "2024-05-01T10:06:30.250000Z"
        );
        assert_eq!(
            format_zoned_timestamp(micros("2024-05-01 10:06:30.25+05:30"), 3),
            "2024-05-01T04:36:30.250Z"
        );
        assert_eq!(
            format_zoned_timestamp(micros("2024-05-01 10:06:30.25-00:00:15"), 0),
            "2024-05-01T10:06:45.25Z"
        );
        assert_eq!(
            format_zoned_timestamp(micros("2024-05-01 10:06:30+00"), 0),
            "2024-05-01T10:06:30Z"
        );
        assert_eq!(
            format_zoned_timestamp(micros("12345-01-01 00:00:00+00"), 6),
            "+12345-01-01T00:00:00.000000Z"
        );
        assert_eq!(format_zoned_timestamp(0, 6), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            parse_timestamptz("-infinity"),
            Some(TimestampValue::NegativeInfinity)
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("12:34:56"), Some(45_296_000_000));
        assert_eq!(parse_time("23:59:59.999999"), Some(86_399_999_999));
        assert_eq!(parse_time("24:00:00"), Some(86_400_000_000));
        assert_eq!(parse_time("15:32:13.5"), Some(55_933_500_000));
        assert_eq!(format_timetz("12:34:56+02").as_deref(), Some("10:34:56Z"));
        assert_eq!(
            format_timetz("00:00:00-05:30").as_deref(),
            Some("05:30:00Z")
        );
        assert_eq!(
            format_timetz("01:00:00.120+03").as_deref(),
            Some("22:00:00.12Z")
        );
    }

    #[test]
    fn intervals_as_iso_strings() {
        assert_eq!(
            interval_iso("1 day 02:03:00").as_deref(),
            Some("P0Y0M1DT2H3M0S")
        );
        assert_eq!(
            interval_iso("-1 years 2 mons -3 days 04:05:06.789").as_deref(),
            Some("P-1Y2M-3DT4H5M6.789S")
        );
        assert_eq!(
            interval_iso("-00:00:01.5").as_deref(),
            Some("P0Y0M0DT0H0M-1.5S")
        );
        assert_eq!(
            interval_iso("00:00:00.000001").as_deref(),
            Some("P0Y0M0DT0H0M0.000001S")
        );
        assert_eq!(
            interval_iso("178000000 years").as_deref(),
            Some("P178000000Y0M0DT0H0M0S")
        );
        assert_eq!(interval_iso("00:00:00").as_deref(), Some("P0Y0M0DT0H0M0S"));
        assert_eq!(plain_seconds(1e7), "10000000");
        assert_eq!(plain_seconds(-0.0), "0");
        assert_eq!(interval_iso("P1Y"), None);
    }

    #[test]
    fn intervals_match_recorded_debezium_output() {
        // Both from conformance/debezium/types.jsonl.
        assert_eq!(interval_micros("1 day 02:03:00"), Some(93_780_000_000));
        assert_eq!(
            interval_micros("-1 years +2 mons -3 days +04:05:06.789"),
            Some(-26_542_493_211_000)
        );
        assert_eq!(interval_micros("00:00:00"), Some(0));
        assert_eq!(interval_micros("1 mon"), Some(2_629_800_000_000));
        assert_eq!(interval_micros("-1 days -02:00:00"), Some(-93_600_000_000));
        assert_eq!(interval_micros("@ 1 day ago"), Some(-86_400_000_000));
        assert_eq!(interval_micros("P1D"), None);
    }
}
