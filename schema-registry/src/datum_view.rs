//! An Avro datum read as the JSON payload `JsonConverter` would have written, without building
//! that JSON: a serde `Deserializer` over the datum's bytes, guided by its writer schema. The
//! fast path of a reader of Avro records.
//!
//! ```text
//! writer schema ──DatumView::new (once per schema id)──> plan: per field its Avro type
//! 00 <id> <datum> ──DatumView::read::<T>──> T (any serde type that reads the JSON payload:
//!                                              projections' change event, serde_json::Value)
//! ```
//!
//! [`crate::decoder::decode_datum`] is the reference: `apache_avro` decodes the datum into its
//! value tree, [`crate::avro_json::payload_json`] makes a `serde_json::Value` of it, and the
//! reader of JSON records then parses that again. Here the reader's own `Deserialize` reads the
//! datum directly: strings borrowed from the record's bytes, fields it does not want skipped.
//! Written by hand because `apache_avro`'s own serde reader gives bytes as bytes and unions as
//! enums, while a reader of Connect JSON wants what [`crate::avro_json`] says:
//!
//! ```text
//! Avro                               what the Deserialize sees
//! ["null", T]                        none, or T's value (an Option, or null in a Value)
//! record                             a map, field names as in the schema, in its order
//! map / array                        a map / a sequence
//! bytes, fixed, decimal              base64 text (as JsonConverter writes bytes)
//! float, double                      a number; NaN and the infinities as text
//! int, long (and their logical types) an integer
//! enum                               its symbol
//! ```
//!
//! The binary encoding read here is the one [`crate::transcode`] writes (zig-zag varints,
//! length-prefixed bytes, blocks for arrays and maps; a block may give its count negated and
//! its size in bytes, as the spec allows). Every byte must be used: a datum with bytes left
//! over is an error, as in the reference.

use std::collections::HashMap;
use std::fmt;

use apache_avro::schema::{InnerDecimalSchema, Name, ResolvedSchema, UuidSchema};
use apache_avro::Schema;
use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// How to read the datums of one writer schema: made once per schema.
#[derive(Debug, Clone)]
pub struct DatumView {
    root: Node,
}

/// Why a datum could not be read (or a schema has no view).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ViewError(String);

impl de::Error for ViewError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ViewError(message.to_string())
    }
}

#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    /// int, date, time-millis.
    Int,
    /// long, time-micros, the timestamps.
    Long,
    Float,
    Double,
    String,
    /// bytes, decimal on bytes, big-decimal, uuid on bytes: base64.
    Bytes,
    /// fixed, decimal on fixed, uuid on fixed, duration: base64 of `size` bytes.
    Fixed(usize),
    Enum(Vec<String>),
    Array(Box<Node>),
    Map(Box<Node>),
    Union(Vec<Node>),
    Record(Vec<(String, Node)>),
}

/// Named types deeper than this are taken for a recursive schema: no view (the reference
/// path reads such datums).
const MAX_DEPTH: usize = 64;

impl DatumView {
    /// The view of datums written with `schema`.
    pub fn new(schema: &Schema) -> Result<Self, ViewError> {
        let resolved = ResolvedSchema::new(schema).map_err(|e| ViewError(e.to_string()))?;
        Ok(DatumView {
            root: node(schema, resolved.get_names(), 0)?,
        })
    }

    /// `datum` (the bytes after the 5-byte header) read as a `T`.
    pub fn read<'de, T: Deserialize<'de>>(&self, datum: &'de [u8]) -> Result<T, ViewError> {
        let mut input = Input { bytes: datum };
        let value = T::deserialize(ValueReader {
            node: &self.root,
            input: &mut input,
        })?;
        if !input.bytes.is_empty() {
            return Err(ViewError(format!(
                "{} bytes left after the datum",
                input.bytes.len()
            )));
        }
        Ok(value)
    }

    /// A deserializer of `datum` for a caller that brings its own `Deserialize` seed; the
    /// bytes left over are not checked (use [`Self::read`] where it can be).
    pub fn deserializer<'v, 'de>(&'v self, input: &'v mut Input<'de>) -> ValueReader<'v, 'de> {
        ValueReader {
            node: &self.root,
            input,
        }
    }
}

fn node(schema: &Schema, names: &HashMap<Name, &Schema>, depth: usize) -> Result<Node, ViewError> {
    if depth > MAX_DEPTH {
        return Err(ViewError(
            "the schema nests too deep (a recursive type?)".into(),
        ));
    }
    let inner = |schema: &Schema| node(schema, names, depth + 1);
    Ok(match schema {
        Schema::Null => Node::Null,
        Schema::Boolean => Node::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Node::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Node::Long,
        Schema::Float => Node::Float,
        Schema::Double => Node::Double,
        Schema::String | Schema::Uuid(UuidSchema::String) => Node::String,
        Schema::Bytes | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => Node::Bytes,
        Schema::Decimal(decimal) => match &decimal.inner {
            InnerDecimalSchema::Bytes => Node::Bytes,
            InnerDecimalSchema::Fixed(fixed) => Node::Fixed(fixed.size),
        },
        Schema::Fixed(fixed) | Schema::Uuid(UuidSchema::Fixed(fixed)) | Schema::Duration(fixed) => {
            Node::Fixed(fixed.size)
        }
        Schema::Enum(e) => Node::Enum(e.symbols.clone()),
        Schema::Array(array) => Node::Array(Box::new(inner(&array.items)?)),
        Schema::Map(map) => Node::Map(Box::new(inner(&map.types)?)),
        Schema::Union(union) => Node::Union(
            union
                .variants()
                .iter()
                .map(inner)
                .collect::<Result<_, _>>()?,
        ),
        Schema::Record(record) => Node::Record(
            record
                .fields
                .iter()
                .map(|field| Ok((field.name.clone(), inner(&field.schema)?)))
                .collect::<Result<_, ViewError>>()?,
        ),
        Schema::Ref { name } => {
            let named = names.get(name).ok_or_else(|| {
                ViewError(format!("the schema names {name:?} but defines it nowhere"))
            })?;
            inner(named)?
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Reading the binary encoding
// ---------------------------------------------------------------------------------------------

/// The datum's bytes not read yet.
#[derive(Debug)]
pub struct Input<'de> {
    bytes: &'de [u8],
}

impl<'de> Input<'de> {
    pub fn new(bytes: &'de [u8]) -> Self {
        Input { bytes }
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn long(&mut self) -> Result<i64, ViewError> {
        let mut z: u64 = 0;
        for (i, &byte) in self.bytes.iter().enumerate().take(10) {
            z |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(ViewError(
            "the datum ends inside a number (or a number longer than 10 bytes)".into(),
        ))
    }

    fn int(&mut self) -> Result<i32, ViewError> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| ViewError(format!("{n} is out of range for an Avro int")))
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8], ViewError> {
        if n > self.bytes.len() {
            return Err(ViewError(format!(
                "the datum ends {} bytes before the {n} it announced",
                n - self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn length_prefixed(&mut self) -> Result<&'de [u8], ViewError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| ViewError(format!("a negative length {n}")))?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'de str, ViewError> {
        std::str::from_utf8(self.length_prefixed()?)
            .map_err(|e| ViewError(format!("a string that is not UTF-8: {e}")))
    }

    fn four(&mut self) -> Result<[u8; 4], ViewError> {
        let bytes = self.take(4)?;
        bytes
            .try_into()
            .map_err(|_| ViewError("a float of the wrong size".into()))
    }

    /// The count of the next block of an array or map (0: the end).
    fn block_count(&mut self) -> Result<u64, ViewError> {
        let count = self.long()?;
        if count < 0 {
            self.long()?; // the block's size in bytes, for readers that skip it
        }
        Ok(count.unsigned_abs())
    }
}

/// A float or double as the JSON payload has it: a number, or text for NaN and infinities.
fn visit_float<'de, V: Visitor<'de>>(f: f64, visitor: V) -> Result<V::Value, ViewError> {
    if f.is_finite() {
        visitor.visit_f64(f)
    } else {
        visitor.visit_string(f.to_string())
    }
}

/// One value of the datum: its node and the input positioned at it (a serde `Deserializer`).
pub struct ValueReader<'v, 'de> {
    node: &'v Node,
    input: &'v mut Input<'de>,
}

impl<'de> Deserializer<'de> for ValueReader<'_, 'de> {
    type Error = ViewError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ViewError> {
        let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match self.node {
            Node::Null => visitor.visit_unit(),
            Node::Boolean => match self.input.take(1)? {
                [0] => visitor.visit_bool(false),
                [1] => visitor.visit_bool(true),
                other => Err(ViewError(format!("{:#04x} is not a boolean", other[0]))),
            },
            Node::Int => visitor.visit_i64(i64::from(self.input.int()?)),
            Node::Long => visitor.visit_i64(self.input.long()?),
            Node::Float => {
                let f = f32::from_le_bytes(self.input.four()?);
                // As the reference: the shortest decimal that reads back as the same float.
                visit_float(
                    f.to_string().parse::<f64>().unwrap_or(f64::from(f)),
                    visitor,
                )
            }
            Node::Double => {
                let bytes = self.input.take(8)?;
                let mut eight = [0u8; 8];
                eight.copy_from_slice(bytes);
                visit_float(f64::from_le_bytes(eight), visitor)
            }
            Node::String => visitor.visit_borrowed_str(self.input.str()?),
            Node::Bytes => visitor.visit_string(base64(self.input.length_prefixed()?)),
            Node::Fixed(size) => visitor.visit_string(base64(self.input.take(*size)?)),
            Node::Enum(symbols) => {
                let index = self.input.int()?;
                let symbol = usize::try_from(index)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| ViewError(format!("enum index {index} of {}", symbols.len())))?;
                visitor.visit_str(symbol)
            }
            Node::Union(branches) => {
                let index = self.input.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| {
                        ViewError(format!("union branch {index} of {}", branches.len()))
                    })?;
                ValueReader {
                    node: branch,
                    input: self.input,
                }
                .deserialize_any(visitor)
            }
            Node::Record(fields) => visitor.visit_map(Fields {
                fields,
                next: 0,
                input: self.input,
            }),
            Node::Array(item) => visitor.visit_seq(Block {
                node: item,
                left: 0,
                done: false,
                input: self.input,
            }),
            Node::Map(value) => visitor.visit_map(Block {
                node: value,
                left: 0,
                done: false,
                input: self.input,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ViewError> {
        match self.node {
            Node::Null => visitor.visit_none(),
            Node::Union(branches) => {
                let index = self.input.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| {
                        ViewError(format!("union branch {index} of {}", branches.len()))
                    })?;
                match branch {
                    Node::Null => visitor.visit_none(),
                    branch => visitor.visit_some(ValueReader {
                        node: branch,
                        input: self.input,
                    }),
                }
            }
            _ => visitor.visit_some(self),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A record's fields, in schema order.
struct Fields<'v, 'de> {
    fields: &'v [(String, Node)],
    next: usize,
    input: &'v mut Input<'de>,
}

impl<'de> MapAccess<'de> for Fields<'_, 'de> {
    type Error = ViewError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ViewError> {
        match self.fields.get(self.next) {
            Some((name, _)) => seed
                .deserialize(de::value::StrDeserializer::<ViewError>::new(name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, ViewError> {
        let (_, node) = self
            .fields
            .get(self.next)
            .ok_or_else(|| ViewError("a value asked for after the last field".into()))?;
        self.next += 1;
        seed.deserialize(ValueReader {
            node,
            input: self.input,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len() - self.next)
    }
}

/// The items of an array, or the entries of a map: blocks of a count and that many items.
struct Block<'v, 'de> {
    node: &'v Node,
    left: u64,
    done: bool,
    input: &'v mut Input<'de>,
}

impl Block<'_, '_> {
    /// True when another item follows, counted as taken (reading the next block's count when
    /// one ends).
    fn take_item(&mut self) -> Result<bool, ViewError> {
        while self.left == 0 && !self.done {
            self.left = self.input.block_count()?;
            self.done = self.left == 0;
        }
        if self.done {
            return Ok(false);
        }
        self.left -= 1;
        Ok(true)
    }
}

impl<'de> SeqAccess<'de> for Block<'_, 'de> {
    type Error = ViewError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, ViewError> {
        if !self.take_item()? {
            return Ok(None);
        }
        seed.deserialize(ValueReader {
            node: self.node,
            input: self.input,
        })
        .map(Some)
    }
}

impl<'de> MapAccess<'de> for Block<'_, 'de> {
    type Error = ViewError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ViewError> {
        if !self.take_item()? {
            return Ok(None);
        }
        let key = self.input.str()?;
        seed.deserialize(de::value::BorrowedStrDeserializer::<ViewError>::new(key))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, ViewError> {
        seed.deserialize(ValueReader {
            node: self.node,
            input: self.input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_json::payload_json;
    use crate::connect_avro::{avro_datum, avro_schema, encode_datum};
    use serde_json::{json, Value as Json};

    /// A Connect schema of every kind, and a payload of it, encoded by the reference path.
    fn every_kind() -> (Schema, Vec<u8>) {
        let field = |name: &str, mut schema: Json| {
            schema["field"] = json!(name);
            schema
        };
        let connect = json!({"type":"struct","name":"t.public.every.Value","optional":false,"fields":[
            field("id", json!({"type":"int64","optional":false})),
            field("small", json!({"type":"int16","optional":true})),
            field("real", json!({"type":"float","optional":true})),
            field("dbl", json!({"type":"double","optional":true})),
            field("inf", json!({"type":"double","optional":false})),
            field("flag", json!({"type":"boolean","optional":false,"default":false})),
            field("note", json!({"type":"string","optional":true,"default":"none"})),
            field("gone", json!({"type":"string","optional":true})),
            field("price", json!({"type":"bytes","optional":true,"version":1,
                "name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}})),
            field("day", json!({"type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date"})),
            field("at", json!({"type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp"})),
            field("tags", json!({"type":"array","optional":true,"items":{"type":"string","optional":true}})),
            field("attrs", json!({"type":"map","optional":true,"keys":{"type":"string","optional":false},"values":{"type":"int64","optional":true}})),
            field("by_id", json!({"type":"map","optional":true,"keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false}})),
            field("point", json!({"type":"struct","optional":true,"name":"t.Point","fields":[field("x", json!({"type":"double","optional":false}))]})),
            field("again", json!({"type":"struct","optional":true,"name":"t.Point","fields":[field("x", json!({"type":"double","optional":false}))]})),
        ]});
        let payload = json!({"id":-300,"small":12,"real":0.1,"dbl":2.5,"inf":"-Infinity","flag":true,
            "note":"héllo","gone":null,"price":"BM4=","day":19000,"at":1700000000000i64,
            "tags":["a",null,"b"],"attrs":{"k":1,"j":null},"by_id":[[1,"one"],[2,"two"]],"point":{"x":1.5},"again":null});
        let schema = avro_schema(&connect).unwrap().schema;
        let bytes = encode_datum(&schema, avro_datum(&connect, &payload).unwrap()).unwrap();
        (schema, bytes)
    }

    fn reference(schema: &Schema, bytes: &[u8]) -> Json {
        let value = apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .build()
            .and_then(|reader| reader.read_value(&mut &bytes[..]))
            .unwrap();
        payload_json(&value)
    }

    #[test]
    fn a_datum_reads_as_the_reference_json_payload() {
        let (schema, bytes) = every_kind();
        let view = DatumView::new(&schema).unwrap();
        let ours: Json = view.read(&bytes).unwrap();
        assert_eq!(ours, reference(&schema, &bytes));
        assert_eq!(ours["real"], json!(0.1), "the float's shortest decimal");
        assert_eq!(ours["inf"], json!("-inf"), "as the reference writes it");
    }

    #[test]
    fn a_typed_reader_borrows_its_strings_and_skips_what_it_does_not_want() {
        #[derive(Deserialize)]
        struct Wanted<'a> {
            id: i64,
            note: Option<&'a str>,
            gone: Option<String>,
            price: Option<String>,
        }
        let (schema, bytes) = every_kind();
        let wanted: Wanted = DatumView::new(&schema).unwrap().read(&bytes).unwrap();
        assert_eq!(wanted.id, -300);
        assert_eq!(
            wanted.note,
            Some("héllo"),
            "borrowed from the datum's bytes"
        );
        assert_eq!(wanted.gone, None);
        assert_eq!(wanted.price.as_deref(), Some("BM4="));
    }

    #[test]
    fn short_long_and_bad_datums_are_errors() {
        let (schema, bytes) = every_kind();
        let view = DatumView::new(&schema).unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(view.read::<Json>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            view.read::<Json>(&longer).unwrap_err().to_string(),
            "1 bytes left after the datum"
        );
        let record = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"u","type":["null","long"]}]}"#,
        )
        .unwrap();
        let view = DatumView::new(&record).unwrap();
        assert!(view
            .read::<Json>(&[0x04])
            .unwrap_err()
            .to_string()
            .contains("union branch 2"));
        assert_eq!(view.read::<Json>(&[0x02, 0x54]).unwrap(), json!({"u": 42}));
    }

    #[test]
    fn blocks_with_a_negative_count_carry_their_size() {
        let schema = Schema::parse_str(r#"{"type":"array","items":"long"}"#).unwrap();
        let view = DatumView::new(&schema).unwrap();
        // -2 items, 2 bytes, then 1 and 2, then one more block of 1 item (3), then the end.
        let bytes = [0x03, 0x04, 0x02, 0x04, 0x02, 0x06, 0x00];
        assert_eq!(view.read::<Json>(&bytes).unwrap(), json!([1, 2, 3]));
    }
}
