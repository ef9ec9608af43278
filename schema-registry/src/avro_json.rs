//! The way back: an Avro datum -> the JSON payload `JsonConverter` would have written for the
//! same record, and an Avro schema -> the Connect schema (`AvroData.toConnectSchema`, the parts
//! a reader needs: types, optionality, names, parameters).
//!
//! With both, a consumer that reads Debezium's JSON records reads Avro ones unchanged: it gets
//! `{"schema":<Connect schema>,"payload":<payload>}`, the JSON form.
//!
//! ```text
//! Avro                              JSON payload
//! union ["null", T]                 null, or T's value
//! bytes, decimal                    base64 (as JsonConverter writes bytes)
//! float                             the shortest decimal that reads back as the same float
//! date, time-millis, timestamp-*    the number
//! record                            an object, in the schema's field order
//! ```

use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use base64::Engine;
use serde_json::{json, Map, Value as Json};

/// The JSON payload of an Avro datum.
pub fn payload_json(datum: &Avro) -> Json {
    match datum {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => json!(b),
        Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n) => json!(n),
        Avro::Long(n)
        | Avro::TimeMicros(n)
        | Avro::TimestampMillis(n)
        | Avro::TimestampMicros(n)
        | Avro::TimestampNanos(n)
        | Avro::LocalTimestampMillis(n)
        | Avro::LocalTimestampMicros(n)
        | Avro::LocalTimestampNanos(n) => json!(n),
        // JsonConverter writes a float32 as Jackson prints the float: the shortest decimal.
        Avro::Float(f) => float_json(f.to_string().parse::<f64>().unwrap_or(f64::from(*f))),
        Avro::Double(f) => float_json(*f),
        Avro::Bytes(bytes) | Avro::Fixed(_, bytes) => {
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Avro::Decimal(decimal) => {
            let bytes = Vec::<u8>::try_from(decimal).unwrap_or_default();
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Avro::String(s) | Avro::Enum(_, s) => json!(s),
        Avro::Uuid(uuid) => json!(uuid.to_string()),
        Avro::Union(_, inner) => payload_json(inner),
        Avro::Array(items) => Json::Array(items.iter().map(payload_json).collect()),
        Avro::Map(entries) => {
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), payload_json(&entries[k])))
                    .collect(),
            )
        }
        Avro::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), payload_json(value)))
                .collect(),
        ),
        other => json!(format!("{other:?}")),
    }
}

fn float_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None => json!(f.to_string()),
    }
}

/// The Connect schema (as `JsonConverter` writes it) of an Avro schema's JSON text.
pub fn connect_schema(avro: &Json) -> Json {
    let mut named = HashMap::new();
    to_connect(avro, None, &mut named)
}

fn to_connect(avro: &Json, namespace: Option<&str>, named: &mut HashMap<String, Json>) -> Json {
    match avro {
        Json::String(name) => primitive(name).unwrap_or_else(|| {
            let full = if name.contains('.') {
                name.clone()
            } else {
                format!("{}.{name}", namespace.unwrap_or(""))
                    .trim_start_matches('.')
                    .to_string()
            };
            named
                .get(&full)
                .cloned()
                .unwrap_or(json!({"type":"struct","fields":[],"optional":false}))
        }),
        Json::Array(branches) => {
            let non_null: Vec<&Json> = branches.iter().filter(|b| *b != &json!("null")).collect();
            let mut out = match non_null.first() {
                Some(first) => to_connect(first, namespace, named),
                None => json!({"type":"string"}),
            };
            if non_null.len() < branches.len() {
                out["optional"] = json!(true);
            }
            out
        }
        Json::Object(object) => {
            let kind = object.get("type").cloned().unwrap_or(Json::Null);
            let mut out = match kind.as_str() {
                Some("record") => {
                    let name = object.get("name").and_then(Json::as_str).unwrap_or("");
                    let own_namespace = object
                        .get("namespace")
                        .and_then(Json::as_str)
                        .or(if name.contains('.') { None } else { namespace });
                    let full = match own_namespace {
                        Some(ns) if !ns.is_empty() && !name.contains('.') => format!("{ns}.{name}"),
                        _ => name.to_string(),
                    };
                    let fields: Vec<Json> = object
                        .get("fields")
                        .and_then(Json::as_array)
                        .map(|fields| {
                            fields
                                .iter()
                                .map(|field| {
                                    let mut connect = to_connect(
                                        field.get("type").unwrap_or(&Json::Null),
                                        own_namespace,
                                        named,
                                    );
                                    connect["field"] =
                                        field.get("name").cloned().unwrap_or(Json::Null);
                                    connect
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut record = json!({"type":"struct","fields":fields,"optional":false});
                    let connect_name = object.get("connect.name").cloned().unwrap_or(json!(full));
                    record["name"] = connect_name;
                    named.insert(full, record.clone());
                    record
                }
                Some("array") => json!({"type":"array",
                    "items": to_connect(object.get("items").unwrap_or(&Json::Null), namespace, named),
                    "optional": false}),
                Some("map") => json!({"type":"map","keys":{"type":"string","optional":false},
                    "values": to_connect(object.get("values").unwrap_or(&Json::Null), namespace, named),
                    "optional": false}),
                _ => {
                    let mut out = to_connect(&kind, namespace, named);
                    if let Some(small) = object.get("connect.type") {
                        out["type"] = small.clone();
                    }
                    if object.get("logicalType") == Some(&json!("decimal"))
                        && !object.contains_key("connect.parameters")
                    {
                        out["name"] = json!("org.apache.kafka.connect.data.Decimal");
                        out["parameters"] = json!({"scale": object.get("scale").map(|s| s.to_string()).unwrap_or_else(|| "0".into())});
                    }
                    out
                }
            };
            copy_connect_props(object, &mut out);
            out
        }
        _ => json!({"type":"string","optional":false}),
    }
}

fn copy_connect_props(object: &Map<String, Json>, out: &mut Json) {
    for (avro_key, connect_key) in [
        ("connect.name", "name"),
        ("connect.version", "version"),
        ("connect.parameters", "parameters"),
        ("connect.doc", "doc"),
    ] {
        if let Some(value) = object.get(avro_key) {
            out[connect_key] = value.clone();
        }
    }
}

fn primitive(name: &str) -> Option<Json> {
    let kind = match name {
        "null" => "null",
        "boolean" => "boolean",
        "int" => "int32",
        "long" => "int64",
        "float" => "float32",
        "double" => "float64",
        "bytes" => "bytes",
        "string" => "string",
        _ => return None,
    };
    Some(json!({"type": kind, "optional": false}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect_avro::{avro_datum, avro_schema};

    #[test]
    fn a_payload_survives_the_round_trip_through_avro() {
        let connect = json!({"type":"struct","name":"t.Envelope","optional":false,"fields":[
            {"type":"struct","name":"t.Value","optional":true,"field":"before","fields":[
                {"type":"int64","optional":false,"field":"id"},
                {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"total"},
                {"type":"float32","optional":true,"field":"ratio"},
                {"type":"int16","optional":true,"field":"small"}]},
            {"type":"struct","name":"t.Value","optional":true,"field":"after","fields":[
                {"type":"int64","optional":false,"field":"id"},
                {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"total"},
                {"type":"float32","optional":true,"field":"ratio"},
                {"type":"int16","optional":true,"field":"small"}]},
            {"type":"string","optional":false,"field":"op"}]});
        let payload =
            json!({"before":null,"after":{"id":7,"total":"BM4=","ratio":1.1,"small":-3},"op":"c"});
        let schema = avro_schema(&connect).unwrap();
        let bytes = crate::connect_avro::encode_datum(
            &schema.schema,
            avro_datum(&connect, &payload).unwrap(),
        )
        .unwrap();
        let datum = apache_avro::reader::datum::GenericDatumReader::builder(&schema.schema)
            .build()
            .unwrap()
            .read_value(&mut bytes.as_slice())
            .unwrap();
        assert_eq!(payload_json(&datum), payload);

        let back = connect_schema(&serde_json::from_str(&schema.text).unwrap());
        assert_eq!(back["name"], "t.Envelope");
        assert_eq!(back["fields"][1]["field"], "after");
        assert_eq!(back["fields"][1]["optional"], true);
        assert_eq!(
            back["fields"][1]["fields"][1]["name"],
            "org.apache.kafka.connect.data.Decimal"
        );
        assert_eq!(back["fields"][1]["fields"][1]["parameters"]["scale"], "2");
        assert_eq!(back["fields"][1]["fields"][3]["type"], "int16");
    }
}
