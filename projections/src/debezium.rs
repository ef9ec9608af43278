//! Decoding a Debezium PostgreSQL change record (JsonConverter) into a [`ChangeEvent`].
//!
//! The value of a record on `dbserver1.public.orders`, with `schemas.enable=true`:
//!
//! ```text
//! {"schema":{"type":"struct","name":"dbserver1.public.orders.Envelope","fields":[
//!     {"field":"before","type":"struct","fields":[{"field":"id","type":"int64"}, ...]},
//!     {"field":"after","type":"struct","fields":[ ...,
//!         {"field":"total","type":"bytes","name":"org.apache.kafka.connect.data.Decimal",
//!          "parameters":{"scale":"2","connect.decimal.precision":"12"}}, ...]},
//!     {"field":"source", ...}, {"field":"op","type":"string"}, ...]},
//!  "payload":{"before":null,
//!             "after":{"id":42,"customer_id":7,"status":"NEW","total":"BM4=","currency":"EUR",...},
//!             "source":{"connector":"postgresql","name":"dbserver1","snapshot":"false",
//!                       "table":"orders","txId":771,"lsn":22910504,...},
//!             "op":"c","ts_ms":1732376400000, ...}}
//! ```
//!
//! With `schemas.enable=false` (`--no-schemas`) the value is the `payload` object alone.
//! A tombstone (the null value Debezium sends after each delete) decodes to
//! [`Decoded::Tombstone`].
//!
//! `total` is a `numeric(12,2)`. Debezium's default `decimal.handling.mode=precise` sends Kafka
//! Connect's `Decimal`: base64 of the big-endian two's-complement unscaled integer, its scale
//! in the schema parameters (`12.30` = unscaled 1230 = bytes `04 CE` = `"BM4="`). Modes
//! `string` (`"12.30"`) and `double` (`12.3`) are accepted too. Without a schema the scale is
//! taken to be the column's, [`TOTAL_SCALE`], and a string is read as a decimal if it looks
//! like one (it has a `.`, or is not base64), else as a base64 `Decimal`.
//!
//! Speed matters (the consumer replays at over 100k events/s), so the JSON is read into small
//! borrowed structs naming only the fields used; serde skips the rest without building a tree.

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;

use crate::event::{ChangeEvent, Decoded, Op, OrderRow, Position};
use crate::money::{Cents, MoneyError, TOTAL_SCALE};

/// Kafka Connect's name for the `Decimal` logical type.
pub const CONNECT_DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

/// Why a record is not a change event the projections can use (it goes to the dead-letter topic).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the value is not valid JSON for a change event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown op `{0}` (expected c, u, d or r)")]
    UnknownOp(String),
    #[error("the change event has no `{0}`")]
    Missing(&'static str),
    #[error("the schema does not fit the orders table: {0}")]
    SchemaMismatch(String),
    #[error("`{field}` is not a usable amount: {source}")]
    Money {
        field: &'static str,
        source: MoneyError,
    },
    #[error("`{field}` is neither a decimal nor base64 of one: `{text}`")]
    NotBase64 { field: &'static str, text: String },
    #[error("{0}")]
    Invalid(String),
}

/// Decodes one record value of the orders CDC topic. `None` or empty is a tombstone.
pub fn decode_change(value: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let Some(bytes) = value.filter(|b| !b.is_empty()) else {
        return Ok(Decoded::Tombstone);
    };
    let outer: Option<Outer> = serde_json::from_slice(bytes)?;
    let Some(outer) = outer else {
        return Ok(Decoded::Tombstone);
    };
    let total_kind = match &outer.schema {
        Some(schema) => Some(total_kind_from_schema(schema)?),
        None => None,
    };
    let payload = match outer.payload {
        Some(payload) => payload,
        // The payload-only form: the envelope's fields are at the top level.
        None if outer.schema.is_none() && outer.op.is_some() => Payload {
            before: outer.before,
            after: outer.after,
            source: outer.source,
            op: outer.op,
        },
        None if outer.schema.is_some() => return Ok(Decoded::Tombstone),
        None => return Err(DecodeError::Missing("op")),
    };
    payload_to_event(payload, total_kind).map(Decoded::Change)
}

/// A decoder that remembers the last schema it read.
///
/// Every record of a topic carries the same ~2.5 KB schema part, and reading it is most of
/// the decoding work. When a record's schema bytes are identical to the previous record's
/// (one `memcmp`), what that schema said about `total` still holds, and only the payload
/// is parsed. Anything unusual falls back to [`decode_change`].
///
/// ```text
/// {"schema":<the same bytes as last time>,"payload":{...}}
///           └─ compared, not parsed      └─ parsed
/// ```
#[derive(Debug, Default, Clone)]
pub struct ChangeDecoder {
    last_schema: Vec<u8>,
    last_total_kind: Option<TotalKind>,
}

const SCHEMA_PREFIX: &[u8] = br#"{"schema":"#;
const PAYLOAD_INFIX: &[u8] = br#","payload":"#;

impl ChangeDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes like [`decode_change`], faster when the schema repeats.
    pub fn decode(&mut self, value: Option<&[u8]>) -> Result<Decoded, DecodeError> {
        let Some(bytes) = value.filter(|b| !b.is_empty()) else {
            return Ok(Decoded::Tombstone);
        };
        let Some(after_prefix) = bytes.strip_prefix(SCHEMA_PREFIX) else {
            return decode_change(Some(bytes));
        };
        if let Some(kind) = self.last_total_kind {
            if let Some(rest) = after_prefix.strip_prefix(self.last_schema.as_slice()) {
                if let Some(payload) = rest
                    .strip_prefix(PAYLOAD_INFIX)
                    .and_then(|p| p.strip_suffix(b"}"))
                {
                    return decode_payload(payload, Some(kind));
                }
            }
        }
        // Learn this schema: parse it, and note where it ends.
        let mut schemas =
            serde_json::Deserializer::from_slice(after_prefix).into_iter::<EnvelopeSchema>();
        if let Some(Ok(schema)) = schemas.next() {
            let end = schemas.byte_offset();
            if let (Ok(kind), Some(schema_bytes)) =
                (total_kind_from_schema(&schema), after_prefix.get(..end))
            {
                self.last_schema = schema_bytes.to_vec();
                self.last_total_kind = Some(kind);
            }
        }
        decode_change(Some(bytes))
    }
}

impl ChangeDecoder {
    /// A change whose Connect schema (`schema`: its JSON as `JsonConverter` writes it) comes
    /// apart from its payload, which `payload` reads: an Avro record read through its writer
    /// schema (schema-registry's `DatumView`), with no JSON text in between. What the schema
    /// says about `total` is remembered by its bytes, as in [`Self::decode`].
    pub fn decode_parts<'de, D>(
        &mut self,
        schema: &[u8],
        payload: D,
    ) -> Result<Decoded, DecodeError>
    where
        D: serde::Deserializer<'de>,
        D::Error: std::fmt::Display,
    {
        if self.last_schema != schema {
            self.last_total_kind = serde_json::from_slice::<EnvelopeSchema>(schema)
                .ok()
                .and_then(|schema| total_kind_from_schema(&schema).ok());
            self.last_schema = schema.to_vec();
        }
        let payload = Option::<Payload>::deserialize(payload)
            .map_err(|e| DecodeError::Invalid(format!("the payload: {e}")))?;
        match payload {
            Some(payload) => payload_to_event(payload, self.last_total_kind).map(Decoded::Change),
            None => Ok(Decoded::Tombstone),
        }
    }
}

fn decode_payload(payload: &[u8], total_kind: Option<TotalKind>) -> Result<Decoded, DecodeError> {
    let payload: Option<Payload> = serde_json::from_slice(payload)?;
    match payload {
        Some(payload) => payload_to_event(payload, total_kind).map(Decoded::Change),
        None => Ok(Decoded::Tombstone),
    }
}

fn payload_to_event(
    payload: Payload,
    total_kind: Option<TotalKind>,
) -> Result<ChangeEvent, DecodeError> {
    let code = payload.op.ok_or(DecodeError::Missing("op"))?;
    let op = Op::from_code(&code).ok_or_else(|| DecodeError::UnknownOp(code.to_string()))?;
    let position = position(payload.source.as_ref())?;
    match op {
        Op::Delete => {
            let before = payload
                .before
                .ok_or(DecodeError::Missing("before (of a delete)"))?;
            let order_id = before.id.ok_or(DecodeError::Missing("before.id"))?;
            Ok(ChangeEvent {
                order_id,
                op,
                after: None,
                position,
            })
        }
        Op::Create | Op::Update | Op::Read => {
            let after = payload.after.ok_or(DecodeError::Missing("after"))?;
            let order_id = after.id.ok_or(DecodeError::Missing("after.id"))?;
            let row = OrderRow {
                customer_id: after
                    .customer_id
                    .ok_or(DecodeError::Missing("after.customer_id"))?,
                status: after
                    .status
                    .ok_or(DecodeError::Missing("after.status"))?
                    .into_owned(),
                total: decode_total(
                    after.total.ok_or(DecodeError::Missing("after.total"))?,
                    total_kind,
                )?,
            };
            Ok(ChangeEvent {
                order_id,
                op,
                after: Some(row),
                position,
            })
        }
    }
}

/// Where the change sits in the source's order ([`Position::Sequence`]): `source.sequence`
/// (`"[\"<last commit>\",\"<lsn>\"]"`, either may be null) and `source.lsn`. An incremental
/// snapshot read has no `source.lsn`; the second half of its sequence (the high watermark's
/// LSN) stands in. A record with neither is not usable.
fn position(source: Option<&Source<'_>>) -> Result<Position, DecodeError> {
    let source = source.ok_or(DecodeError::Missing("source.lsn"))?;
    let (last_commit, sequence_lsn) = match source.sequence.as_deref() {
        Some(text) => parse_sequence(text)?,
        None => (None, None),
    };
    let lsn = source
        .lsn
        .or(sequence_lsn)
        .ok_or(DecodeError::Missing("source.lsn"))?;
    if lsn < 0 {
        return Err(DecodeError::Invalid(format!(
            "source.lsn {lsn} is negative"
        )));
    }
    Ok(Position::Sequence { last_commit, lsn })
}

/// `["22910400","22910504"]` (a JSON array of two LSNs as strings, or nulls) into its halves.
fn parse_sequence(text: &str) -> Result<(Option<i64>, Option<i64>), DecodeError> {
    let invalid = || {
        DecodeError::Invalid(format!(
            "source.sequence `{text}` is not [\"<lsn>\",\"<lsn>\"]"
        ))
    };
    let halves: Vec<Option<Cow<'_, str>>> = serde_json::from_str(text).map_err(|_| invalid())?;
    let lsn = |half: Option<&Option<Cow<'_, str>>>| -> Result<Option<i64>, DecodeError> {
        match half {
            Some(Some(text)) => text
                .parse::<i64>()
                .ok()
                .filter(|lsn| *lsn >= 0)
                .map(Some)
                .ok_or_else(invalid),
            _ => Ok(None),
        }
    };
    match halves.len() {
        2 => Ok((lsn(halves.first())?, lsn(halves.get(1))?)),
        _ => Err(invalid()),
    }
}

/// How `total` is encoded, as the schema says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TotalKind {
    /// Base64 of the unscaled integer, with this scale.
    Decimal { scale: u32 },
    /// `"12.30"`.
    Text,
    /// `12.3`.
    Double,
}

fn total_kind_from_schema(schema: &EnvelopeSchema) -> Result<TotalKind, DecodeError> {
    let row_schema = schema
        .fields
        .iter()
        .find(|f| f.field == "after")
        .and_then(|f| f.fields.as_ref())
        .ok_or_else(|| {
            DecodeError::SchemaMismatch("the envelope schema has no `after` struct".into())
        })?;
    let total = row_schema
        .iter()
        .find(|f| f.field == "total")
        .ok_or_else(|| {
            DecodeError::SchemaMismatch("the row schema has no `total` column".into())
        })?;
    match (total.kind.as_ref(), total.name.as_deref()) {
        ("bytes", Some(CONNECT_DECIMAL)) => {
            let scale = total
                .parameters
                .as_ref()
                .and_then(|p| p.scale.as_deref())
                .ok_or_else(|| {
                    DecodeError::SchemaMismatch("`total` is a Decimal without a scale".into())
                })?;
            let scale = scale.parse().map_err(|_| {
                DecodeError::SchemaMismatch(format!("Decimal scale `{scale}` is not a number"))
            })?;
            Ok(TotalKind::Decimal { scale })
        }
        ("string", _) => Ok(TotalKind::Text),
        ("double" | "float64" | "float", _) => Ok(TotalKind::Double),
        (kind, name) => Err(DecodeError::SchemaMismatch(format!(
            "`total` has type {kind}{}; expected a Decimal, a string or a double",
            name.map(|n| format!(" ({n})")).unwrap_or_default()
        ))),
    }
}

fn decode_total(raw: RawDecimal, kind: Option<TotalKind>) -> Result<Cents, DecodeError> {
    let money = |source| DecodeError::Money {
        field: "total",
        source,
    };
    match (raw, kind) {
        (RawDecimal::Number(n), None | Some(TotalKind::Double)) => {
            Cents::from_f64(n).map_err(money)
        }
        (RawDecimal::Text(text), Some(TotalKind::Text)) => Cents::parse(&text).map_err(money),
        (RawDecimal::Text(text), Some(TotalKind::Decimal { scale })) => {
            decode_connect_decimal(&text, scale)
        }
        (RawDecimal::Text(text), None) => {
            if text.contains('.') {
                Cents::parse(&text).map_err(money)
            } else {
                decode_connect_decimal(&text, TOTAL_SCALE)
                    .or_else(|_| Cents::parse(&text).map_err(money))
            }
        }
        (raw, Some(kind)) => Err(DecodeError::SchemaMismatch(format!(
            "`total` is {raw:?} but the schema says {kind:?}"
        ))),
    }
}

/// Kafka Connect `Decimal`: base64 of the big-endian two's-complement unscaled integer.
///
/// ```text
/// "BM4=" -> 04 CE -> 1230 -> (scale 2) 12.30
/// "/w==" -> FF    -> -1   -> (scale 2) -0.01
/// ```
pub fn decode_connect_decimal(text: &str, scale: u32) -> Result<Cents, DecodeError> {
    let not_base64 = || DecodeError::NotBase64 {
        field: "total",
        text: text.to_string(),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| not_base64())?;
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(not_base64());
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut unscaled: i128 = if negative { -1 } else { 0 };
    for b in bytes {
        unscaled = (unscaled << 8) | i128::from(b);
    }
    Cents::from_unscaled(unscaled, scale).map_err(|source| DecodeError::Money {
        field: "total",
        source,
    })
}

/// The inverse of [`decode_connect_decimal`] at scale 2 (for fixtures and the benchmark):
/// the shortest two's-complement big-endian bytes, base64.
pub fn encode_connect_decimal(cents: Cents) -> String {
    let bytes = cents.0.to_be_bytes();
    let negative = cents.0 < 0;
    let filler = if negative { 0xFF } else { 0x00 };
    let mut start = 0;
    // Drop a leading filler byte while the next byte still carries the right sign bit.
    while start < bytes.len() - 1
        && bytes[start] == filler
        && ((bytes[start + 1] & 0x80 != 0) == negative)
    {
        start += 1;
    }
    base64::engine::general_purpose::STANDARD.encode(&bytes[start..])
}

// ---- the JSON shapes, only the fields used ----

#[derive(Deserialize)]
struct Outer<'a> {
    #[serde(borrow)]
    schema: Option<EnvelopeSchema<'a>>,
    #[serde(borrow)]
    payload: Option<Payload<'a>>,
    // The payload-only form (`schemas.enable=false`).
    #[serde(borrow)]
    before: Option<Row<'a>>,
    #[serde(borrow)]
    after: Option<Row<'a>>,
    #[serde(borrow)]
    source: Option<Source<'a>>,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    before: Option<Row<'a>>,
    #[serde(borrow)]
    after: Option<Row<'a>>,
    #[serde(borrow)]
    source: Option<Source<'a>>,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Row<'a> {
    id: Option<i64>,
    customer_id: Option<i64>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    total: Option<RawDecimal<'a>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    lsn: Option<i64>,
    #[serde(borrow)]
    sequence: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EnvelopeSchema<'a> {
    #[serde(borrow, default)]
    fields: Vec<FieldSchema<'a>>,
}

#[derive(Deserialize)]
struct FieldSchema<'a> {
    #[serde(borrow)]
    field: Cow<'a, str>,
    #[serde(borrow, default)]
    fields: Option<Vec<ColumnSchema<'a>>>,
}

#[derive(Deserialize)]
struct ColumnSchema<'a> {
    #[serde(borrow)]
    field: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parameters: Option<DecimalParameters<'a>>,
}

#[derive(Deserialize)]
struct DecimalParameters<'a> {
    #[serde(borrow)]
    scale: Option<Cow<'a, str>>,
}

/// A `total` as it appears in JSON, before the schema says how to read it.
#[derive(Debug)]
enum RawDecimal<'a> {
    Text(Cow<'a, str>),
    Number(f64),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawDecimal<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawDecimal<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal as a base64 string, a decimal string or a number")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawDecimal::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawDecimal::Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawDecimal::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawDecimal::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawDecimal::Number(v as f64))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(json: &str) -> ChangeEvent {
        match decode_change(Some(json.as_bytes())) {
            Ok(Decoded::Change(event)) => event,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    const SCHEMA: &str = r#"{"type":"struct","fields":[
        {"type":"struct","fields":[{"type":"int64","optional":false,"default":0,"field":"id"},
          {"type":"int64","optional":false,"field":"customer_id"},
          {"type":"string","optional":false,"default":"NEW","field":"status"},
          {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,
           "parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"total"}],
         "optional":true,"name":"dbserver1.public.orders.Value","field":"before"},
        {"type":"struct","fields":[{"type":"int64","optional":false,"default":0,"field":"id"},
          {"type":"int64","optional":false,"field":"customer_id"},
          {"type":"string","optional":false,"default":"NEW","field":"status"},
          {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,
           "parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"total"}],
         "optional":true,"name":"dbserver1.public.orders.Value","field":"after"},
        {"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},
          {"type":"int64","optional":true,"field":"lsn"}],"optional":false,
         "name":"io.debezium.connector.postgresql.Source","field":"source"},
        {"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],
         "optional":true,"name":"event.block","version":1,"field":"transaction"},
        {"type":"string","optional":false,"field":"op"},
        {"type":"int64","optional":true,"field":"ts_ms"}],
      "optional":false,"name":"dbserver1.public.orders.Envelope","version":2}"#;

    const SOURCE: &str = r#"{"version":"3.6.1.Final","connector":"postgresql","name":"dbserver1",
        "ts_ms":1732376400000,"snapshot":"false","db":"playground",
        "sequence":"[\"22910216\",\"22910504\"]","ts_us":1732376400000000,"ts_ns":1732376400000000000,
        "schema":"public","table":"orders","txId":771,"lsn":22910504,"xmin":null}"#;

    fn with_schema(payload: &str) -> String {
        format!(r#"{{"schema":{SCHEMA},"payload":{payload}}}"#)
    }

    #[test]
    fn a_create_with_schema_and_a_connect_decimal() {
        let payload = format!(
            r#"{{"before":null,"after":{{"id":42,"customer_id":7,"status":"NEW","total":"BM4=",
            "currency":"EUR","created_at":"2026-11-23T15:40:00.123456Z"}},"source":{SOURCE},
            "transaction":null,"op":"c","ts_ms":1732376400001}}"#
        );
        let event = change(&with_schema(&payload));
        assert_eq!(event.order_id, 42);
        assert_eq!(event.op, Op::Create);
        assert_eq!(
            event.position,
            Position::Sequence {
                last_commit: Some(22910216),
                lsn: 22910504
            }
        );
        assert_eq!(
            event.after,
            Some(OrderRow {
                customer_id: 7,
                status: "NEW".into(),
                total: Cents(1230)
            })
        );
    }

    #[test]
    fn the_same_create_without_schema() {
        let payload = format!(
            r#"{{"before":null,"after":{{"id":42,"customer_id":7,"status":"NEW","total":"BM4="}},
            "source":{SOURCE},"op":"c"}}"#
        );
        assert_eq!(change(&payload).after.map(|r| r.total), Some(Cents(1230)));
    }

    #[test]
    fn an_update_without_before_image() {
        let payload = format!(
            r#"{{"before":null,"after":{{"id":42,"customer_id":8,"status":"PAID","total":"AMg="}},
            "source":{SOURCE},"op":"u"}}"#
        );
        let event = change(&with_schema(&payload));
        assert_eq!(event.op, Op::Update);
        assert_eq!(
            event.after.map(|r| (r.customer_id, r.total)),
            Some((8, Cents(200)))
        );
    }

    #[test]
    fn a_delete_with_only_the_key_in_before() {
        let payload = format!(
            r#"{{"before":{{"id":42,"customer_id":0,"status":null,"total":null}},"after":null,
            "source":{SOURCE},"op":"d"}}"#
        );
        let event = change(&with_schema(&payload));
        assert_eq!(
            (event.order_id, event.op, event.after),
            (42, Op::Delete, None)
        );
    }

    #[test]
    fn tombstones_are_recognised() {
        assert!(matches!(decode_change(None), Ok(Decoded::Tombstone)));
        assert!(matches!(decode_change(Some(b"")), Ok(Decoded::Tombstone)));
        assert!(matches!(
            decode_change(Some(b"null")),
            Ok(Decoded::Tombstone)
        ));
        let wrapped = format!(r#"{{"schema":{SCHEMA},"payload":null}}"#);
        assert!(matches!(
            decode_change(Some(wrapped.as_bytes())),
            Ok(Decoded::Tombstone)
        ));
    }

    #[test]
    fn a_snapshot_read() {
        let payload = format!(
            r#"{{"before":null,"after":{{"id":1,"customer_id":2,"status":"SHIPPED","total":"AA=="}},
            "source":{SOURCE},"op":"r"}}"#
        );
        let event = change(&payload);
        assert_eq!(event.op, Op::Read);
        assert_eq!(event.after.map(|r| r.total), Some(Cents(0)));
    }

    #[test]
    fn string_and_double_decimal_modes() {
        let as_string = format!(
            r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"12.30"}},"source":{SOURCE},"op":"c"}}"#
        );
        assert_eq!(change(&as_string).after.map(|r| r.total), Some(Cents(1230)));
        let as_double = format!(
            r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":12.3}},"source":{SOURCE},"op":"c"}}"#
        );
        assert_eq!(change(&as_double).after.map(|r| r.total), Some(Cents(1230)));
        let string_schema = SCHEMA.replace(
            r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,
           "parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"total"}"#,
            r#"{"type":"string","optional":false,"field":"total"}"#,
        );
        let text = format!(
            r#"{{"schema":{string_schema},"payload":{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"1234"}},"source":{SOURCE},"op":"c"}}}}"#
        );
        assert_eq!(change(&text).after.map(|r| r.total), Some(Cents(123400)));
    }

    #[test]
    fn the_schema_scale_is_used() {
        let scale3 = SCHEMA.replace(r#""scale":"2""#, r#""scale":"3""#);
        // 12300 at scale 3 = 12.300; base64 of 30 0C is "MAw=".
        let json = format!(
            r#"{{"schema":{scale3},"payload":{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"MAw="}},"source":{SOURCE},"op":"c"}}}}"#
        );
        assert_eq!(change(&json).after.map(|r| r.total), Some(Cents(1230)));
    }

    #[test]
    fn poison_records_are_errors() {
        let cases = [
            ("not json".to_string(), "JSON"),
            (r#"{"after":{"id":1}}"#.to_string(), "op"),
            (
                format!(
                    r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"BM4="}},"source":{SOURCE},"op":"t"}}"#
                ),
                "unknown op",
            ),
            (
                r#"{"after":{"id":1,"customer_id":2,"status":"NEW","total":"BM4="},"op":"c"}"#
                    .to_string(),
                "lsn",
            ),
            (
                format!(
                    r#"{{"after":{{"id":1,"status":"NEW","total":"BM4="}},"source":{SOURCE},"op":"c"}}"#
                ),
                "customer_id",
            ),
            (
                format!(
                    r#"{{"after":{{"id":1,"customer_id":"x","status":"NEW","total":"BM4="}},"source":{SOURCE},"op":"c"}}"#
                ),
                "JSON",
            ),
            (
                format!(
                    r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"??"}},"source":{SOURCE},"op":"c"}}"#
                ),
                "total",
            ),
            (
                format!(r#"{{"before":null,"after":null,"source":{SOURCE},"op":"d"}}"#),
                "before",
            ),
        ];
        for (json, expected) in cases {
            let error = decode_change(Some(json.as_bytes()))
                .expect_err(&json)
                .to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let int_total = SCHEMA.replace(r#""type":"bytes""#, r#""type":"int64""#);
        let json = format!(
            r#"{{"schema":{int_total},"payload":{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":5}},"source":{SOURCE},"op":"c"}}}}"#
        );
        let error = decode_change(Some(json.as_bytes()))
            .expect_err("int64 total")
            .to_string();
        assert!(error.contains("schema does not fit"), "{error}");
    }

    #[test]
    fn the_caching_decoder_agrees_with_the_plain_one() {
        let mut decoder = ChangeDecoder::new();
        let scale3 = SCHEMA.replace(r#""scale":"2""#, r#""scale":"3""#);
        let payload = |total: &str| {
            format!(
                r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"{total}"}},"source":{SOURCE},"op":"c"}}"#
            )
        };
        let records = [
            with_schema(&payload("BM4=")),
            with_schema(&payload("AMg=")),
            format!(r#"{{"schema":{scale3},"payload":{}}}"#, payload("MAw=")),
            format!(r#"{{"schema":{scale3},"payload":{}}}"#, payload("MAw=")),
            payload("BM4="),
            with_schema(&payload("BM4=")),
            format!(r#"{{"schema":{SCHEMA},"payload":null}}"#),
            with_schema(r#"{"op":"x"}"#),
        ];
        for record in &records {
            let plain = format!("{:?}", decode_change(Some(record.as_bytes())));
            let cached = format!("{:?}", decoder.decode(Some(record.as_bytes())));
            assert_eq!(plain, cached, "{record}");
        }
        assert_eq!(
            decoder.last_total_kind,
            Some(TotalKind::Decimal { scale: 2 })
        );
    }

    #[test]
    fn a_schema_and_a_payload_apart_decode_as_the_record_does() {
        let mut decoder = ChangeDecoder::new();
        let scale3 = SCHEMA.replace(r#""scale":"2""#, r#""scale":"3""#);
        let payload = format!(
            r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"MAw="}},"source":{SOURCE},"op":"c"}}"#
        );
        for schema in [SCHEMA.to_string(), scale3.clone(), scale3] {
            let whole = format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
            let apart = decoder.decode_parts(
                schema.as_bytes(),
                &mut serde_json::Deserializer::from_slice(payload.as_bytes()),
            );
            assert_eq!(
                format!("{apart:?}"),
                format!("{:?}", decode_change(Some(whole.as_bytes())))
            );
        }
        let null = decoder.decode_parts(
            SCHEMA.as_bytes(),
            &mut serde_json::Deserializer::from_slice(b"null"),
        );
        assert!(matches!(null, Ok(Decoded::Tombstone)), "{null:?}");
    }

    #[test]
    fn connect_decimals_round_trip() {
        assert_eq!(encode_connect_decimal(Cents(1230)), "BM4=");
        assert_eq!(encode_connect_decimal(Cents(-1)), "/w==");
        assert_eq!(encode_connect_decimal(Cents(0)), "AA==");
        for cents in [
            0,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            1230,
            9_999_999_999_999,
            i64::MAX,
            i64::MIN,
        ] {
            let text = encode_connect_decimal(Cents(cents));
            assert_eq!(
                decode_connect_decimal(&text, 2).ok(),
                Some(Cents(cents)),
                "{cents} -> {text}"
            );
        }
    }

    /// An incremental snapshot read (Debezium 3.6.1, conformance/debezium/incremental_snapshot/):
    /// no `source.lsn`, the high watermark's LSN twice in `source.sequence`.
    #[test]
    fn an_incremental_read_is_positioned_at_its_high_watermark() {
        let event = change(
            r#"{"before":null,"after":{"id":42,"customer_id":7,"status":"NEW","total":"12.30"},
               "source":{"snapshot":"incremental","lsn":null,"txId":null,
                         "sequence":"[\"41043784\",\"41043784\"]"},"op":"r"}"#,
        );
        assert_eq!(
            event.position,
            Position::Sequence {
                last_commit: Some(41043784),
                lsn: 41043784
            }
        );
        let streamed = change(
            r#"{"before":null,"after":{"id":42,"customer_id":7,"status":"NEW","total":"12.30"},
               "source":{"lsn":41042496,"sequence":"[null,\"41042496\"]"},"op":"u"}"#,
        );
        assert_eq!(
            streamed.position,
            Position::Sequence {
                last_commit: None,
                lsn: 41042496
            }
        );
        let neither = decode_change(Some(
            br#"{"after":{"id":42,"customer_id":7,"status":"NEW","total":"1.00"},"source":{"lsn":null},"op":"r"}"#,
        ));
        assert!(
            matches!(neither, Err(DecodeError::Missing("source.lsn"))),
            "{neither:?}"
        );
        let garbled = decode_change(Some(
            br#"{"after":{"id":42,"customer_id":7,"status":"NEW","total":"1.00"},"source":{"lsn":5,"sequence":"[1]"},"op":"u"}"#,
        ));
        assert!(
            matches!(garbled, Err(DecodeError::Invalid(_))),
            "{garbled:?}"
        );
    }
}
