//! A Connect payload's JSON bytes -> its Avro binary datum, in one pass, with no tree in
//! between: the fast path of [`crate::encoder`].
//!
//! ```text
//! Connect schema ──DatumPlan::new (once per schema)──> plan: per field its Avro encoding
//! payload bytes ──serde_json tokens──> plan ──> Avro binary (zig-zag varints, length-prefixed
//!                                                 strings, union indexes, array blocks)
//! ```
//!
//! [`crate::connect_avro`] says what a payload becomes ([`crate::connect_avro::avro_datum`]) and
//! is the reference: parse the payload into a `serde_json::Value`, build `apache_avro`'s value
//! tree from it, let `apache_avro` write the tree. That is three passes and a `String` per field
//! name per record, and it made `--format avro` half as fast as JSON. Here the payload's tokens
//! are written as they are read, guided by a plan made once from the Connect schema. Written by
//! hand because no crate encodes Avro from a stream of JSON tokens; the Avro binary encoding
//! itself is small (the spec's "Binary Encoding" section):
//!
//! ```text
//! int, long        zig-zag varint                   1 -> 02, -1 -> 01, 300 -> d8 04
//! float, double    4 / 8 bytes, little-endian
//! boolean          one byte, 0 or 1
//! string, bytes    length (long), then the bytes    "ab" -> 04 61 62
//! union            the branch's index (long), then the value: ["null", T]: 00 = null, 02 = T
//! record           the fields in schema order, nothing between them
//! array, map       a block: its count (long), the items (map: key string, value), then 00
//! ```
//!
//! The rules are [`crate::connect_avro`]'s, field for field: an optional field is a union with
//! null (null first, unless it has a default), a missing or null required field takes its
//! default, Decimal and bytes come as base64 text, NaN and infinities as strings, a map with
//! non-string keys as `[key, value]` pairs. A payload the plan cannot write (it does not fit
//! its schema, or it has a shape JsonConverter never writes, such as a repeated key) is an
//! error; the encoder then takes the reference path, which writes it or says precisely why not.
//! The unit tests check both paths give the same datum.

use std::fmt;

use base64::Engine;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

/// How the payload of one Connect schema becomes Avro binary: made once per schema.
#[derive(Debug)]
pub struct DatumPlan {
    root: Node,
}

/// Why a Connect schema has no plan (the reference path then handles its records).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no datum plan for this Connect schema: {0}")]
pub struct PlanError(String);

/// One value's encoding: its Avro type, the union branch written before it when it is
/// optional, and what a null (or missing field) becomes.
#[derive(Debug)]
struct Node {
    kind: Kind,
    /// The union index of the value branch (zig-zag: 0 -> `00`, 1 -> `02`), when optional.
    value_branch: Option<u8>,
    /// The bytes of a null: the null branch's index, or the encoded default of a required
    /// field; `None` for a required field without a default (a null is then an error).
    on_null: Option<Vec<u8>>,
}

#[derive(Debug)]
enum Kind {
    /// int8, int16, int32 (and Date, Time): an Avro int.
    Int,
    /// int64 (and Timestamp, Debezium's MicroTimestamp, ...): an Avro long.
    Long,
    Float,
    Double,
    Boolean,
    String,
    /// bytes, and Decimal (its unscaled value's two's-complement bytes): base64 in the JSON.
    Bytes,
    Record(Vec<Field>),
    Array(Box<Node>),
    /// A map with string keys: an Avro map.
    StringMap(Box<Node>),
    /// Any other map: JSON `[[key, value], ...]`, Avro an array of `MapEntry {key, value}`.
    PairMap(Box<Node>, Box<Node>),
}

#[derive(Debug)]
struct Field {
    /// The Connect field name: the key in the JSON payload (Avro's name may be adjusted; the
    /// binary encoding does not carry names).
    name: String,
    node: Node,
}

impl DatumPlan {
    /// The plan for payloads of `connect` (a Connect schema as `JsonConverter` writes it).
    pub fn new(connect: &Json) -> Result<Self, PlanError> {
        Ok(DatumPlan {
            root: node(connect, true)?,
        })
    }

    /// Appends the Avro datum of `payload` (JSON bytes) to `out`. On an error `out` may hold
    /// part of a datum: truncate it to its length before the call.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut tokens = serde_json::Deserializer::from_slice(payload);
        Write {
            node: &self.root,
            out,
        }
        .deserialize(&mut tokens)?;
        tokens.end()
    }
}

fn node(connect: &Json, allow_optional: bool) -> Result<Node, PlanError> {
    let kind = kind(connect)?;
    let optional = allow_optional
        && connect
            .get("optional")
            .and_then(Json::as_bool)
            .unwrap_or(false);
    let default = connect.get("default").filter(|d| !d.is_null());
    if optional {
        // ["null", T] unless the field has a default: then [T, "null"].
        let (null_branch, value_branch) = if default.is_none() { (0, 2) } else { (2, 0) };
        return Ok(Node {
            kind,
            value_branch: Some(value_branch),
            on_null: Some(vec![null_branch]),
        });
    }
    let mut node = Node {
        kind,
        value_branch: None,
        on_null: None,
    };
    if let Some(default) = default {
        // A required field left out (or null) takes its default: encoded once, here. A
        // default that does not fit leaves nulls to the reference path, which says why.
        node.on_null = encoded(&node, default);
    }
    Ok(node)
}

/// `value` written as `node` says.
fn encoded(node: &Node, value: &Json) -> Option<Vec<u8>> {
    let text = serde_json::to_vec(value).ok()?;
    let mut bytes = Vec::new();
    Write {
        node,
        out: &mut bytes,
    }
    .deserialize(&mut serde_json::Deserializer::from_slice(&text))
    .ok()?;
    Some(bytes)
}

fn kind(connect: &Json) -> Result<Kind, PlanError> {
    let of = |key: &str| {
        connect
            .get(key)
            .ok_or_else(|| PlanError(format!("no `{key}` in {connect}")))
    };
    let type_name = of("type")?
        .as_str()
        .ok_or_else(|| PlanError(format!("a `type` that is not text in {connect}")))?;
    Ok(match type_name {
        "int8" | "int16" | "int32" => Kind::Int,
        "int64" => Kind::Long,
        "float32" | "float" => Kind::Float,
        "float64" | "double" => Kind::Double,
        "boolean" => Kind::Boolean,
        "string" => Kind::String,
        "bytes" => Kind::Bytes,
        "struct" => {
            let fields = of("fields")?
                .as_array()
                .ok_or_else(|| PlanError("`fields` that is not an array".into()))?;
            Kind::Record(
                fields
                    .iter()
                    .map(|field| {
                        let name = field.get("field").and_then(Json::as_str).ok_or_else(|| {
                            PlanError(format!("a field without a name in {connect}"))
                        })?;
                        Ok(Field {
                            name: name.to_string(),
                            node: node(field, true)?,
                        })
                    })
                    .collect::<Result<_, PlanError>>()?,
            )
        }
        "array" => Kind::Array(Box::new(node(of("items")?, true)?)),
        "map" => {
            let (keys, values) = (of("keys")?, of("values")?);
            if keys.get("type").and_then(Json::as_str) == Some("string") {
                Kind::StringMap(Box::new(node(values, true)?))
            } else {
                Kind::PairMap(Box::new(node(keys, true)?), Box::new(node(values, true)?))
            }
        }
        other => return Err(PlanError(format!("unknown type `{other}`"))),
    })
}

// ---------------------------------------------------------------------------------------------
// Writing: a serde visitor per value, guided by its node
// ---------------------------------------------------------------------------------------------

fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Writes one JSON value as `node` says.
struct Write<'p, 'o> {
    node: &'p Node,
    out: &'o mut Vec<u8>,
}

impl Write<'_, '_> {
    fn branch(&mut self) {
        if let Some(branch) = self.node.value_branch {
            self.out.push(branch);
        }
    }

    fn number<E: de::Error>(mut self, n: f64) -> Result<(), E> {
        match self.node.kind {
            Kind::Float => {
                self.branch();
                self.out.extend_from_slice(&(n as f32).to_le_bytes());
            }
            Kind::Double => {
                self.branch();
                self.out.extend_from_slice(&n.to_le_bytes());
            }
            _ => return Err(self.unexpected("a number")),
        }
        Ok(())
    }

    fn unexpected<E: de::Error>(&self, what: &str) -> E {
        E::custom(format_args!(
            "{what} where the schema says {:?}",
            self.node.kind
        ))
    }
}

impl<'de> DeserializeSeed<'de> for Write<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, tokens: D) -> Result<(), D::Error> {
        tokens.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Write<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a value of Avro type {:?}", self.node.kind)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        match &self.node.on_null {
            Some(bytes) => {
                self.out.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(E::custom("null for a required field")),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(mut self, b: bool) -> Result<(), E> {
        if !matches!(self.node.kind, Kind::Boolean) {
            return Err(self.unexpected("a boolean"));
        }
        self.branch();
        self.out.push(u8::from(b));
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, n: i64) -> Result<(), E> {
        match self.node.kind {
            Kind::Int => {
                let n = i32::try_from(n).map_err(|_| E::custom("out of range for int32"))?;
                self.branch();
                write_long(self.out, i64::from(n));
            }
            Kind::Long => {
                self.branch();
                write_long(self.out, n);
            }
            Kind::Float | Kind::Double => return self.number(n as f64),
            _ => return Err(self.unexpected("an integer")),
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        match i64::try_from(n) {
            Ok(n) => self.visit_i64(n),
            Err(_) if matches!(self.node.kind, Kind::Float | Kind::Double) => self.number(n as f64),
            Err(_) => Err(E::custom("out of range for int64")),
        }
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        self.number(n)
    }

    fn visit_str<E: de::Error>(mut self, text: &str) -> Result<(), E> {
        match self.node.kind {
            Kind::String => {
                self.branch();
                write_bytes(self.out, text.as_bytes());
            }
            Kind::Bytes => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| E::custom(format_args!("not base64: {e}")))?;
                self.branch();
                write_bytes(self.out, &bytes);
            }
            // JsonConverter writes NaN and the infinities as text.
            Kind::Float | Kind::Double => {
                let n = text.parse::<f64>().map_err(|_| E::custom("not a number"))?;
                return self.number(n);
            }
            _ => return Err(self.unexpected("text")),
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        let mut block = Vec::new();
        let mut count = 0i64;
        match &self.node.kind {
            Kind::Array(item) => {
                while items
                    .next_element_seed(Write {
                        node: item,
                        out: &mut block,
                    })?
                    .is_some()
                {
                    count += 1;
                }
            }
            Kind::PairMap(key, value) => {
                while items
                    .next_element_seed(WritePair {
                        key,
                        value,
                        out: &mut block,
                    })?
                    .is_some()
                {
                    count += 1;
                }
            }
            _ => return Err(self.unexpected("an array")),
        }
        self.branch();
        write_block(self.out, count, &block);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut entries: A) -> Result<(), A::Error> {
        match &self.node.kind {
            Kind::Record(fields) => {
                self.branch();
                write_record(fields, &mut entries, self.out)
            }
            Kind::StringMap(value) => {
                let mut block = Vec::new();
                let mut count = 0i64;
                while let Some(key) = entries.next_key::<std::borrow::Cow<'de, str>>()? {
                    write_bytes(&mut block, key.as_bytes());
                    entries.next_value_seed(Write {
                        node: value,
                        out: &mut block,
                    })?;
                    count += 1;
                }
                self.branch();
                write_block(self.out, count, &block);
                Ok(())
            }
            _ => Err(self.unexpected("an object")),
        }
    }
}

/// One block of `count` items (none: just the end marker), then the end marker `00`.
fn write_block(out: &mut Vec<u8>, count: i64, items: &[u8]) {
    if count > 0 {
        write_long(out, count);
        out.extend_from_slice(items);
    }
    out.push(0);
}

/// A record's fields in schema order. JsonConverter writes them in that order, so each is
/// written as it comes; one that comes early waits in a buffer of its own until its turn, and
/// one that never comes is written as a null (its default, or the union's null branch).
fn write_record<'de, A: MapAccess<'de>>(
    fields: &[Field],
    entries: &mut A,
    out: &mut Vec<u8>,
) -> Result<(), A::Error> {
    let mut next = 0; // the first field not yet written
    let mut early: Vec<Option<Vec<u8>>> = Vec::new();
    while let Some(found) = entries.next_key_seed(FieldIndex { fields, hint: next })? {
        let Some(index) = found else {
            entries.next_value::<IgnoredAny>()?; // not in the schema: left out, as the reference does
            continue;
        };
        if index < next || early.get(index).is_some_and(Option::is_some) {
            return Err(de::Error::custom(format_args!(
                "the key `{}` twice",
                fields[index].name
            )));
        }
        if index == next {
            entries.next_value_seed(Write {
                node: &fields[index].node,
                out,
            })?;
            next += 1;
            while let Some(bytes) = early.get_mut(next).and_then(Option::take) {
                out.extend_from_slice(&bytes);
                next += 1;
            }
        } else {
            if early.is_empty() {
                early.resize_with(fields.len(), || None);
            }
            let mut bytes = Vec::new();
            entries.next_value_seed(Write {
                node: &fields[index].node,
                out: &mut bytes,
            })?;
            early[index] = Some(bytes);
        }
    }
    for (index, field) in fields.iter().enumerate().skip(next) {
        match early.get_mut(index).and_then(Option::take) {
            Some(bytes) => out.extend_from_slice(&bytes),
            None => match &field.node.on_null {
                Some(bytes) => out.extend_from_slice(bytes),
                None => {
                    return Err(de::Error::custom(format_args!(
                        "no value for the required field `{}`",
                        field.name
                    )))
                }
            },
        }
    }
    Ok(())
}

/// A JSON key -> the index of its field (`None`: not in the schema). `hint` is the field
/// expected next, checked first.
struct FieldIndex<'p> {
    fields: &'p [Field],
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, tokens: D) -> Result<Option<usize>, D::Error> {
        tokens.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        if self.fields.get(self.hint).is_some_and(|f| f.name == key) {
            return Ok(Some(self.hint));
        }
        Ok(self.fields.iter().position(|f| f.name == key))
    }
}

/// One `[key, value]` pair of a map with non-string keys: a `MapEntry` record.
struct WritePair<'p, 'o> {
    key: &'p Node,
    value: &'p Node,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for WritePair<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, tokens: D) -> Result<(), D::Error> {
        tokens.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for WritePair<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [key, value] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut pair: A) -> Result<(), A::Error> {
        let missing = || de::Error::custom("a map entry that is not a [key, value] pair");
        pair.next_element_seed(Write {
            node: self.key,
            out: self.out,
        })?
        .ok_or_else(missing)?;
        pair.next_element_seed(Write {
            node: self.value,
            out: self.out,
        })?
        .ok_or_else(missing)?;
        match pair.next_element::<IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(missing()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect_avro::{avro_datum, avro_schema, encode_datum};
    use apache_avro::types::Value as Avro;
    use proptest::prelude::*;
    use serde_json::json;

    /// The datum the reference path writes, decoded again; and ours, decoded the same way.
    fn both(connect: &Json, payload: &Json) -> (Avro, Avro, Vec<u8>, Vec<u8>) {
        let schema = avro_schema(connect).unwrap().schema;
        let reference = encode_datum(&schema, avro_datum(connect, payload).unwrap()).unwrap();
        let mut ours = Vec::new();
        DatumPlan::new(connect)
            .unwrap()
            .write(&serde_json::to_vec(payload).unwrap(), &mut ours)
            .unwrap();
        let decode = |bytes: &[u8]| {
            apache_avro::reader::datum::GenericDatumReader::builder(&schema)
                .build()
                .and_then(|reader| reader.read_value(&mut &bytes[..]))
                .unwrap_or_else(|e| panic!("{e}: {bytes:02x?}"))
        };
        (decode(&reference), decode(&ours), reference, ours)
    }

    fn field(name: &str, mut schema: Json) -> Json {
        schema["field"] = json!(name);
        schema
    }

    /// Every kind of Connect field the reader writes, optional and required, with defaults.
    fn every_kind() -> Json {
        let decimal = json!({"type":"bytes","optional":true,"version":1,
            "name":"org.apache.kafka.connect.data.Decimal",
            "parameters":{"scale":"2","connect.decimal.precision":"12"}});
        json!({"type":"struct","name":"t.public.every.Value","optional":false,"fields":[
            field("id", json!({"type":"int64","optional":false})),
            field("small", json!({"type":"int16","optional":true})),
            field("n", json!({"type":"int32","optional":false,"default":7})),
            field("real", json!({"type":"float","optional":true})),
            field("dbl", json!({"type":"double","optional":true})),
            field("flag", json!({"type":"boolean","optional":false,"default":false})),
            field("note", json!({"type":"string","optional":true,"default":"none"})),
            field("raw", json!({"type":"bytes","optional":true})),
            field("price", decimal),
            field("day", json!({"type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date","version":1})),
            field("tags", json!({"type":"array","optional":true,"items":{"type":"string","optional":true}})),
            field("attrs", json!({"type":"map","optional":true,"keys":{"type":"string","optional":false},"values":{"type":"int64","optional":true}})),
            field("by_id", json!({"type":"map","optional":true,"keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false}})),
            field("point", json!({"type":"struct","optional":true,"name":"io.debezium.data.geometry.Point","fields":[
                field("x", json!({"type":"double","optional":false})),
                field("y", json!({"type":"double","optional":false}))]})),
        ]})
    }

    #[test]
    fn a_full_row_is_written_as_the_reference_writes_it_byte_for_byte() {
        let payload = json!({"id":-300,"small":12,"n":1,"real":1.5,"dbl":"-Infinity","flag":true,
            "note":"héllo","raw":"AAEC","price":"BM4=","day":19000,"tags":["a",null,"b"],
            "attrs":{"k":1},"by_id":[[1,"one"],[2,"two"]],"point":{"x":1.0,"y":-2.5}});
        let (reference, ours, reference_bytes, our_bytes) = both(&every_kind(), &payload);
        assert_eq!(ours, reference);
        assert_eq!(
            our_bytes, reference_bytes,
            "one map entry: the bytes are the same too"
        );
    }

    #[test]
    fn nulls_and_missing_fields_take_the_null_branch_or_the_default() {
        let payload = json!({"id":1,"small":null,"n":null,"tags":[]});
        let (reference, ours, reference_bytes, our_bytes) = both(&every_kind(), &payload);
        assert_eq!(ours, reference);
        assert_eq!(our_bytes, reference_bytes);
    }

    #[test]
    fn fields_out_of_order_and_unknown_keys_are_written_in_schema_order() {
        let connect = every_kind();
        let in_order = json!({"id":5,"note":"x","point":{"x":1.0,"y":2.0}});
        let scrambled = br#"{"point":{"y":2.0,"x":1.0},"extra":[1,{"a":2}],"note":"x","id":5}"#;
        let mut ours = Vec::new();
        DatumPlan::new(&connect)
            .unwrap()
            .write(scrambled, &mut ours)
            .unwrap();
        let (_, _, reference_bytes, _) = both(&connect, &in_order);
        assert_eq!(ours, reference_bytes);
    }

    #[test]
    fn what_does_not_fit_is_an_error_for_the_reference_path_to_explain() {
        let plan = DatumPlan::new(&every_kind()).unwrap();
        for payload in [
            &br#"{"small":1}"#[..],             // the required id is missing
            br#"{"id":"x"}"#,                   // text for a long
            br#"{"id":1,"n":3000000000}"#,      // out of range for int32
            br#"{"id":1,"raw":"not base64!"}"#, // bytes that are not base64
            br#"{"id":1,"id":2}"#,              // a repeated key
            br#"{"id":1,"by_id":[[1]]}"#,       // half a pair
            br#"{"id":1} trailing"#,            // not one JSON value
        ] {
            let mut out = Vec::new();
            assert!(
                plan.write(payload, &mut out).is_err(),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn a_schema_with_an_unknown_type_has_no_plan() {
        let connect = json!({"type":"struct","fields":[{"field":"x","type":"decimal128"}]});
        assert!(DatumPlan::new(&connect).is_err());
    }

    #[test]
    fn zig_zag_varints_are_the_specs() {
        for (n, bytes) in [
            (0i64, &[0x00][..]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            write_long(&mut out, n);
            assert_eq!(out, bytes, "{n}");
        }
    }

    fn optional_text() -> impl Strategy<Value = Json> {
        prop_oneof![Just(Json::Null), "[a-zé\"\\\\ ]{0,12}".prop_map(Json::from)]
    }

    proptest! {
        /// Any row of `every_kind`: our datum is the reference's, byte for byte.
        #[test]
        fn any_row_is_written_as_the_reference_writes_it(
            id in any::<i64>(),
            small in prop::option::of(any::<i16>()),
            n in prop::option::of(any::<i32>()),
            real in prop::option::of(any::<f32>()),
            dbl in prop::option::of(prop_oneof![any::<f64>().prop_map(Json::from), Just(json!("NaN")), Just(json!("-Infinity"))]),
            flag in prop::option::of(any::<bool>()),
            note in optional_text(),
            raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            tags in prop::option::of(prop::collection::vec(optional_text(), 0..5)),
            // At most one entry: the reference writes a map in its HashMap's order.
            attrs in prop::option::of(prop::collection::btree_map("[a-z]{1,3}", prop::option::of(any::<i64>()), 0..2)),
            by_id in prop::option::of(prop::collection::btree_map(any::<i32>(), "[a-z]{0,3}", 0..4)),
            point in prop::option::of((-1e9f64..1e9, -1e9f64..1e9)),
        ) {
            let b64 = |b: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
            let payload = json!({
                "id": id, "small": small, "n": n, "real": real.filter(|r| r.is_finite()),
                "dbl": dbl.filter(|d| d.as_f64().is_none_or(f64::is_finite)),
                "flag": flag, "note": note, "raw": raw.as_ref().map(b64),
                "price": raw.as_ref().filter(|r| !r.is_empty()).map(b64),
                "tags": tags, "attrs": attrs,
                "by_id": by_id.map(|m| m.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()),
                "point": point.map(|(x, y)| json!({"x": x, "y": y})),
            });
            let (_, _, reference_bytes, our_bytes) = both(&every_kind(), &payload);
            prop_assert_eq!(our_bytes, reference_bytes);
        }
    }
}
