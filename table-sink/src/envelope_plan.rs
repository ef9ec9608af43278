//! A change event's payload read straight into rows, for a value schema met before (pure).
//!
//! Where it sits: `input` recognises a value schema it has seen by its bytes and hands over the
//! payload's bytes; this module reads them; `decode` does the rest (keys, ops) as for any
//! record. The general path ([`crate::decode::Decoder::decode_parts`]) first parses the
//! payload into a JSON tree (a map per struct, a `String` per key, every key hashed) and then
//! walks the schema's fields looking each one up: most of the sink's CPU on a backlog went to
//! building and freeing that tree. A plan, made once per schema, knows the fields of `before`
//! and `after` in order (name, type, and the field's schema for the conversion); the payload
//! is then read in one pass, each field's JSON value dropped into its slot:
//!
//! ```text
//! schema (once):  Envelope { before: [id int64, status string, total Decimal(12,2), ..], after: same }
//! payload:        {"before":null,"after":{"id":7,"status":"NEW","total":"EoQ="},"source":{..,"schema":"public","table":"orders",..},"op":"c",..}
//!                  -> op "c", table public.orders, after = [7, "NEW", "EoQ="] -> convert each as decode does
//! ```
//!
//! Only the happy path is planned: a schema that is not a Debezium envelope, a payload of
//! another shape, any value that does not fit where the plan expects it: the caller gets
//! `None` and decodes the record the general way, which gives the same rows and the same errors
//! (a test compares the two on every kind of record). The conversions themselves are
//! `decode::convert`, shared.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;

use crate::change::{Field, Row, RowChange, TableId};
use crate::decode::{self, DecodeError, Decoder, Headers};

/// The plan of one row image (`before` or `after`): its fields in schema order.
#[derive(Debug)]
struct ImagePlan {
    fields: Vec<Field>,
    /// Each field's own schema (what `convert` reads logical-type parameters from).
    schemas: Vec<Json>,
}

impl ImagePlan {
    fn of(struct_schema: &Json) -> Option<Self> {
        let mut fields = Vec::new();
        let mut schemas = Vec::new();
        for field_schema in struct_schema.get("fields")?.as_array()? {
            let name = field_schema.get("field")?.as_str()?;
            let ty = decode::field_type(field_schema).ok()?;
            let optional = field_schema
                .get("optional")
                .and_then(Json::as_bool)
                .unwrap_or(false);
            fields.push(Field::new(name, ty, optional));
            schemas.push(field_schema.clone());
        }
        Some(Self { fields, schemas })
    }

    /// The slot of field `name`: the next one in schema order is tried first (payloads come in
    /// schema order), then all of them.
    fn slot(&self, name: &str, expected: usize) -> Option<usize> {
        if self.fields.get(expected).is_some_and(|f| f.name == name) {
            return Some(expected);
        }
        self.fields.iter().position(|f| f.name == name)
    }

    /// The row of the JSON values in the slots, converted as `decode` converts them.
    fn row(&self, values: Vec<Json>) -> Result<Row, DecodeError> {
        let mut converted = Vec::with_capacity(values.len());
        for ((field, schema), json) in self.fields.iter().zip(&self.schemas).zip(&values) {
            converted.push(decode::convert(&field.name, schema, &field.ty, json)?);
        }
        Ok(Row {
            fields: self.fields.clone(),
            values: converted,
            key: Vec::new(),
        })
    }
}

/// What decoding a record gives: the change it asks for (if any), or why it cannot.
pub type Decoded = Result<Option<RowChange>, DecodeError>;

/// The plan of a Debezium envelope schema: its `before` and `after` images.
#[derive(Debug)]
pub struct EnvelopePlan {
    before: Option<ImagePlan>,
    after: Option<ImagePlan>,
}

impl EnvelopePlan {
    /// A plan for `schema`, when it is a Debezium change event envelope whose row images can
    /// be planned (else `None`: such records take the general path).
    pub fn of(schema: &Json) -> Option<Self> {
        let named_envelope = schema
            .get("name")
            .and_then(Json::as_str)
            .is_some_and(|n| n.ends_with(".Envelope"));
        if !named_envelope {
            return None;
        }
        let image = |name: &str| {
            schema
                .get("fields")?
                .as_array()?
                .iter()
                .find(|f| f.get("field").and_then(Json::as_str) == Some(name))
        };
        // Both images declared (as Debezium declares them): an image the schema lacks would be
        // read schemaless by the general path.
        Some(Self {
            before: Some(ImagePlan::of(image("before")?)?),
            after: Some(ImagePlan::of(image("after")?)?),
        })
    }

    /// Reads the payload bytes of a change event under this plan. `None`: the payload is not
    /// the shape the plan expects (the general path will say what is wrong with it).
    fn read(&self, payload: &[u8]) -> Option<Payload> {
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        let payload = PayloadSeed(self).deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(payload)
    }

    /// The change a change event's payload asks for, as [`Decoder::decode_parts`] would decode
    /// it; `None` when this record must take the general path.
    pub fn decode(
        &self,
        decoder: &Decoder,
        key: Option<&Json>,
        payload: &[u8],
        headers: &Headers,
    ) -> Option<(Decoded, Option<i64>)> {
        let mut payload = self.read(payload)?;
        let commit_us = payload.source.as_ref().and_then(|s| s.2);
        Some((payload.change(self, decoder, key, headers), commit_us))
    }
}

/// What a change event's payload says, read under a plan.
#[derive(Debug, Default)]
struct Payload {
    op: Option<String>,
    /// `source.schema`, `source.table` (`None` inside: absent or not a string) and the
    /// source commit time in microseconds (`source.ts_us`, else `ts_ms`).
    source: Option<(Option<String>, Option<String>, Option<i64>)>,
    /// Absent or null: `None`.
    before: Option<Vec<Json>>,
    after: Option<Vec<Json>>,
}

impl Payload {
    fn change(
        &mut self,
        plan: &EnvelopePlan,
        decoder: &Decoder,
        key: Option<&Json>,
        headers: &Headers,
    ) -> Result<Option<RowChange>, DecodeError> {
        let extra = decode::header_fields(&decoder.options().header_to_field, headers)?;
        let op = self.op.clone().unwrap_or_default();
        if op == "m" {
            return Ok(None);
        }
        let (schema_name, table, _) = self.source.take().unwrap_or((None, None, None));
        let table = table.ok_or(DecodeError::NoSourceTable)?;
        let table = TableId::new(schema_name.as_deref(), &table);
        let mut before = self.before.take();
        let mut after = self.after.take();
        let image = |name: &'static str| -> Result<Option<Row>, DecodeError> {
            let (values, image_plan) = match name {
                "before" => (before.take(), plan.before.as_ref()),
                _ => (after.take(), plan.after.as_ref()),
            };
            match (values, image_plan) {
                (Some(values), Some(image_plan)) => image_plan
                    .row(values)
                    .map(|row| Some(decode::with_header_fields(row, &extra))),
                _ => Ok(None),
            }
        };
        decoder.change_of(&op, table, key, image)
    }
}

/// An object key, borrowed from the payload's bytes when it has no escapes (serde's own
/// `Cow<str>` always allocates).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_string()))
    }
}

/// The payload object: `op`, `source`, `before`, `after`; anything else is skipped.
struct PayloadSeed<'p>(&'p EnvelopePlan);

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Payload, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change event payload")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
        let mut payload = Payload::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key.as_ref() {
                "op" => payload.op = map.next_value::<Option<String>>()?,
                "source" => payload.source = map.next_value_seed(SourceSeed)?,
                "before" | "after" => {
                    let image_plan = if key == "before" {
                        &self.0.before
                    } else {
                        &self.0.after
                    };
                    let values = match image_plan {
                        Some(image_plan) => map.next_value_seed(ImageSeed(image_plan))?,
                        // An image the schema does not declare: the general path ignores it too.
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    };
                    if key == "before" {
                        payload.before = values;
                    } else {
                        payload.after = values;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(payload)
    }
}

/// `source`: only `schema` and `table` matter here; `null` is no source.
struct SourceSeed;

impl<'de> DeserializeSeed<'de> for SourceSeed {
    type Value = Option<(Option<String>, Option<String>, Option<i64>)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for SourceSeed {
    type Value = Option<(Option<String>, Option<String>, Option<i64>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a source block")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut schema, mut table, mut ts_us, mut ts_ms) = (None, None, None, None);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // As the general path reads them: a value that is not a string counts as absent.
            let text = |json: Json| match json {
                Json::String(s) => Some(s),
                _ => None,
            };
            match key.as_ref() {
                "schema" => schema = text(map.next_value()?),
                "table" => table = text(map.next_value()?),
                "ts_us" => ts_us = map.next_value::<Json>()?.as_i64(),
                "ts_ms" => ts_ms = map.next_value::<Json>()?.as_i64(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some((schema, table, ts_us.or(ts_ms.map(|ms| ms * 1000)))))
    }
}

/// One row image: `null`, or an object whose fields go to the plan's slots (fields the schema
/// does not know are skipped, missing ones are null: as the general path reads them).
struct ImageSeed<'p>(&'p ImagePlan);

impl<'de> DeserializeSeed<'de> for ImageSeed<'_> {
    type Value = Option<Vec<Json>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ImageSeed<'_> {
    type Value = Option<Vec<Json>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row image (an object or null)")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = vec![Json::Null; self.0.fields.len()];
        let mut expected = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.slot(&key, expected) {
                Some(slot) => {
                    values[slot] = map.next_value()?;
                    expected = slot + 1;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(values))
    }
}

/// Plans by schema, for the schemas `input` shares (each kept by its `Arc`, so an address is
/// never reused while its plan is here).
#[derive(Debug, Default)]
pub struct EnvelopePlans {
    plans: Vec<(Arc<Json>, Option<Arc<EnvelopePlan>>)>,
}

/// How many schemas' plans are kept (as many as `input` remembers, and then some).
const PLANS_KEPT: usize = 32;

impl EnvelopePlans {
    /// The plan of `schema` (made on first sight; `None`: records of it take the general path).
    pub fn of(&mut self, schema: &Arc<Json>) -> Option<Arc<EnvelopePlan>> {
        if let Some((_, plan)) = self.plans.iter().find(|(s, _)| Arc::ptr_eq(s, schema)) {
            return plan.clone();
        }
        if self.plans.len() == PLANS_KEPT {
            self.plans.remove(0);
        }
        let plan = EnvelopePlan::of(schema).map(Arc::new);
        self.plans.push((schema.clone(), plan.clone()));
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PrimaryKeyMode;
    use crate::decode::{DecodeOptions, HeaderToField};
    use proptest::prelude::*;
    use serde_json::json;

    fn image_schema() -> Json {
        json!({"type":"struct","optional":true,"name":"dbserver1.public.orders.Value","fields":[
            {"field":"id","type":"int64","optional":false},
            {"field":"status","type":"string","optional":false},
            {"field":"total","type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal",
             "parameters":{"scale":"2","connect.decimal.precision":"12"}},
            {"field":"created_at","type":"string","optional":false,"name":"io.debezium.time.ZonedTimestamp"},
            {"field":"at","type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp"},
            {"field":"tags","type":"array","optional":true,"items":{"type":"string","optional":true}}
        ]})
    }

    fn envelope_schema() -> Json {
        json!({"type":"struct","name":"dbserver1.public.orders.Envelope","fields":[
            {"field":"before","type":"struct","optional":true,"fields":image_schema()["fields"].clone()},
            {"field":"after","type":"struct","optional":true,"fields":image_schema()["fields"].clone()},
            {"field":"source","type":"struct","fields":[]},
            {"field":"op","type":"string"}]})
    }

    fn key(id: Json) -> Json {
        json!({"schema":{"type":"struct","name":"dbserver1.public.orders.Key",
                          "fields":[{"field":"id","type":"int64","optional":false}]},
               "payload":{"id":id}})
    }

    fn order(id: i64) -> Json {
        json!({"id":id,"status":"NEW","total":"EoQ=","created_at":"2026-12-03T14:20:00.123456Z",
               "at":1764771600123456i64,"tags":["x",null]})
    }

    fn source() -> Json {
        json!({"version":"3.6.1","connector":"postgresql","name":"dbserver1","schema":"public",
               "table":"orders","lsn":1,"snapshot":"false","ts_ms":1764771600123i64})
    }

    fn decoders() -> Vec<Decoder> {
        let header = HeaderToField {
            header: "id".into(),
            field: "event_id".into(),
        };
        vec![
            Decoder::new(DecodeOptions::default()),
            Decoder::new(DecodeOptions {
                truncate_enabled: true,
                delete_enabled: false,
                ..DecodeOptions::default()
            }),
            Decoder::new(DecodeOptions {
                primary_key_mode: PrimaryKeyMode::RecordValue,
                primary_key_fields: vec!["id".into()],
                ..DecodeOptions::default()
            }),
            Decoder::new(DecodeOptions {
                primary_key_mode: PrimaryKeyMode::None,
                header_to_field: vec![header],
                ..DecodeOptions::default()
            }),
        ]
    }

    /// The planned path gives what the general path gives, or steps aside (`None`).
    /// Returns whether it applied.
    fn same_as_general(key: Option<&Json>, payload: &Json, headers: &Headers) -> bool {
        let schema = envelope_schema();
        let plan = EnvelopePlan::of(&schema).expect("the envelope has a plan");
        let bytes = serde_json::to_vec(payload).unwrap();
        let mut applied = true;
        for mut decoder in decoders() {
            let mut general_decoder = decoder.clone();
            let general = general_decoder.decode_parts(
                "dbserver1.public.orders",
                key,
                Some(&schema),
                Some(payload),
                headers,
            );
            match decoder.decode_planned("dbserver1.public.orders", key, &plan, &bytes, headers) {
                Some(planned) => {
                    assert_eq!(planned, general, "payload {payload}");
                    assert_eq!(
                        decoder.take_source_commit_us(),
                        general_decoder.take_source_commit_us(),
                        "source commit of {payload}"
                    );
                }
                None => applied = false,
            }
        }
        applied
    }

    #[test]
    fn debezium_change_events_decode_as_the_general_path_decodes_them() {
        let headers: Vec<(String, Option<Vec<u8>>)> =
            vec![("id".into(), Some(b"\"5f0c\"".to_vec()))];
        let k = key(json!(7));
        let cases = [
            json!({"before":null,"after":order(7),"source":source(),"op":"c","ts_ms":1}),
            json!({"before":order(7),"after":order(7),"source":source(),"op":"u","transaction":null}),
            json!({"before":order(7),"after":null,"source":source(),"op":"d"}),
            json!({"after":order(7),"source":source(),"op":"r"}),
            json!({"source":source(),"op":"t"}),
            json!({"source":source(),"op":"m","message":{"prefix":"audit"}}),
            // Fields in another order, one missing, one the schema does not know.
            json!({"op":"c","after":{"status":"PAID","id":7,"extra":[1,2],"total":"AA==","created_at":"x"},"source":source()}),
            // Odd but well-formed: errors must be the general path's.
            json!({"after":order(7),"source":{"schema":"public"},"op":"c"}),
            json!({"after":order(7),"source":{"schema":"public","table":"orders","ts_us":1764771600123456i64,"ts_ms":1},"op":"c"}),
            json!({"after":order(7),"source":null,"op":"c"}),
            json!({"after":order(7),"source":{"table":5},"op":"c"}),
            json!({"after":order(7),"source":source(),"op":"x"}),
            json!({"after":order(7),"source":source()}),
            json!({"after":order(7),"source":source(),"op":null}),
            json!({"after":null,"source":source(),"op":"c"}),
            json!({"after":{"id":"seven","status":"NEW","total":"EoQ=","created_at":"x"},"source":source(),"op":"c"}),
            json!({"after":{"id":7,"status":"NEW","total":"not base64!","created_at":"x"},"source":source(),"op":"c"}),
        ];
        for payload in &cases {
            assert!(
                same_as_general(Some(&k), payload, &headers),
                "the plan stepped aside for {payload}"
            );
            same_as_general(Some(&key(json!(null))), payload, &[]);
            same_as_general(None, payload, &[]);
        }
        // Shapes the plan leaves to the general path.
        for payload in [
            json!({"after":"a string","source":source(),"op":"c"}),
            json!({"after":order(7),"source":"elsewhere","op":"c"}),
            json!({"after":order(7),"source":source(),"op":1}),
        ] {
            assert!(!same_as_general(Some(&k), &payload, &headers), "{payload}");
        }
    }

    #[test]
    fn only_debezium_envelopes_with_both_images_get_a_plan() {
        assert!(EnvelopePlan::of(&envelope_schema()).is_some());
        assert!(EnvelopePlan::of(&image_schema()).is_none());
        let mut one_image = envelope_schema();
        one_image["fields"].as_array_mut().unwrap().remove(0);
        assert!(EnvelopePlan::of(&one_image).is_none());
        let mut plans = EnvelopePlans::default();
        let schema = Arc::new(envelope_schema());
        let first = plans.of(&schema).unwrap();
        assert!(Arc::ptr_eq(&first, &plans.of(&schema).unwrap()));
    }

    #[test]
    fn keys_with_escapes_find_their_fields() {
        let plan = EnvelopePlan::of(&envelope_schema()).unwrap();
        let payload = plan
            .read(br#"{"op":"c","after":{"id":7,"st\u0061tus":"NEW"},"source":{"table":"orders"}}"#)
            .unwrap();
        let after = payload.after.unwrap();
        assert_eq!(after[0], json!(7));
        assert_eq!(after[1], json!("NEW"));
        assert!(plan.read(br#"{"op":"c"} trailing"#).is_none());
    }

    fn scalar() -> impl Strategy<Value = Json> {
        prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_map(Json::from),
            "[a-zA-Z0-9+/=:. -]{0,12}".prop_map(Json::from),
            Just(json!("EoQ=")),
            Just(json!([1, "x", null])),
            Just(json!({"nested": true})),
        ]
    }

    proptest! {
        /// Any values in the images' fields (right types or not, present or not): the same
        /// change, or the same error, as the general path.
        #[test]
        fn any_field_values_decode_as_the_general_path_decodes_them(
            values in proptest::collection::vec(proptest::option::of(scalar()), 6),
            op in prop_oneof![Just("c"), Just("u"), Just("d"), Just("r")],
            key_id in scalar(),
        ) {
            let names = ["id", "status", "total", "created_at", "at", "tags"];
            let image: serde_json::Map<String, Json> = names
                .iter()
                .zip(&values)
                .filter_map(|(name, value)| value.clone().map(|v| (name.to_string(), v)))
                .collect();
            let image = Json::Object(image);
            let payload = json!({"before":image.clone(),"after":image,"source":source(),"op":op});
            same_as_general(Some(&key(key_id)), &payload, &[]);
        }
    }
}
