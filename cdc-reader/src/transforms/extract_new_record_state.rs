//! New Record State Extraction (`io.debezium.transforms.ExtractNewRecordState`, "unwrap"):
//! a change event becomes the row alone, for consumers and sinks that want rows, not envelopes.
//!
//! ```text
//! value {"before":null,"after":{"id":1,"qty":2},"source":{..,"lsn":24023128},"op":"c",..}
//!   --unwrap                                   -> {"id":1,"qty":2}
//!   --unwrap-add-fields op,lsn                 -> {"id":1,"qty":2,"__op":"c","__lsn":24023128}
//!   --unwrap-delete-tombstone-handling-mode rewrite
//!                                              -> {"id":1,"qty":2,"__deleted":"false"}
//! ```
//!
//! Deletes and tombstones, per `delete.tombstone.handling.mode` (Debezium 3.6):
//!
//! ```text
//! mode                     delete event                          tombstone after it
//! drop                     dropped                               dropped
//! tombstone (default)      value: the row schema, payload null   dropped
//! rewrite                  the `before` row + "__deleted":"true" dropped
//! rewrite-with-tombstone   the `before` row + "__deleted":"true" kept
//! delete-to-tombstone      a tombstone (null value)              dropped
//! ```
//!
//! "tombstone" is not a Kafka tombstone: Debezium keeps the row's schema, so JsonConverter
//! writes `{"schema":{..},"payload":null}` (with `--no-schemas`: the four bytes `null`). The
//! older `delete.handling.mode` (none, drop, rewrite) and `drop.tombstones` (removed from
//! Debezium 3.x, still in many configurations) are understood as Debezium 2.x did.
//!
//! Also as in Debezium: the key and the topic are unchanged; a truncate event is dropped;
//! records that are not change events (heartbeats, logical messages, transaction BEGIN/END)
//! pass unchanged; a flattened value's schema is the row's `<topic>.Value` schema, required
//! (`"optional":false`) once the transform has rebuilt it (Kafka Connect's `InsertField` copies
//! a schema's name, version and parameters, not its optionality), with the added fields
//! appended as optional fields of the type they have in the envelope.
//!
//! `add.headers` become Kafka headers written as Kafka Connect's default
//! `SimpleHeaderConverter` writes them: a string as its UTF-8 text, a number or boolean as its
//! text. A kept tombstone gets only the `op` header, with the value `d`.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::raw_json::{self, RawJsonError, RawObject};
use super::{Outcome, TransformError};
use crate::changes::OutputRecord;

/// Debezium's `delete.tombstone.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeleteTombstoneHandling {
    /// Remove the delete event and its tombstone.
    Drop,
    /// Keep the delete as a record without a row (null payload); drop the tombstone.
    #[default]
    Tombstone,
    /// The deleted row with `"__deleted":"true"`; drop the tombstone.
    Rewrite,
    /// Like rewrite, and keep the tombstone.
    RewriteWithTombstone,
    /// Turn the delete into a tombstone; drop the original tombstone.
    DeleteToTombstone,
}

/// Debezium 2.x's `delete.handling.mode` (deprecated there, removed in 3.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LegacyDeleteHandling {
    /// Keep the delete as a record without a row.
    None,
    /// Remove the delete event (2.x's default).
    Drop,
    /// The deleted row with `"__deleted":"true"`.
    Rewrite,
}

/// What the transform does with a delete event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteAction {
    Drop,
    /// The row schema with a null payload.
    NullRow,
    Rewrite,
    Tombstone,
}

/// The options, with Debezium's names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnwrapOptions {
    /// `delete.tombstone.handling.mode`; wins over the legacy pair when set.
    pub delete_tombstone_handling_mode: Option<DeleteTombstoneHandling>,
    /// `delete.handling.mode` (legacy).
    pub delete_handling_mode: Option<LegacyDeleteHandling>,
    /// `drop.tombstones` (legacy, default true).
    pub drop_tombstones: Option<bool>,
    /// `add.fields`, e.g. `op,table,lsn,source.ts_ms`, `lsn:position` renames.
    pub add_fields: String,
    /// `add.fields.prefix` (default `__`).
    pub add_fields_prefix: String,
    /// `add.headers`, same syntax as `add.fields`.
    pub add_headers: String,
    /// `add.headers.prefix` (default `__`).
    pub add_headers_prefix: String,
}

/// A field of the envelope to copy into the row (or a header): `op`, `lsn`, `source.ts_ms`,
/// `transaction.id`, with the name it gets (`__op`, `__lsn`, `__source_ts_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReference {
    /// The envelope's struct holding the field (`source`, `transaction`); None: the envelope.
    parent: Option<String>,
    field: String,
    new_name: String,
}

impl FieldReference {
    /// Parses one entry of `add.fields` the way Debezium does: an unqualified name is looked up
    /// in `transaction` (id, total_order, data_collection_order), the envelope (op, ts_ms,
    /// ts_us, ts_ns) or else `source`; `struct.field` names the struct; `:name` renames.
    fn parse(prefix: &str, entry: &str) -> Result<Self, String> {
        let parts: Vec<&str> = entry.split(':').collect();
        if parts.len() > 2 {
            return Err(format!("unexpected field name `{entry}`"));
        }
        let path: Vec<&str> = parts[0].split('.').collect();
        let (parent, field) = match path.as_slice() {
            [field] => (default_parent(field), field.to_string()),
            [parent, field, ..] => (Some(parent.to_string()), field.to_string()),
            [] => return Err(format!("empty field name in `{entry}`")),
        };
        let new_name = match parts.get(1) {
            Some(rename) => format!("{prefix}{rename}"),
            None if path.len() == 1 => format!("{prefix}{field}"),
            None => format!("{prefix}{}_{field}", parent.as_deref().unwrap_or_default()),
        };
        Ok(FieldReference {
            parent,
            field,
            new_name,
        })
    }

    fn parse_list(prefix: &str, list: &str) -> Result<Vec<Self>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| Self::parse(prefix, entry))
            .collect()
    }

    /// The field's value in the envelope payload, None when the envelope has no such field.
    /// A field the struct lacks is looked up in the envelope itself, as Debezium does (for a
    /// field another transform added there).
    fn value(&self, envelope: &Envelope) -> Result<Option<Box<RawValue>>, RawJsonError> {
        let payload = &envelope.payload;
        let parent = match &self.parent {
            None => return Ok(payload.get(&self.field).map(to_owned_raw)),
            Some(parent) => parent,
        };
        match payload.object(parent)? {
            Some(parent) if parent.contains(&self.field) => {
                Ok(parent.get(&self.field).map(to_owned_raw))
            }
            Some(_) => Ok(payload.get(&self.field).map(to_owned_raw)),
            // A null struct (`transaction` without --provide-transaction-metadata): null, when
            // the schema says the field exists (without schemas: when the struct is there).
            None => Ok(match &envelope.schema {
                Some(_) => self.schema(envelope)?.map(|_| raw_json::null()),
                None => payload.contains(parent).then(raw_json::null),
            }),
        }
    }

    /// The field's schema as an added, optional field named `new_name`; None without schemas
    /// or when the envelope schema has no such field (then Debezium adds nothing).
    fn schema(&self, envelope: &Envelope) -> Result<Option<RawObject>, RawJsonError> {
        let Some(envelope_schema) = &envelope.schema else {
            return Ok(None);
        };
        let in_parent = match &self.parent {
            None => None,
            Some(parent) => match field_schema(envelope_schema, parent)? {
                Some(parent_schema) => field_schema(&parent_schema, &self.field)?,
                None => None,
            },
        };
        let found = match in_parent {
            Some(found) => Some(found),
            None => field_schema(envelope_schema, &self.field)?,
        };
        Ok(found.map(|mut schema| {
            // Kafka Connect's copySchemaBasics(..).optional(): type, name, version, doc and
            // parameters are kept; the default is not; optional becomes true.
            schema.remove("field");
            schema.remove("default");
            schema.set("optional", raw_json::boolean(true));
            let mut ordered = RawObject::default();
            for key in ["type", "items", "keys", "values", "optional"] {
                if let Some(value) = schema.get(key) {
                    ordered.push(key, to_owned_raw(value));
                }
            }
            for key in ["name", "version", "doc", "parameters"] {
                if let Some(value) = schema.get(key) {
                    ordered.push(key, to_owned_raw(value));
                }
            }
            ordered.push("field", raw_json::string(&self.new_name));
            ordered
        }))
    }
}

/// Where an unqualified `add.fields` entry lives (Debezium's `determineStruct`).
fn default_parent(field: &str) -> Option<String> {
    match field {
        "id" | "total_order" | "data_collection_order" => Some("transaction".into()),
        "op" | "ts_ms" | "ts_us" | "ts_ns" => None,
        _ => Some("source".into()),
    }
}

fn to_owned_raw(raw: &RawValue) -> Box<RawValue> {
    raw.to_owned()
}

/// The schema of field `name` in a struct schema's `fields`, without its `"field"` key left out
/// (callers remove it when they need to).
fn field_schema(struct_schema: &RawObject, name: &str) -> Result<Option<RawObject>, RawJsonError> {
    let Some(fields) = struct_schema.get("fields") else {
        return Ok(None);
    };
    for field in raw_json::array(fields)? {
        let field = RawObject::parse(field.get())?;
        if field.string("field").as_deref() == Some(name) {
            return Ok(Some(field));
        }
    }
    Ok(None)
}

/// A change event as the transform reads it.
struct Envelope {
    /// The envelope's schema (`<topic>.Envelope`); None with `--no-schemas`.
    schema: Option<RawObject>,
    payload: RawObject,
}

impl Envelope {
    /// The change event in a record value, or None when the value is not one (a heartbeat,
    /// a logical message, a transaction record): Debezium passes those unchanged.
    fn read(value: &[u8], schemas_enabled: bool) -> Result<Option<Self>, RawJsonError> {
        let top = RawObject::parse_bytes(value)?;
        if schemas_enabled {
            let Some(schema) = top.object("schema")? else {
                return Ok(None);
            };
            if !schema
                .string("name")
                .is_some_and(|name| name.ends_with(".Envelope"))
            {
                return Ok(None);
            }
            let payload = top.required_object("payload")?;
            Ok(Some(Envelope {
                schema: Some(schema),
                payload,
            }))
        } else {
            // Without schemas, the shape tells: a change event has these four fields.
            let is_change = ["before", "after", "source", "op"]
                .iter()
                .all(|key| top.contains(key));
            Ok(is_change.then_some(Envelope {
                schema: None,
                payload: top,
            }))
        }
    }

    fn row_is_null(&self, which: &str) -> bool {
        self.payload.get(which).is_none_or(raw_json::is_null)
    }
}

/// The transform, configured.
#[derive(Debug, Clone)]
pub struct ExtractNewRecordState {
    deletes: DeleteAction,
    keep_tombstones: bool,
    /// rewrite modes: every flattened row gets `__deleted`.
    mark_deleted: bool,
    add_fields: Vec<FieldReference>,
    add_headers: Vec<FieldReference>,
    schemas_enabled: bool,
}

impl ExtractNewRecordState {
    pub fn new(options: &UnwrapOptions, schemas_enabled: bool) -> Result<Self, String> {
        let (deletes, keep_tombstones) = match (
            options.delete_tombstone_handling_mode,
            options.delete_handling_mode,
            options.drop_tombstones,
        ) {
            (Some(mode), legacy, drop) => {
                if legacy.is_some() || drop.is_some() {
                    tracing::warn!("delete.tombstone.handling.mode is set: delete.handling.mode and drop.tombstones are ignored");
                }
                match mode {
                    DeleteTombstoneHandling::Drop => (DeleteAction::Drop, false),
                    DeleteTombstoneHandling::Tombstone => (DeleteAction::NullRow, false),
                    DeleteTombstoneHandling::Rewrite => (DeleteAction::Rewrite, false),
                    DeleteTombstoneHandling::RewriteWithTombstone => (DeleteAction::Rewrite, true),
                    DeleteTombstoneHandling::DeleteToTombstone => (DeleteAction::Tombstone, false),
                }
            }
            (None, None, None) => (DeleteAction::NullRow, false),
            (None, legacy, drop) => {
                tracing::warn!("delete.handling.mode and drop.tombstones are Debezium 2.x options (removed in 3.x): use delete.tombstone.handling.mode");
                let deletes = match legacy.unwrap_or(LegacyDeleteHandling::Drop) {
                    LegacyDeleteHandling::None => DeleteAction::NullRow,
                    LegacyDeleteHandling::Drop => DeleteAction::Drop,
                    LegacyDeleteHandling::Rewrite => DeleteAction::Rewrite,
                };
                (deletes, !drop.unwrap_or(true))
            }
        };
        Ok(ExtractNewRecordState {
            deletes,
            keep_tombstones,
            mark_deleted: deletes == DeleteAction::Rewrite,
            add_fields: FieldReference::parse_list(&options.add_fields_prefix, &options.add_fields)
                .map_err(|e| format!("add.fields: {e}"))?,
            add_headers: FieldReference::parse_list(
                &options.add_headers_prefix,
                &options.add_headers,
            )
            .map_err(|e| format!("add.headers: {e}"))?,
            schemas_enabled,
        })
    }

    pub fn apply(&self, record: &OutputRecord) -> Result<Outcome, TransformError> {
        let Some(value) = &record.value else {
            if !self.keep_tombstones {
                return Ok(Outcome::Dropped);
            }
            let mut kept = record.clone();
            if let Some(op) = self.add_headers.iter().find(|h| h.field == "op") {
                kept.headers.push((op.new_name.clone(), b"d".to_vec()));
            }
            return Ok(Outcome::Replaced(kept));
        };
        let Some(envelope) = Envelope::read(value, self.schemas_enabled)? else {
            return Ok(Outcome::Unchanged);
        };
        let mut headers = record.headers.clone();
        for header in &self.add_headers {
            if let Some(value) = header.value(&envelope)? {
                headers.push((header.new_name.clone(), header_bytes(&value)));
            }
        }
        let with = |value: Option<Vec<u8>>| {
            Outcome::Replaced(OutputRecord {
                topic: Arc::clone(&record.topic),
                key: record.key.clone(),
                value,
                headers: headers.clone(),
            })
        };
        if envelope.row_is_null("after") {
            if envelope.row_is_null("before") {
                return Ok(Outcome::Dropped); // a truncate: Debezium drops it
            }
            return Ok(match self.deletes {
                DeleteAction::Drop => Outcome::Dropped,
                DeleteAction::Tombstone => with(None),
                DeleteAction::NullRow => with(Some(self.null_row(&envelope)?)),
                DeleteAction::Rewrite => with(Some(self.flatten(&envelope, "before", "true")?)),
            });
        }
        let value = self.flatten(&envelope, "after", "false")?;
        Ok(with(Some(value)))
    }

    /// The row under `which` (`after`, or `before` for a rewritten delete), with `__deleted`
    /// in the rewrite modes and the `add.fields`, as JsonConverter writes it.
    fn flatten(
        &self,
        envelope: &Envelope,
        which: &str,
        deleted: &str,
    ) -> Result<Vec<u8>, TransformError> {
        let mut row = envelope.payload.required_object(which)?;
        let mut added_schemas: Vec<Box<RawValue>> = Vec::new();
        if self.mark_deleted {
            row.push("__deleted", raw_json::string(deleted));
            added_schemas.push(raw_json::raw(
                r#"{"type":"string","optional":true,"field":"__deleted"}"#.to_string(),
            ));
        }
        for field in &self.add_fields {
            let Some(value) = field.value(envelope)? else {
                continue;
            };
            if let Some(schema) = field.schema(envelope)? {
                added_schemas.push(schema.into_raw());
            } else if envelope.schema.is_some() {
                continue; // not in the envelope's schema: Debezium adds nothing
            }
            row.push(&field.new_name, value);
        }
        let Some(envelope_schema) = &envelope.schema else {
            return Ok(row.to_json().into_bytes());
        };
        let mut schema = field_schema(envelope_schema, which)?
            .ok_or_else(|| RawJsonError::NotAnObject(format!("schema of {which}")))?;
        schema.remove("field");
        schema.remove("default");
        // Rebuilt by Kafka Connect's InsertField: the struct is required now.
        schema.set("optional", raw_json::boolean(false));
        let mut fields = match schema.get("fields") {
            Some(fields) => raw_json::array(fields)?,
            None => Vec::new(),
        };
        fields.extend(added_schemas);
        schema.set("fields", raw_json::array_json(&fields));
        Ok(with_schema(schema.into_raw(), row.into_raw()))
    }

    /// A delete in `tombstone` mode: the row schema (as in the envelope) and a null payload.
    fn null_row(&self, envelope: &Envelope) -> Result<Vec<u8>, TransformError> {
        let Some(envelope_schema) = &envelope.schema else {
            return Ok(b"null".to_vec());
        };
        let mut schema = field_schema(envelope_schema, "after")?
            .ok_or_else(|| RawJsonError::NotAnObject("schema of after".into()))?;
        schema.remove("field");
        Ok(with_schema(schema.into_raw(), raw_json::null()))
    }
}

fn with_schema(schema: Box<RawValue>, payload: Box<RawValue>) -> Vec<u8> {
    let mut top = RawObject::default();
    top.push("schema", schema);
    top.push("payload", payload);
    top.to_json().into_bytes()
}

/// A header value as Kafka Connect's `SimpleHeaderConverter` writes it. A null becomes an
/// empty value (Kafka Connect writes a header without value; our records cannot say that).
fn header_bytes(value: &RawValue) -> Vec<u8> {
    if raw_json::is_null(value) {
        return Vec::new();
    }
    match serde_json::from_str::<String>(value.get()) {
        Ok(text) => text.into_bytes(),
        Err(_) => value.get().as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const TOPIC: &str = "dbserver1.public.items";

    fn row_schema(field: &str) -> Value {
        json!({"type":"struct","fields":[
            {"type":"int32","optional":false,"field":"id"},
            {"type":"string","optional":true,"default":"new","field":"state"}
        ],"optional":true,"name":"dbserver1.public.items.Value","field":field})
    }

    fn envelope_schema() -> Value {
        json!({"type":"struct","fields":[
            row_schema("before"), row_schema("after"),
            {"type":"struct","fields":[
                {"type":"string","optional":false,"field":"version"},
                {"type":"string","optional":false,"field":"table"},
                {"type":"int64","optional":false,"field":"ts_ms"},
                {"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false"},"default":"false","field":"snapshot"},
                {"type":"int64","optional":true,"field":"lsn"}
            ],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},
            {"type":"struct","fields":[
                {"type":"string","optional":false,"field":"id"},
                {"type":"int64","optional":false,"field":"total_order"},
                {"type":"int64","optional":false,"field":"data_collection_order"}
            ],"optional":true,"name":"event.block","version":1,"field":"transaction"},
            {"type":"string","optional":false,"field":"op"},
            {"type":"int64","optional":true,"field":"ts_ms"}
        ],"optional":false,"name":"dbserver1.public.items.Envelope","version":2})
    }

    fn payload(op: &str, before: Value, after: Value) -> Value {
        json!({"before":before,"after":after,
            "source":{"version":"3.6.1.Final","table":"items","ts_ms":1700000000000i64,"snapshot":"false","lsn":24023128},
            "transaction":null,"op":op,"ts_ms":1700000000123i64})
    }

    fn record(value: Option<Value>, schemas: bool) -> OutputRecord {
        let key = if schemas {
            json!({"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"dbserver1.public.items.Key"},"payload":{"id":1}})
        } else {
            json!({"id":1})
        };
        OutputRecord {
            topic: Arc::from(TOPIC),
            key: Some(key.to_string().into_bytes()),
            value: value.map(|v| {
                let v = if schemas {
                    json!({"schema":envelope_schema(),"payload":v})
                } else {
                    v
                };
                v.to_string().into_bytes()
            }),
            headers: Vec::new(),
        }
    }

    fn unwrap_with(options: UnwrapOptions, schemas: bool) -> ExtractNewRecordState {
        let options = UnwrapOptions {
            add_fields_prefix: if options.add_fields_prefix.is_empty() {
                "__".into()
            } else {
                options.add_fields_prefix
            },
            add_headers_prefix: if options.add_headers_prefix.is_empty() {
                "__".into()
            } else {
                options.add_headers_prefix
            },
            ..options
        };
        ExtractNewRecordState::new(&options, schemas).unwrap()
    }

    fn mode(mode: DeleteTombstoneHandling) -> UnwrapOptions {
        UnwrapOptions {
            delete_tombstone_handling_mode: Some(mode),
            ..UnwrapOptions::default()
        }
    }

    /// The value bytes of the outcome as text (None: dropped; "<tombstone>": a null value).
    fn value_of(outcome: Outcome, input: &OutputRecord) -> Option<String> {
        match outcome {
            Outcome::Dropped => None,
            Outcome::Unchanged => Some(String::from_utf8(input.value.clone().unwrap()).unwrap()),
            Outcome::Replaced(r) => {
                assert_eq!(r.key, input.key, "the key is unchanged");
                assert_eq!(&*r.topic, TOPIC, "the topic is unchanged");
                Some(
                    r.value
                        .map(|v| String::from_utf8(v).unwrap())
                        .unwrap_or_else(|| "<tombstone>".into()),
                )
            }
        }
    }

    fn created() -> Value {
        payload("c", Value::Null, json!({"id":1,"state":"open"}))
    }
    fn deleted() -> Value {
        payload("d", json!({"id":1,"state":"done"}), Value::Null)
    }

    #[test]
    fn a_create_becomes_its_row_with_a_required_value_schema() {
        let input = record(Some(created()), true);
        let out = value_of(
            unwrap_with(UnwrapOptions::default(), true)
                .apply(&input)
                .unwrap(),
            &input,
        );
        assert_eq!(
            out.as_deref(),
            Some(concat!(
                r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},"#,
                r#"{"type":"string","optional":true,"default":"new","field":"state"}],"optional":false,"#,
                r#""name":"dbserver1.public.items.Value"},"payload":{"id":1,"state":"open"}}"#
            ))
        );
    }

    #[test]
    fn without_schemas_only_the_row_is_written() {
        let input = record(Some(created()), false);
        let unwrap = unwrap_with(UnwrapOptions::default(), false);
        assert_eq!(
            value_of(unwrap.apply(&input).unwrap(), &input).as_deref(),
            Some(r#"{"id":1,"state":"open"}"#)
        );
        let input = record(Some(deleted()), false);
        assert_eq!(
            value_of(unwrap.apply(&input).unwrap(), &input).as_deref(),
            Some("null")
        );
    }

    #[test]
    fn each_delete_mode_writes_what_debezium_documents() {
        let delete = record(Some(deleted()), true);
        let tombstone = record(None, true);
        let cases = [
            (DeleteTombstoneHandling::Drop, None, None),
            (
                DeleteTombstoneHandling::Tombstone,
                Some(concat!(
                    r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},"#,
                    r#"{"type":"string","optional":true,"default":"new","field":"state"}],"optional":true,"#,
                    r#""name":"dbserver1.public.items.Value"},"payload":null}"#
                )),
                None,
            ),
            (
                DeleteTombstoneHandling::Rewrite,
                Some(concat!(
                    r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},"#,
                    r#"{"type":"string","optional":true,"default":"new","field":"state"},"#,
                    r#"{"type":"string","optional":true,"field":"__deleted"}],"optional":false,"#,
                    r#""name":"dbserver1.public.items.Value"},"payload":{"id":1,"state":"done","__deleted":"true"}}"#
                )),
                None,
            ),
            (
                DeleteTombstoneHandling::RewriteWithTombstone,
                Some(concat!(
                    r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},"#,
                    r#"{"type":"string","optional":true,"default":"new","field":"state"},"#,
                    r#"{"type":"string","optional":true,"field":"__deleted"}],"optional":false,"#,
                    r#""name":"dbserver1.public.items.Value"},"payload":{"id":1,"state":"done","__deleted":"true"}}"#
                )),
                Some("<tombstone>"),
            ),
            (
                DeleteTombstoneHandling::DeleteToTombstone,
                Some("<tombstone>"),
                None,
            ),
        ];
        for (delete_mode, delete_out, tombstone_out) in cases {
            let unwrap = unwrap_with(mode(delete_mode), true);
            assert_eq!(
                value_of(unwrap.apply(&delete).unwrap(), &delete).as_deref(),
                delete_out,
                "{delete_mode:?}: the delete"
            );
            assert_eq!(
                value_of(unwrap.apply(&tombstone).unwrap(), &tombstone).as_deref(),
                tombstone_out,
                "{delete_mode:?}: the tombstone"
            );
        }
    }

    #[test]
    fn rewrite_marks_creates_and_updates_as_not_deleted() {
        let input = record(Some(created()), false);
        let unwrap = unwrap_with(mode(DeleteTombstoneHandling::Rewrite), false);
        assert_eq!(
            value_of(unwrap.apply(&input).unwrap(), &input).as_deref(),
            Some(r#"{"id":1,"state":"open","__deleted":"false"}"#)
        );
    }

    #[test]
    fn the_legacy_options_behave_as_in_debezium_2() {
        let delete = record(Some(deleted()), false);
        let tombstone = record(None, false);
        let legacy = |handling: Option<LegacyDeleteHandling>, drop: Option<bool>| {
            unwrap_with(
                UnwrapOptions {
                    delete_handling_mode: handling,
                    drop_tombstones: drop,
                    ..UnwrapOptions::default()
                },
                false,
            )
        };
        // 2.x defaults: delete.handling.mode=drop, drop.tombstones=true.
        let defaults = legacy(None, Some(true));
        assert_eq!(
            value_of(defaults.apply(&delete).unwrap(), &delete),
            None,
            "delete dropped"
        );
        assert_eq!(
            value_of(defaults.apply(&tombstone).unwrap(), &tombstone),
            None
        );
        let none_keep = legacy(Some(LegacyDeleteHandling::None), Some(false));
        assert_eq!(
            value_of(none_keep.apply(&delete).unwrap(), &delete).as_deref(),
            Some("null")
        );
        assert_eq!(
            value_of(none_keep.apply(&tombstone).unwrap(), &tombstone).as_deref(),
            Some("<tombstone>")
        );
        let rewrite = legacy(Some(LegacyDeleteHandling::Rewrite), None);
        assert_eq!(
            value_of(rewrite.apply(&delete).unwrap(), &delete).as_deref(),
            Some(r#"{"id":1,"state":"done","__deleted":"true"}"#)
        );
    }

    #[test]
    fn add_fields_appends_envelope_fields_with_their_types() {
        let input = record(Some(created()), true);
        let unwrap = unwrap_with(
            UnwrapOptions {
                add_fields: "op,table,lsn,source.ts_ms,snapshot,id,ts_ms:event_time,nope".into(),
                ..UnwrapOptions::default()
            },
            true,
        );
        let out = value_of(unwrap.apply(&input).unwrap(), &input).unwrap();
        let out: Value = serde_json::from_str(&out).unwrap();
        let added: Vec<Value> = out["schema"]["fields"].as_array().unwrap()[2..].to_vec();
        assert_eq!(
            added,
            vec![
                json!({"type":"string","optional":true,"field":"__op"}),
                json!({"type":"string","optional":true,"field":"__table"}),
                json!({"type":"int64","optional":true,"field":"__lsn"}),
                json!({"type":"int64","optional":true,"field":"__source_ts_ms"}),
                json!({"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false"},"field":"__snapshot"}),
                json!({"type":"string","optional":true,"field":"__id"}),
                json!({"type":"int64","optional":true,"field":"__event_time"}),
            ]
        );
        // Key order as Kafka Connect writes it (type, optional, name, version, parameters, field).
        assert!(out.to_string().contains(r#"{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false"},"field":"__snapshot"}"#));
        assert_eq!(
            out["payload"],
            json!({"id":1,"state":"open","__op":"c","__table":"items","__lsn":24023128,
                "__source_ts_ms":1700000000000i64,"__snapshot":"false","__id":null,"__event_time":1700000000123i64})
        );
    }

    #[test]
    fn add_fields_without_schemas_and_a_custom_prefix() {
        let input = record(Some(created()), false);
        let unwrap = unwrap_with(
            UnwrapOptions {
                add_fields: "op, source.lsn".into(),
                add_fields_prefix: "cdc_".into(),
                ..UnwrapOptions::default()
            },
            false,
        );
        assert_eq!(
            value_of(unwrap.apply(&input).unwrap(), &input).as_deref(),
            Some(r#"{"id":1,"state":"open","cdc_op":"c","cdc_source_lsn":24023128}"#)
        );
    }

    #[test]
    fn add_headers_writes_simple_header_converter_values() {
        let input = record(Some(created()), true);
        let unwrap = unwrap_with(
            UnwrapOptions {
                add_headers: "op,lsn,table".into(),
                delete_tombstone_handling_mode: Some(DeleteTombstoneHandling::RewriteWithTombstone),
                ..UnwrapOptions::default()
            },
            true,
        );
        let Outcome::Replaced(out) = unwrap.apply(&input).unwrap() else {
            panic!("replaced")
        };
        assert_eq!(
            out.headers,
            vec![
                ("__op".to_string(), b"c".to_vec()),
                ("__lsn".to_string(), b"24023128".to_vec()),
                ("__table".to_string(), b"items".to_vec()),
            ]
        );
        let Outcome::Replaced(kept) = unwrap.apply(&record(None, true)).unwrap() else {
            panic!("kept tombstone")
        };
        assert_eq!(kept.headers, vec![("__op".to_string(), b"d".to_vec())]);
        assert_eq!(kept.value, None);
    }

    #[test]
    fn records_that_are_not_change_events_pass_and_truncates_are_dropped() {
        let unwrap = unwrap_with(UnwrapOptions::default(), true);
        let heartbeat = OutputRecord {
            topic: Arc::from("__debezium-heartbeat.dbserver1"),
            key: None,
            value: Some(br#"{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1}}"#.to_vec()),
            headers: Vec::new(),
        };
        assert!(matches!(
            unwrap.apply(&heartbeat).unwrap(),
            Outcome::Unchanged
        ));
        let truncate = record(Some(payload("t", Value::Null, Value::Null)), true);
        assert!(matches!(unwrap.apply(&truncate).unwrap(), Outcome::Dropped));
        let message = OutputRecord {
            value: Some(br#"{"op":"m","ts_ms":1,"source":{},"message":{"prefix":"p"}}"#.to_vec()),
            ..heartbeat.clone()
        };
        let without_schemas = unwrap_with(UnwrapOptions::default(), false);
        assert!(matches!(
            without_schemas.apply(&message).unwrap(),
            Outcome::Unchanged
        ));
    }

    #[test]
    fn field_references_are_named_as_in_debezium() {
        let parsed =
            FieldReference::parse_list("__", "op,source.ts_ms,lsn:pos,total_order").unwrap();
        let names: Vec<(Option<&str>, &str, &str)> = parsed
            .iter()
            .map(|f| (f.parent.as_deref(), f.field.as_str(), f.new_name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (None, "op", "__op"),
                (Some("source"), "ts_ms", "__source_ts_ms"),
                (Some("source"), "lsn", "__pos"),
                (Some("transaction"), "total_order", "__total_order"),
            ]
        );
        assert!(FieldReference::parse("__", "a:b:c").is_err());
    }
}
