//! Kafka Connect schemas -> Avro schemas, and Connect payloads -> Avro datums: the rules of
//! Kafka Connect's `AvroData` (what Debezium's records become under `AvroConverter`).
//!
//! The input is a record as `JsonConverter` writes it with `schemas.enable=true`
//! (`{"schema":{...},"payload":{...}}`), the form cdc-reader already produces for every kind of
//! record (changes, snapshot rows, heartbeats, transaction metadata, truncate, messages, and
//! the transforms' output), so one translation serves them all. The rules:
//!
//! ```text
//! Connect                                  Avro
//! struct dbserver1.public.orders.Envelope  {"type":"record","name":"Envelope","namespace":"dbserver1.public.orders",
//!                                           ..., "connect.name":"dbserver1.public.orders.Envelope"}
//! the same struct name again               the name alone ("Value"): Avro defines a name once
//! optional field, no default               ["null", T], "default": null
//! field with a default                     [T, "null"] (or T), "default": <it>, T has "connect.default"
//! int8 / int16 / int32 / int64             {"type":"int","connect.type":"int8"} / ...int16 / int / long
//! float32 / float64                        float / double
//! Decimal (scale 2, precision 12)          {"type":"bytes","scale":2,"precision":12,...,"logicalType":"decimal"}
//! Date / Time / Timestamp                  int date / int time-millis / long timestamp-millis
//! io.debezium.time.MicroTimestamp, ...     {"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTimestamp"}
//! map with string keys                     {"type":"map","values":V}
//! other maps                               array of io.confluent.connect.avro.MapEntry {key, value}
//! version, parameters, doc, default        connect.version, connect.parameters, connect.doc, connect.default
//! ```
//!
//! Names Avro refuses are adjusted ([`crate::names`]), for records and fields alike.

use std::collections::{HashMap, HashSet};

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use base64::Engine;
use serde_json::{json, Map, Value as Json};

use crate::names::{adjust_full_name, adjust_name, split_full_name};

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
/// `AvroData`'s precision for a Decimal whose Connect schema names none.
const DEFAULT_DECIMAL_PRECISION: u64 = 64;
const CONNECT_AVRO_NAMESPACE: &str = "io.confluent.connect.avro";

/// Why a Connect schema or payload has no Avro form.
#[derive(Debug, thiserror::Error)]
pub enum ConnectAvroError {
    #[error("the record is not JSON with a schema ({0}); --format avro needs the schemas (do not combine it with --no-schemas)")]
    NotConnectJson(String),
    #[error("unsupported Connect schema: {0}")]
    Schema(String),
    #[error("the payload does not fit its schema at `{path}`: {reason}")]
    Payload { path: String, reason: String },
    #[error("the Avro schema made from the Connect schema is invalid: {0}")]
    Avro(String),
}

/// The Avro schema of one record's key or value: its text (what is registered) and parsed.
#[derive(Debug, Clone)]
pub struct AvroRecordSchema {
    pub text: String,
    pub schema: Schema,
}

/// The Avro schema `AvroData` makes of a Connect schema (JSON as `JsonConverter` writes it).
pub fn avro_schema(connect: &Json) -> Result<AvroRecordSchema, ConnectAvroError> {
    let mut names = Names::default();
    let avro = names.schema_of(connect, None, true)?;
    let text = avro.to_string();
    let schema = Schema::parse_str(&text).map_err(|e| ConnectAvroError::Avro(e.to_string()))?;
    Ok(AvroRecordSchema { text, schema })
}

/// Splits `{"schema":..,"payload":..}` bytes into the schema and the payload.
pub fn split_connect_json(bytes: &[u8]) -> Result<(Json, Json), ConnectAvroError> {
    let mut record: Json = serde_json::from_slice(bytes)
        .map_err(|e| ConnectAvroError::NotConnectJson(e.to_string()))?;
    let (Some(schema), Some(payload)) = (
        record.get_mut("schema").map(Json::take),
        record.get_mut("payload").map(Json::take),
    ) else {
        return Err(ConnectAvroError::NotConnectJson(
            "no `schema` and `payload`".into(),
        ));
    };
    if schema.is_null() {
        return Err(ConnectAvroError::NotConnectJson(
            "the schema is null".into(),
        ));
    }
    Ok((schema, payload))
}

/// Writing names: which full names are defined already, the enclosing namespace, and the
/// counters for the default names of unnamed structs and map entries.
#[derive(Default)]
struct Names {
    defined: HashSet<String>,
    counters: HashMap<&'static str, usize>,
}

impl Names {
    /// The Avro type of `connect`, optional ones as a union with null (`null` first unless the
    /// schema has a default: then the default's type must come first).
    fn schema_of(
        &mut self,
        connect: &Json,
        namespace: Option<&str>,
        allow_optional: bool,
    ) -> Result<Json, ConnectAvroError> {
        let base = self.base_schema(connect, namespace)?;
        if allow_optional && is_optional(connect) {
            if connect.get("default").is_some_and(|d| !d.is_null()) {
                Ok(json!([base, "null"]))
            } else {
                Ok(json!(["null", base]))
            }
        } else {
            Ok(base)
        }
    }

    fn base_schema(
        &mut self,
        connect: &Json,
        namespace: Option<&str>,
    ) -> Result<Json, ConnectAvroError> {
        let kind = connect
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| ConnectAvroError::Schema(format!("no `type` in {connect}")))?;
        let name = connect.get("name").and_then(Json::as_str);
        match kind {
            "struct" => return self.record(connect, name, namespace),
            "array" => {
                let items = connect
                    .get("items")
                    .ok_or_else(|| ConnectAvroError::Schema("an array without `items`".into()))?;
                let mut out = Map::new();
                out.insert("type".into(), json!("array"));
                out.insert("items".into(), self.schema_of(items, namespace, true)?);
                connect_props(&mut out, connect);
                return Ok(Json::Object(out));
            }
            "map" => return self.map(connect, namespace),
            _ => {}
        }
        let mut out = Map::new();
        let avro_type = match kind {
            "int8" | "int16" | "int32" => "int",
            "int64" => "long",
            // JsonConverter writes FLOAT32 as "float" and FLOAT64 as "double" (Debezium's
            // records do); Connect's own type names are accepted too.
            "float32" | "float" => "float",
            "float64" | "double" => "double",
            "boolean" => "boolean",
            "string" => "string",
            "bytes" => "bytes",
            other => return Err(ConnectAvroError::Schema(format!("unknown type `{other}`"))),
        };
        out.insert("type".into(), json!(avro_type));
        if matches!(kind, "int8" | "int16") {
            out.insert("connect.type".into(), json!(kind));
        }
        let logical = match name {
            Some(DECIMAL) => {
                let scale = parameter(connect, "scale")
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| ConnectAvroError::Schema("a Decimal without a scale".into()))?;
                let precision = parameter(connect, "connect.decimal.precision")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(DEFAULT_DECIMAL_PRECISION)
                    .max(scale.max(1));
                out.insert("scale".into(), json!(scale));
                out.insert("precision".into(), json!(precision));
                Some("decimal")
            }
            Some(DATE) => Some("date"),
            Some(TIME) => Some("time-millis"),
            Some(TIMESTAMP) => Some("timestamp-millis"),
            _ => None,
        };
        connect_props(&mut out, connect);
        if let Some(logical) = logical {
            out.insert("logicalType".into(), json!(logical));
        }
        if out.len() == 1 {
            return Ok(json!(avro_type));
        }
        Ok(Json::Object(out))
    }

    fn record(
        &mut self,
        connect: &Json,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Json, ConnectAvroError> {
        let full = match name {
            Some(name) => adjust_full_name(name),
            None => self.default_name("ConnectDefault"),
        };
        if self.defined.contains(&full) {
            // Defined before: refer to it by name (relative to the enclosing namespace).
            let (short, own_namespace) = split_full_name(&full);
            return Ok(json!(if own_namespace == namespace {
                short
            } else {
                full.as_str()
            }));
        }
        self.defined.insert(full.clone());
        let (short, own_namespace) = split_full_name(&full);
        let mut out = Map::new();
        out.insert("type".into(), json!("record"));
        out.insert("name".into(), json!(short));
        if own_namespace != namespace {
            out.insert("namespace".into(), json!(own_namespace.unwrap_or("")));
        }
        let fields = connect
            .get("fields")
            .and_then(Json::as_array)
            .ok_or_else(|| ConnectAvroError::Schema(format!("struct {full} without `fields`")))?;
        let mut avro_fields = Vec::with_capacity(fields.len());
        for field in fields {
            let field_name = field.get("field").and_then(Json::as_str).ok_or_else(|| {
                ConnectAvroError::Schema(format!("a field of {full} has no name"))
            })?;
            let mut avro_field = Map::new();
            avro_field.insert("name".into(), json!(adjust_name(field_name)));
            avro_field.insert("type".into(), self.schema_of(field, own_namespace, true)?);
            match field.get("default") {
                Some(default) if !default.is_null() => {
                    avro_field.insert("default".into(), avro_default(field, default)?);
                }
                _ if is_optional(field) => {
                    avro_field.insert("default".into(), Json::Null);
                }
                _ => {}
            }
            avro_fields.push(Json::Object(avro_field));
        }
        out.insert("fields".into(), Json::Array(avro_fields));
        // A record's doc too goes into `connect.doc`, not Avro's `doc` (what Apicurio's
        // AvroConverter registers for Debezium's VariableScaleDecimal).
        if let Some(doc) = connect.get("doc") {
            out.insert("connect.doc".into(), doc.clone());
        }
        if let Some(version) = connect.get("version") {
            out.insert("connect.version".into(), version.clone());
        }
        if let Some(parameters) = connect.get("parameters") {
            out.insert("connect.parameters".into(), parameters.clone());
        }
        if let Some(name) = name {
            out.insert("connect.name".into(), json!(name));
        }
        Ok(Json::Object(out))
    }

    fn map(&mut self, connect: &Json, namespace: Option<&str>) -> Result<Json, ConnectAvroError> {
        let (Some(keys), Some(values)) = (connect.get("keys"), connect.get("values")) else {
            return Err(ConnectAvroError::Schema(
                "a map without `keys` and `values`".into(),
            ));
        };
        let mut out = Map::new();
        if is_string_map(connect) {
            out.insert("type".into(), json!("map"));
            out.insert("values".into(), self.schema_of(values, namespace, true)?);
        } else {
            let full = self.default_name("MapEntry");
            self.defined.insert(full.clone());
            let (short, _) = split_full_name(&full);
            let entry = json!({
                "type": "record", "name": short, "namespace": CONNECT_AVRO_NAMESPACE,
                "fields": [
                    {"name": "key", "type": self.schema_of(keys, Some(CONNECT_AVRO_NAMESPACE), true)?},
                    {"name": "value", "type": self.schema_of(values, Some(CONNECT_AVRO_NAMESPACE), true)?},
                ]
            });
            out.insert("type".into(), json!("array"));
            out.insert("items".into(), entry);
        }
        connect_props(&mut out, connect);
        Ok(Json::Object(out))
    }

    /// `io.confluent.connect.avro.ConnectDefault`, then `...ConnectDefault2`, ...
    fn default_name(&mut self, base: &'static str) -> String {
        let count = self.counters.entry(base).or_insert(0);
        *count += 1;
        let full = match *count {
            1 => format!("{CONNECT_AVRO_NAMESPACE}.{base}"),
            n => format!("{CONNECT_AVRO_NAMESPACE}.{base}{n}"),
        };
        full
    }
}

/// `connect.doc`, `connect.version`, `connect.parameters`, `connect.default`, `connect.name`,
/// in `AvroData`'s order.
fn connect_props(out: &mut Map<String, Json>, connect: &Json) {
    if let Some(doc) = connect.get("doc") {
        out.insert("connect.doc".into(), doc.clone());
    }
    if let Some(version) = connect.get("version") {
        out.insert("connect.version".into(), version.clone());
    }
    if let Some(parameters) = connect.get("parameters") {
        out.insert("connect.parameters".into(), parameters.clone());
    }
    if let Some(default) = connect.get("default").filter(|d| !d.is_null()) {
        if let Ok(value) = avro_default(connect, default) {
            out.insert("connect.default".into(), value);
        }
    }
    if let Some(name) = connect.get("name") {
        out.insert("connect.name".into(), name.clone());
    }
}

/// A Connect default (as `JsonConverter` writes it) as an Avro default: bytes, written as
/// base64 by `JsonConverter`, are a string of one character per byte in Avro.
fn avro_default(connect: &Json, default: &Json) -> Result<Json, ConnectAvroError> {
    match (connect.get("type").and_then(Json::as_str), default) {
        (Some("bytes"), Json::String(text)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    ConnectAvroError::Schema(format!("a bytes default that is not base64: {e}"))
                })?;
            Ok(json!(bytes
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()))
        }
        _ => Ok(default.clone()),
    }
}

fn is_optional(connect: &Json) -> bool {
    connect
        .get("optional")
        .and_then(Json::as_bool)
        .unwrap_or(false)
}

fn is_string_map(connect: &Json) -> bool {
    connect
        .get("keys")
        .and_then(|k| k.get("type"))
        .and_then(Json::as_str)
        == Some("string")
}

fn parameter<'a>(connect: &'a Json, key: &str) -> Option<&'a str> {
    connect.get("parameters")?.get(key)?.as_str()
}

/// The Avro datum of a Connect payload (as `JsonConverter` writes it) under its Connect schema.
pub fn avro_datum(connect: &Json, payload: &Json) -> Result<Avro, ConnectAvroError> {
    datum_of(connect, payload, true, &mut String::new())
}

fn datum_of(
    connect: &Json,
    payload: &Json,
    allow_optional: bool,
    path: &mut String,
) -> Result<Avro, ConnectAvroError> {
    if allow_optional && is_optional(connect) {
        let null_first = connect.get("default").is_none_or(Json::is_null);
        let (null_index, value_index) = if null_first { (0, 1) } else { (1, 0) };
        return Ok(if payload.is_null() {
            Avro::Union(null_index, Box::new(Avro::Null))
        } else {
            Avro::Union(value_index, Box::new(base_datum(connect, payload, path)?))
        });
    }
    if payload.is_null() {
        // A required field may be left out when it has a default.
        if let Some(default) = connect.get("default").filter(|d| !d.is_null()) {
            return base_datum(connect, default, path);
        }
        return Err(bad(path, "null for a required field"));
    }
    base_datum(connect, payload, path)
}

fn base_datum(connect: &Json, payload: &Json, path: &mut String) -> Result<Avro, ConnectAvroError> {
    let kind = connect.get("type").and_then(Json::as_str).unwrap_or("");
    let name = connect.get("name").and_then(Json::as_str);
    Ok(match kind {
        "struct" => {
            let fields = connect
                .get("fields")
                .and_then(Json::as_array)
                .map_or(&[][..], Vec::as_slice);
            let mut out = Vec::with_capacity(fields.len());
            for field in fields {
                let field_name = field.get("field").and_then(Json::as_str).unwrap_or("");
                let value = payload.get(field_name).unwrap_or(&Json::Null);
                let before = path.len();
                path.push('.');
                path.push_str(field_name);
                out.push((adjust_name(field_name), datum_of(field, value, true, path)?));
                path.truncate(before);
            }
            Avro::Record(out)
        }
        "array" => {
            let items = connect.get("items").unwrap_or(&Json::Null);
            let values = payload
                .as_array()
                .ok_or_else(|| bad(path, "not an array"))?;
            Avro::Array(
                values
                    .iter()
                    .map(|v| datum_of(items, v, true, path))
                    .collect::<Result<_, _>>()?,
            )
        }
        "map" => map_datum(connect, payload, path)?,
        "int8" | "int16" | "int32" => {
            let n = payload
                .as_i64()
                .ok_or_else(|| bad(path, "not an integer"))?;
            let n = i32::try_from(n).map_err(|_| bad(path, "out of range for int32"))?;
            match name {
                Some(DATE) => Avro::Date(n),
                Some(TIME) => Avro::TimeMillis(n),
                _ => Avro::Int(n),
            }
        }
        "int64" => {
            let n = payload
                .as_i64()
                .ok_or_else(|| bad(path, "not an integer"))?;
            match name {
                Some(TIMESTAMP) => Avro::TimestampMillis(n),
                _ => Avro::Long(n),
            }
        }
        "float32" | "float" => Avro::Float(number(payload, path)? as f32),
        "float64" | "double" => Avro::Double(number(payload, path)?),
        "boolean" => Avro::Boolean(
            payload
                .as_bool()
                .ok_or_else(|| bad(path, "not a boolean"))?,
        ),
        "string" => Avro::String(
            payload
                .as_str()
                .ok_or_else(|| bad(path, "not a string"))?
                .to_string(),
        ),
        "bytes" => {
            let text = payload
                .as_str()
                .ok_or_else(|| bad(path, "not base64 text"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| bad(path, &format!("not base64: {e}")))?;
            if name == Some(DECIMAL) {
                Avro::Decimal(apache_avro::Decimal::from(bytes))
            } else {
                Avro::Bytes(bytes)
            }
        }
        other => return Err(bad(path, &format!("unknown type `{other}`"))),
    })
}

fn map_datum(connect: &Json, payload: &Json, path: &mut String) -> Result<Avro, ConnectAvroError> {
    let keys = connect.get("keys").unwrap_or(&Json::Null);
    let values = connect.get("values").unwrap_or(&Json::Null);
    if is_string_map(connect) {
        let object = payload.as_object().ok_or_else(|| bad(path, "not a map"))?;
        let mut out = HashMap::with_capacity(object.len());
        for (key, value) in object {
            out.insert(key.clone(), datum_of(values, value, true, path)?);
        }
        return Ok(Avro::Map(out));
    }
    // JsonConverter writes a map with non-string keys as an array of [key, value] pairs.
    let pairs = payload
        .as_array()
        .ok_or_else(|| bad(path, "not an array of pairs"))?;
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let (Some(key), Some(value)) = (pair.get(0), pair.get(1)) else {
            return Err(bad(path, "a map entry that is not a [key, value] pair"));
        };
        out.push(Avro::Record(vec![
            ("key".into(), datum_of(keys, key, true, path)?),
            ("value".into(), datum_of(values, value, true, path)?),
        ]));
    }
    Ok(Avro::Array(out))
}

/// JsonConverter writes NaN and infinities as strings.
fn number(payload: &Json, path: &str) -> Result<f64, ConnectAvroError> {
    match payload {
        Json::Number(n) => n.as_f64().ok_or_else(|| bad(path, "not a number")),
        Json::String(s) => s.parse::<f64>().map_err(|_| bad(path, "not a number")),
        _ => Err(bad(path, "not a number")),
    }
}

fn bad(path: &str, reason: &str) -> ConnectAvroError {
    ConnectAvroError::Payload {
        path: if path.is_empty() {
            "(root)".into()
        } else {
            path.trim_start_matches('.').into()
        },
        reason: reason.into(),
    }
}

/// Encodes a datum with its schema (Avro binary, no header).
pub fn encode_datum(schema: &Schema, datum: Avro) -> Result<Vec<u8>, ConnectAvroError> {
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|writer| writer.write_value_to_vec(datum))
        .map_err(|e| ConnectAvroError::Avro(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_text(connect: Json) -> Json {
        serde_json::from_str(&avro_schema(&connect).unwrap().text).unwrap()
    }

    #[test]
    fn an_envelope_becomes_a_record_split_at_the_last_dot_with_the_row_named_once() {
        let row = json!({"type":"struct","fields":[
            {"type":"int64","optional":false,"field":"id"},
            {"type":"string","optional":true,"field":"status"}],
            "optional":true,"name":"dbserver1.public.orders.Value","field":"before"});
        let mut after = row.clone();
        after["field"] = json!("after");
        let envelope = json!({"type":"struct","fields":[row, after,
            {"type":"string","optional":false,"field":"op"},
            {"type":"int64","optional":true,"field":"ts_ms"}],
            "optional":false,"name":"dbserver1.public.orders.Envelope","version":2});
        assert_eq!(
            schema_text(envelope),
            json!({"type":"record","name":"Envelope","namespace":"dbserver1.public.orders","fields":[
                {"name":"before","type":["null",{"type":"record","name":"Value","fields":[
                    {"name":"id","type":"long"},
                    {"name":"status","type":["null","string"],"default":null}],
                    "connect.name":"dbserver1.public.orders.Value"}],"default":null},
                {"name":"after","type":["null","Value"],"default":null},
                {"name":"op","type":"string"},
                {"name":"ts_ms","type":["null","long"],"default":null}],
                "connect.version":2,"connect.name":"dbserver1.public.orders.Envelope"})
        );
    }

    #[test]
    fn a_decimal_is_bytes_with_its_scale_and_precision() {
        let decimal = json!({"type":"bytes","optional":false,"name":DECIMAL,"version":1,
            "parameters":{"scale":"2","connect.decimal.precision":"12"}});
        assert_eq!(
            serde_json::to_string(&schema_text(decimal)).unwrap(),
            r#"{"type":"bytes","scale":2,"precision":12,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"12"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}"#
        );
    }

    #[test]
    fn debezium_semantic_types_keep_their_plain_type_and_connect_name() {
        let field = json!({"type":"int64","optional":false,"name":"io.debezium.time.MicroTimestamp","version":1});
        assert_eq!(
            schema_text(field),
            json!({"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTimestamp"})
        );
        let small = json!({"type":"int16","optional":false});
        assert_eq!(
            schema_text(small),
            json!({"type":"int","connect.type":"int16"})
        );
    }

    #[test]
    fn a_struct_doc_is_connect_doc() {
        let decimal = json!({"type":"struct","fields":[
            {"type":"int32","optional":false,"field":"scale"},
            {"type":"bytes","optional":false,"field":"value"}],
            "optional":false,"name":"io.debezium.data.VariableScaleDecimal","version":1,
            "doc":"Variable scaled decimal"});
        assert_eq!(
            schema_text(decimal),
            json!({"type":"record","name":"VariableScaleDecimal","namespace":"io.debezium.data",
                "fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}],
                "connect.doc":"Variable scaled decimal","connect.version":1,
                "connect.name":"io.debezium.data.VariableScaleDecimal"})
        );
    }

    #[test]
    fn json_converter_float_and_double_are_avro_float_and_double() {
        // What JsonConverter (and so Debezium, and our envelope) writes for real / double
        // precision columns: "float" and "double", not Connect's FLOAT32 / FLOAT64 names.
        assert_eq!(
            schema_text(json!({"type":"float","optional":false})),
            json!("float")
        );
        assert_eq!(
            schema_text(json!({"type":"double","optional":false})),
            json!("double")
        );
        let schema = json!({"type":"struct","name":"t.Value","optional":false,"fields":[
            {"type":"float","optional":true,"field":"r"},{"type":"double","optional":false,"field":"d"}]});
        let datum = avro_datum(&schema, &json!({"r": 1.5, "d": "NaN"})).unwrap();
        let Avro::Record(fields) = datum else {
            panic!("a record: {datum:?}")
        };
        assert_eq!(fields[0].1, Avro::Union(1, Box::new(Avro::Float(1.5))));
        assert!(matches!(fields[1].1, Avro::Double(d) if d.is_nan()));
    }

    #[test]
    fn a_field_with_a_default_puts_the_default_type_first() {
        let source = json!({"type":"struct","name":"io.debezium.connector.postgresql.Source","fields":[
            {"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,
             "parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"}],
            "optional":false});
        assert_eq!(
            schema_text(source),
            json!({"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[
                {"name":"snapshot","type":[{"type":"string","connect.version":1,
                  "connect.parameters":{"allowed":"true,last,false,incremental"},"connect.default":"false",
                  "connect.name":"io.debezium.data.Enum"},"null"],"default":"false"}],
                "connect.name":"io.debezium.connector.postgresql.Source"})
        );
    }

    #[test]
    fn timestamps_dates_and_maps() {
        let connect = json!({"type":"struct","name":"t.Value","optional":false,"fields":[
            {"type":"int64","optional":false,"name":TIMESTAMP,"version":1,"field":"at"},
            {"type":"int32","optional":false,"name":DATE,"version":1,"field":"day"},
            {"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":true},"optional":false,"field":"tags"},
            {"type":"array","items":{"type":"int32","optional":true},"optional":false,"field":"list"}]});
        let avro = schema_text(connect);
        assert_eq!(
            avro["fields"][0]["type"],
            json!({"type":"long","connect.version":1,"connect.name":TIMESTAMP,"logicalType":"timestamp-millis"})
        );
        assert_eq!(
            avro["fields"][1]["type"],
            json!({"type":"int","connect.version":1,"connect.name":DATE,"logicalType":"date"})
        );
        assert_eq!(
            avro["fields"][2]["type"],
            json!({"type":"map","values":["null","string"]})
        );
        assert_eq!(
            avro["fields"][3]["type"],
            json!({"type":"array","items":["null","int"]})
        );
    }

    #[test]
    fn unnamed_structs_get_connect_default_names_and_bad_names_are_adjusted() {
        let connect = json!({"type":"struct","optional":false,"fields":[
            {"type":"int32","optional":false,"field":"order-id"}]});
        let avro = schema_text(connect);
        assert_eq!(avro["name"], "ConnectDefault");
        assert_eq!(avro["namespace"], CONNECT_AVRO_NAMESPACE);
        assert_eq!(avro["fields"][0]["name"], "order_id");
    }

    #[test]
    fn a_payload_becomes_a_datum_that_encodes() {
        let connect = json!({"type":"struct","name":"t.Value","optional":false,"fields":[
            {"type":"int64","optional":false,"field":"id"},
            {"type":"bytes","optional":true,"name":DECIMAL,"version":1,"parameters":{"scale":"2"},"field":"total"},
            {"type":"string","optional":true,"field":"note"}]});
        let schema = avro_schema(&connect).unwrap();
        let datum = avro_datum(&connect, &json!({"id":42,"total":"BM4=","note":null})).unwrap();
        assert_eq!(
            datum,
            Avro::Record(vec![
                ("id".into(), Avro::Long(42)),
                (
                    "total".into(),
                    Avro::Union(1, Box::new(Avro::Decimal(vec![0x04, 0xce].into())))
                ),
                ("note".into(), Avro::Union(0, Box::new(Avro::Null))),
            ])
        );
        // 42 zigzag = 0x54; union branch 1 = 0x02, 2 bytes = 0x04, 04 ce; branch 0 = 0x00.
        assert_eq!(
            encode_datum(&schema.schema, datum).unwrap(),
            [0x54, 0x02, 0x04, 0x04, 0xce, 0x00]
        );
    }

    #[test]
    fn a_payload_that_does_not_fit_names_the_field() {
        let connect = json!({"type":"struct","name":"t.Value","optional":false,"fields":[
            {"type":"int64","optional":false,"field":"id"}]});
        let error = avro_datum(&connect, &json!({"id":"x"})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the payload does not fit its schema at `id`: not an integer"
        );
    }
}
