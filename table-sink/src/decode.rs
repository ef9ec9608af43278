//! Kafka record -> [`RowChange`]: the sink's decoder (sans-IO: JSON values in, changes out).
//!
//! Three shapes of value arrive, told apart by looking at them:
//!
//! ```text
//! {"schema":{..},"payload":{"before":..,"after":..,"source":{..},"op":"u",..}}
//!     a Debezium change event, JSON with schema (JsonConverter schemas.enable=true; also what
//!     the Avro path yields, see `crate::input`): types come from the schema
//! {"before":..,"after":{..},"source":{..},"op":"c",..}
//!     the same without schema: types are inferred from the JSON values (see below)
//! {"order_id":42,"status":"NEW",..}        (or {"schema":..,"payload":{..}} of a struct)
//!     a flat event (the outbox topic, the producer's direct-publish events): one row of the
//!     value's fields
//! ```
//!
//! | record                          | change                          |
//! |---------------------------------|---------------------------------|
//! | op `c`, `r`, `u`                | Upsert of `after`               |
//! | op `d`, a tombstone (null value)| Delete of the key (`--delete-enabled`, on by default) |
//! | op `t`                          | Truncate (`--truncate-enabled`, off by default) |
//! | op `m` (logical message)        | nothing                         |
//! | a flat event                    | Upsert of the value             |
//!
//! The default table of a change event is `source.schema`.`source.table` (a mirror keeps the
//! source's names); of a flat event the topic with dots as underscores (`outbox.event.order`
//! -> `outbox_event_order`). `--route` renames afterwards ([`crate::route`]).
//!
//! **Keys** (`--primary-key-mode`, Debezium JDBC sink's `primary.key.mode`): `record_key` takes
//! the fields of the Kafka key (a struct; a primitive key, like the outbox's `"42"`, becomes the
//! one column `--primary-key-fields` names); `record_value` takes `--primary-key-fields` from the
//! value (Kafka Connect's `ValueToKey`); `none` has no key (inserts only, deletes skipped).
//!
//! **Headers** (`--header-to-field HEADER=FIELD`, Kafka Connect's `HeaderFrom` with
//! `operation=copy`): the text of a record header becomes a text field of the row, before the
//! key is chosen, so a header can be the key. The outbox topic carries its event id only in the
//! header `id`; `--header-to-field id=event_id --primary-key-mode record_value
//! --primary-key-fields event_id` makes it the row's key:
//!
//! ```text
//! headers: id = 5f0c…  eventType = OrderPaid        value: {"id":42,"status":"PAID",..}
//!   --header-to-field id=event_id,eventType=event_type
//! row:     event_id = "5f0c…", event_type = "OrderPaid", id = 42, status = "PAID", ..
//! ```
//!
//! A header value is taken as UTF-8 text (a JSON string, as a JSON header converter writes
//! it, loses its quotes); a missing header gives a null field; the last header of that name
//! wins; a field of the same name in the value is replaced. Change events get the field in
//! their row image (`after`, or `before` for a keyed delete).
//!
//! **Without a schema** the types are guessed from JSON: `true` -> boolean, an integer ->
//! int64, any other number -> float64, a string -> text, an object or array -> json, `null` ->
//! a nullable text. So a Debezium decimal (base64 bytes), timestamp (an integer) or uuid
//! arrives as text or bigint, not as numeric/timestamp/uuid: use JSON with schema (or Avro)
//! when the column types matter.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{Map, Value as Json};

use crate::change::{Field, FieldType, Row, RowChange, TableId, Value};
use crate::config::PrimaryKeyMode;

/// Why a record cannot become a change: the text goes into the dead letter's headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the {part} is not JSON: {reason}")]
    NotJson { part: &'static str, reason: String },
    #[error("the value is not a JSON object (a change event or a flat event), but {0}")]
    NotAnObject(&'static str),
    #[error("unknown op `{0}` (expected c, r, u, d, t or m)")]
    UnknownOp(String),
    #[error("op `{op}` without `{field}`")]
    MissingImage { op: String, field: &'static str },
    #[error("a change event without `source.table`")]
    NoSourceTable,
    #[error("field `{field}`: {reason}")]
    BadField { field: String, reason: String },
    #[error("the key: {0}")]
    BadKey(String),
}

fn bad(field: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::BadField {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// The decoding settings (from the command line).
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub primary_key_mode: PrimaryKeyMode,
    pub primary_key_fields: Vec<String>,
    pub delete_enabled: bool,
    pub truncate_enabled: bool,
    /// `--header-to-field`: headers copied into the row as text fields.
    pub header_to_field: Vec<HeaderToField>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            primary_key_mode: PrimaryKeyMode::RecordKey,
            primary_key_fields: Vec::new(),
            delete_enabled: true,
            truncate_enabled: false,
            header_to_field: Vec::new(),
        }
    }
}

/// One `--header-to-field HEADER=FIELD`: copy the record header `header` into the field `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderToField {
    pub header: String,
    pub field: String,
}

impl HeaderToField {
    /// Parses `HEADER=FIELD` (`id=event_id`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().split_once('=') {
            Some((header, field)) if !header.trim().is_empty() && !field.trim().is_empty() => {
                Ok(Self {
                    header: header.trim().to_string(),
                    field: field.trim().to_string(),
                })
            }
            _ => Err(format!(
                "--header-to-field `{text}`: expected HEADER=FIELD, e.g. id=event_id"
            )),
        }
    }
}

/// A record's headers as they come from Kafka: (name, value), in order, names may repeat.
pub type Headers = [(String, Option<Vec<u8>>)];

/// The fields `--header-to-field` asks for, from the record's headers.
pub(crate) fn header_fields(
    mapping: &[HeaderToField],
    headers: &Headers,
) -> Result<Vec<(Field, Value)>, DecodeError> {
    mapping
        .iter()
        .map(|m| {
            let bytes = headers
                .iter()
                .rev()
                .find(|(name, _)| *name == m.header)
                .and_then(|(_, value)| value.as_deref());
            let value = match bytes {
                None => Value::Null,
                Some(bytes) => {
                    let text = std::str::from_utf8(bytes).map_err(|_| {
                        bad(&m.field, format!("header `{}` is not UTF-8 text", m.header))
                    })?;
                    match serde_json::from_str::<Json>(text) {
                        Ok(Json::String(inner)) if text.starts_with('"') => Value::Text(inner),
                        _ => Value::Text(text.to_string()),
                    }
                }
            };
            Ok((Field::new(&m.field, FieldType::Text, true), value))
        })
        .collect()
}

/// `row` with the header fields set (replacing a field of the same name).
pub(crate) fn with_header_fields(mut row: Row, extra: &[(Field, Value)]) -> Row {
    for (field, value) in extra {
        match row.fields.iter().position(|f| f.name == field.name) {
            Some(i) => {
                row.fields[i] = field.clone();
                row.values[i] = value.clone();
            }
            None => {
                row.fields.push(field.clone());
                row.values.push(value.clone());
            }
        }
    }
    row
}

/// Parses the bytes of a key or value as JSON (`part` names it in the error).
pub fn parse_json(part: &'static str, bytes: &[u8]) -> Result<Json, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson {
        part,
        reason: e.to_string(),
    })
}

/// Decodes records. It remembers, per topic, the table its last change went to: a tombstone
/// carries no `source`, and must delete from that same table.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    options: DecodeOptions,
    table_of_topic: HashMap<String, TableId>,
    /// The source commit time of the last change event decoded (for the latency metric).
    source_commit_us: Option<i64>,
}

impl Decoder {
    pub fn new(options: DecodeOptions) -> Self {
        Self {
            options,
            table_of_topic: HashMap::new(),
            source_commit_us: None,
        }
    }

    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// The source commit time (microseconds since the epoch: `source.ts_us`, else `ts_ms`) of
    /// the change event decoded last, once; `None` for other records.
    pub fn take_source_commit_us(&mut self) -> Option<i64> {
        self.source_commit_us.take()
    }

    /// One record (key and value already parsed as JSON; `None` = a null key / a tombstone)
    /// -> the change it asks for, or `None` when it asks for nothing.
    pub fn decode(
        &mut self,
        topic: &str,
        key: Option<&Json>,
        value: Option<&Json>,
    ) -> Result<Option<RowChange>, DecodeError> {
        self.decode_with_headers(topic, key, value, &[])
    }

    /// [`Decoder::decode`] for a record with headers (`--header-to-field` reads them).
    pub fn decode_with_headers(
        &mut self,
        topic: &str,
        key: Option<&Json>,
        value: Option<&Json>,
        headers: &Headers,
    ) -> Result<Option<RowChange>, DecodeError> {
        match value {
            None => self.decode_parts(topic, key, None, None, headers),
            Some(value) => {
                let (schema, payload) = split_schema(value);
                self.decode_parts(topic, key, schema, Some(payload), headers)
            }
        }
    }

    /// [`Decoder::decode_with_headers`] for a value already split into its schema and payload
    /// (`payload` `None` = a tombstone): what [`crate::input::Input::value`] gives.
    pub fn decode_parts(
        &mut self,
        topic: &str,
        key: Option<&Json>,
        schema: Option<&Json>,
        payload: Option<&Json>,
        headers: &Headers,
    ) -> Result<Option<RowChange>, DecodeError> {
        let Some(payload) = payload else {
            return self.tombstone(topic, key);
        };
        let Json::Object(object) = payload else {
            return Err(DecodeError::NotAnObject(json_kind(payload)));
        };
        self.source_commit_us = None;
        let extra = header_fields(&self.options.header_to_field, headers)?;
        let change = if is_change_event(schema, object) {
            let source = object.get("source");
            let ts = |name: &str| source.and_then(|s| s.get(name)).and_then(Json::as_i64);
            self.source_commit_us = ts("ts_us").or(ts("ts_ms").map(|ms| ms * 1000));
            self.change_event(key, schema, object, &extra)?
        } else {
            let table = TableId::new(None, &topic.replace('.', "_"));
            let row = with_header_fields(struct_row(schema, payload)?, &extra);
            let row = self.keyed(row, key)?;
            Some(RowChange::Upsert { table, row })
        };
        if let Some(change) = &change {
            self.table_of_topic
                .insert(topic.to_string(), change.table().clone());
        }
        Ok(change)
    }

    /// [`Self::decode_parts`] for a change event whose value schema has a plan: the payload
    /// is read from its bytes in one pass ([`crate::envelope_plan`]). `None`: this payload is
    /// not what the plan expects; decode it the general way.
    pub fn decode_planned(
        &mut self,
        topic: &str,
        key: Option<&Json>,
        plan: &crate::envelope_plan::EnvelopePlan,
        payload: &[u8],
        headers: &Headers,
    ) -> Option<Result<Option<RowChange>, DecodeError>> {
        let (decoded, commit_us) = plan.decode(self, key, payload, headers)?;
        self.source_commit_us = commit_us;
        if let Ok(Some(change)) = &decoded {
            self.table_of_topic
                .insert(topic.to_string(), change.table().clone());
        }
        Some(decoded)
    }

    fn tombstone(
        &mut self,
        topic: &str,
        key: Option<&Json>,
    ) -> Result<Option<RowChange>, DecodeError> {
        if !self.options.delete_enabled
            || self.options.primary_key_mode != PrimaryKeyMode::RecordKey
        {
            return Ok(None);
        }
        let Some(key) = key else {
            return Ok(None);
        };
        let table = self
            .table_of_topic
            .get(topic)
            .cloned()
            .unwrap_or_else(|| table_of_topic(topic));
        let key = self.key_row(key)?;
        Ok(Some(RowChange::Delete { table, key }))
    }

    fn change_event(
        &self,
        key: Option<&Json>,
        schema: Option<&Json>,
        event: &Map<String, Json>,
        extra: &[(Field, Value)],
    ) -> Result<Option<RowChange>, DecodeError> {
        let op = event.get("op").and_then(Json::as_str).unwrap_or_default();
        let field_schema = |name: &str| schema.and_then(|s| struct_field_schema(s, name));
        let image = |name: &'static str| -> Result<Option<Row>, DecodeError> {
            match event.get(name) {
                None | Some(Json::Null) => Ok(None),
                Some(payload) => struct_row(field_schema(name), payload)
                    .map(|row| Some(with_header_fields(row, extra))),
            }
        };
        if op == "m" {
            return Ok(None);
        }
        let source = event.get("source").and_then(Json::as_object);
        let table = source
            .and_then(|s| s.get("table"))
            .and_then(Json::as_str)
            .ok_or(DecodeError::NoSourceTable)?;
        let schema_name = source.and_then(|s| s.get("schema")).and_then(Json::as_str);
        let table = TableId::new(schema_name, table);
        self.change_of(op, table, key, image)
    }

    /// What a change event's `op` asks of `table`; `image("after")` / `image("before")` give
    /// the row images (with the header fields). Shared by the general path above and the
    /// planned one ([`crate::envelope_plan`]).
    pub(crate) fn change_of(
        &self,
        op: &str,
        table: TableId,
        key: Option<&Json>,
        mut image: impl FnMut(&'static str) -> Result<Option<Row>, DecodeError>,
    ) -> Result<Option<RowChange>, DecodeError> {
        match op {
            "c" | "r" | "u" => {
                let after = image("after")?.ok_or(DecodeError::MissingImage {
                    op: op.to_string(),
                    field: "after",
                })?;
                let row = self.keyed(after, key)?;
                Ok(Some(RowChange::Upsert { table, row }))
            }
            "d" => {
                if !self.options.delete_enabled {
                    return Ok(None);
                }
                let key = match self.options.primary_key_mode {
                    PrimaryKeyMode::None => return Ok(None),
                    PrimaryKeyMode::RecordKey => {
                        let key = key.ok_or_else(|| {
                            DecodeError::BadKey("a delete without a record key".into())
                        })?;
                        self.key_row(key)?
                    }
                    PrimaryKeyMode::RecordValue => {
                        let before = image("before")?.ok_or(DecodeError::MissingImage {
                            op: op.to_string(),
                            field: "before",
                        })?;
                        self.keyed(before, None)?.key_row()
                    }
                };
                Ok(Some(RowChange::Delete { table, key }))
            }
            "t" => Ok(self
                .options
                .truncate_enabled
                .then_some(RowChange::Truncate { table })),
            other => Err(DecodeError::UnknownOp(other.to_string())),
        }
    }

    /// The key of a record as a row of key fields.
    fn key_row(&self, key: &Json) -> Result<Row, DecodeError> {
        let (schema, payload) = split_schema(key);
        let mut row = match payload {
            Json::Object(_) => struct_row(schema, payload).map_err(key_error)?,
            Json::Null => return Err(DecodeError::BadKey("the record key is null".into())),
            primitive => {
                let Some(name) = self.options.primary_key_fields.first() else {
                    return Err(DecodeError::BadKey(format!(
                        "the record key is a {} ({}), not a struct: name its column with \
                         --primary-key-fields",
                        json_kind(primitive),
                        short(primitive)
                    )));
                };
                let (ty, value) = match schema {
                    Some(schema) => {
                        let ty = field_type(schema).map_err(key_error)?;
                        (
                            ty.clone(),
                            convert(name, schema, &ty, primitive).map_err(key_error)?,
                        )
                    }
                    None => infer(primitive),
                };
                Row {
                    fields: vec![Field::new(name, ty, false)],
                    values: vec![value],
                    key: Vec::new(),
                }
            }
        };
        if !self.options.primary_key_fields.is_empty() && row.fields.len() > 1 {
            let mut fields = Vec::new();
            let mut values = Vec::new();
            for name in &self.options.primary_key_fields {
                let i = row
                    .fields
                    .iter()
                    .position(|f| &f.name == name)
                    .ok_or_else(|| {
                        DecodeError::BadKey(format!("the record key has no field `{name}`"))
                    })?;
                fields.push(row.fields[i].clone());
                values.push(row.values[i].clone());
            }
            row.fields = fields;
            row.values = values;
        }
        row.key = row.fields.iter().map(|f| f.name.clone()).collect();
        check_key(&row)?;
        Ok(row)
    }

    /// Gives `row` its key as `--primary-key-mode` says; key fields the value lacks are taken
    /// from the record key.
    fn keyed(&self, mut row: Row, key: Option<&Json>) -> Result<Row, DecodeError> {
        match self.options.primary_key_mode {
            PrimaryKeyMode::None => {
                row.key.clear();
                Ok(row)
            }
            PrimaryKeyMode::RecordValue => {
                row.key = self.options.primary_key_fields.clone();
                for name in &row.key {
                    if row.field(name).is_none() {
                        return Err(DecodeError::BadKey(format!(
                            "the value has no field `{name}` (--primary-key-fields)"
                        )));
                    }
                }
                check_key(&row)?;
                Ok(row)
            }
            PrimaryKeyMode::RecordKey => {
                let key_row = match key {
                    Some(key) => self.key_row(key)?,
                    None => {
                        return Err(DecodeError::BadKey(
                            "the record has no key (--primary-key-mode record_key): use \
                             record_value with --primary-key-fields, or none"
                                .into(),
                        ))
                    }
                };
                let mut fields = Vec::new();
                let mut values = Vec::new();
                for (field, value) in key_row.fields.iter().zip(&key_row.values) {
                    if row.field(&field.name).is_none() {
                        fields.push(field.clone());
                        values.push(value.clone());
                    }
                }
                fields.append(&mut row.fields);
                values.append(&mut row.values);
                let row = Row {
                    fields,
                    values,
                    key: key_row.key,
                };
                check_key(&row)?;
                Ok(row)
            }
        }
    }
}

fn key_error(e: DecodeError) -> DecodeError {
    DecodeError::BadKey(e.to_string())
}

/// Every key field present and not null, of a type a key can have.
fn check_key(row: &Row) -> Result<(), DecodeError> {
    for name in &row.key {
        let Some(field) = row.field(name) else {
            return Err(DecodeError::BadKey(format!("no field `{name}`")));
        };
        if row.get(name).is_some_and(Value::is_null) {
            return Err(DecodeError::BadKey(format!("key field `{name}` is null")));
        }
        if !field.ty.can_be_key() {
            return Err(DecodeError::BadKey(format!(
                "key field `{name}` is of type {:?}, which cannot be a key",
                field.ty
            )));
        }
    }
    Ok(())
}

/// The table a topic's tombstone goes to when no change of that topic was seen yet:
/// `prefix.schema.table` -> `schema.table` (Debezium's topic names), else dots to underscores.
pub fn table_of_topic(topic: &str) -> TableId {
    let parts: Vec<&str> = topic.split('.').collect();
    if parts.len() >= 3 {
        TableId::new(Some(parts[parts.len() - 2]), parts[parts.len() - 1])
    } else {
        TableId::new(None, &topic.replace('.', "_"))
    }
}

/// `{"schema":S,"payload":P}` -> (Some(S), P); anything else -> (None, itself).
fn split_schema(json: &Json) -> (Option<&Json>, &Json) {
    match json {
        Json::Object(o)
            if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload") =>
        {
            (o.get("schema").filter(|s| !s.is_null()), &o["payload"])
        }
        other => (None, other),
    }
}

pub(crate) fn is_change_event(schema: Option<&Json>, payload: &Map<String, Json>) -> bool {
    let named_envelope = schema
        .and_then(|s| s.get("name"))
        .and_then(Json::as_str)
        .is_some_and(|n| n.ends_with(".Envelope"));
    named_envelope
        || (payload.get("op").is_some_and(Json::is_string)
            && payload.contains_key("source")
            && (payload.contains_key("after") || payload.contains_key("before")))
}

fn struct_field_schema<'a>(schema: &'a Json, name: &str) -> Option<&'a Json> {
    schema
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Json::as_str) == Some(name))
}

/// A struct payload (with its Connect schema, or without: inferred) -> a row without key.
fn struct_row(schema: Option<&Json>, payload: &Json) -> Result<Row, DecodeError> {
    let Json::Object(object) = payload else {
        return Err(DecodeError::NotAnObject(json_kind(payload)));
    };
    let mut fields = Vec::new();
    let mut values = Vec::new();
    match schema
        .and_then(|s| s.get("fields"))
        .and_then(Json::as_array)
    {
        Some(schema_fields) => {
            for field_schema in schema_fields {
                let name = field_schema
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("?", "a schema field without a name"))?;
                let ty = field_type(field_schema).map_err(|r| bad(name, r.to_string()))?;
                let optional = field_schema
                    .get("optional")
                    .and_then(Json::as_bool)
                    .unwrap_or(false);
                let value = convert(
                    name,
                    field_schema,
                    &ty,
                    object.get(name).unwrap_or(&Json::Null),
                )?;
                fields.push(Field::new(name, ty, optional));
                values.push(value);
            }
        }
        None => {
            for (name, json) in object {
                let (ty, value) = infer(json);
                fields.push(Field::new(name, ty, true));
                values.push(value);
            }
        }
    }
    Ok(Row {
        fields,
        values,
        key: Vec::new(),
    })
}

/// A type guessed from a JSON value (no schema): see the module comment.
pub fn infer(json: &Json) -> (FieldType, Value) {
    match json {
        Json::Null => (FieldType::Text, Value::Null),
        Json::Bool(b) => (FieldType::Boolean, Value::Bool(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => (FieldType::Int64, Value::Int(i)),
            None => (
                FieldType::Float64,
                Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            ),
        },
        Json::String(s) => (FieldType::Text, Value::Text(s.clone())),
        other => (FieldType::Json, Value::Json(other.clone())),
    }
}

fn name_of(schema: &Json) -> &str {
    schema
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
}

fn parameter(schema: &Json, name: &str) -> Option<String> {
    match schema.get("parameters")?.get(name)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The [`FieldType`] of a Connect schema (the logical name first, then the wire type).
pub fn field_type(schema: &Json) -> Result<FieldType, DecodeError> {
    let kind = schema
        .get("type")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let ty = match name_of(schema) {
        "org.apache.kafka.connect.data.Decimal" => FieldType::Decimal {
            precision: parameter(schema, "connect.decimal.precision").and_then(|p| p.parse().ok()),
            scale: parameter(schema, "scale")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        },
        "io.debezium.data.VariableScaleDecimal" => FieldType::VariableScaleDecimal,
        "io.debezium.data.Uuid" => FieldType::Uuid,
        "io.debezium.data.Json" => FieldType::Json,
        "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => FieldType::Date,
        "io.debezium.time.Time"
        | "org.apache.kafka.connect.data.Time"
        | "io.debezium.time.MicroTime"
        | "io.debezium.time.NanoTime" => FieldType::Time,
        "io.debezium.time.Timestamp"
        | "org.apache.kafka.connect.data.Timestamp"
        | "io.debezium.time.MicroTimestamp"
        | "io.debezium.time.NanoTimestamp" => FieldType::Timestamp,
        "io.debezium.time.ZonedTimestamp" => FieldType::TimestampTz,
        "io.debezium.time.ZonedTime" => FieldType::TimeTz,
        "io.debezium.time.MicroDuration" => FieldType::Interval,
        _ => match kind {
            "boolean" => FieldType::Boolean,
            "int8" => FieldType::Int8,
            "int16" => FieldType::Int16,
            "int32" => FieldType::Int32,
            "int64" => FieldType::Int64,
            "float" | "float32" => FieldType::Float32,
            "double" | "float64" => FieldType::Float64,
            "string" => FieldType::Text,
            "bytes" => FieldType::Bytes,
            "array" => {
                let items = schema
                    .get("items")
                    .ok_or_else(|| bad("?", "an array schema without items"))?;
                FieldType::Array(Box::new(field_type(items)?))
            }
            "map" | "struct" => FieldType::Json,
            other => return Err(bad("?", format!("unknown schema type `{other}`"))),
        },
    };
    Ok(ty)
}

/// One JSON payload value under its schema -> a normalised [`Value`].
pub(crate) fn convert(
    name: &str,
    schema: &Json,
    ty: &FieldType,
    json: &Json,
) -> Result<Value, DecodeError> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let int = || {
        json.as_i64()
            .ok_or_else(|| bad(name, format!("expected an integer, found {}", short(json))))
    };
    let text = || {
        json.as_str()
            .ok_or_else(|| bad(name, format!("expected a string, found {}", short(json))))
    };
    let logical = name_of(schema);
    let value = match ty {
        FieldType::Boolean => Value::Bool(
            json.as_bool()
                .ok_or_else(|| bad(name, format!("expected a boolean, found {}", short(json))))?,
        ),
        FieldType::Int8
        | FieldType::Int16
        | FieldType::Int32
        | FieldType::Int64
        | FieldType::Interval => Value::Int(int()?),
        FieldType::Float32 | FieldType::Float64 => Value::Float(match json {
            Json::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Json::String(s) => match s.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                other => return Err(bad(name, format!("`{other}` is not a number"))),
            },
            other => {
                return Err(bad(
                    name,
                    format!("expected a number, found {}", short(other)),
                ))
            }
        }),
        FieldType::Text => Value::Text(match json {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }),
        FieldType::Bytes => Value::Bytes(base64_bytes(name, text()?)?),
        FieldType::Decimal { scale, .. } => {
            let unscaled = base64_bytes(name, text()?)?;
            Value::Decimal(decimal_text(&unscaled, *scale as i32))
        }
        FieldType::VariableScaleDecimal => {
            let scale = json
                .get("scale")
                .and_then(Json::as_i64)
                .ok_or_else(|| bad(name, "a VariableScaleDecimal without `scale`"))?;
            let value = json
                .get("value")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(name, "a VariableScaleDecimal without `value`"))?;
            Value::Decimal(decimal_text(&base64_bytes(name, value)?, scale as i32))
        }
        FieldType::Uuid => Value::Uuid(
            text()?
                .parse()
                .map_err(|e| bad(name, format!("not a uuid: {e}")))?,
        ),
        FieldType::Json => match (logical, json) {
            ("io.debezium.data.Json", Json::String(s)) => Value::Json(
                serde_json::from_str(s).map_err(|e| bad(name, format!("not JSON text: {e}")))?,
            ),
            (_, other) => Value::Json(other.clone()),
        },
        FieldType::Date => {
            let days = int()?;
            Value::Date(i32::try_from(days).map_err(|_| bad(name, "date out of range"))?)
        }
        FieldType::Time => Value::TimeMicros(match logical {
            "io.debezium.time.MicroTime" => int()?,
            "io.debezium.time.NanoTime" => int()? / 1000,
            _ => int()?.saturating_mul(1000),
        }),
        FieldType::Timestamp => Value::TimestampMicros(match logical {
            "io.debezium.time.MicroTimestamp" => int()?,
            "io.debezium.time.NanoTimestamp" => int()? / 1000,
            _ => int()?.saturating_mul(1000),
        }),
        FieldType::TimestampTz | FieldType::TimeTz => Value::TimestampTz(text()?.to_string()),
        FieldType::Array(items) => {
            let array = json
                .as_array()
                .ok_or_else(|| bad(name, format!("expected an array, found {}", short(json))))?;
            let item_schema = schema.get("items").unwrap_or(&Json::Null);
            Value::Array(
                array
                    .iter()
                    .map(|item| convert(name, item_schema, items, item))
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    Ok(value)
}

fn base64_bytes(name: &str, text: &str) -> Result<Vec<u8>, DecodeError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(name, format!("not base64: {e}")))
}

/// A big-endian two's-complement unscaled integer and a scale -> the exact decimal text
/// (`[0x12, 0x84]`, scale 2 -> `47.40`).
pub fn decimal_text(unscaled: &[u8], scale: i32) -> String {
    let negative = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude, big-endian: negate two's complement when negative.
    let mut magnitude: Vec<u8> = if negative {
        let mut bytes: Vec<u8> = unscaled.iter().map(|b| !b).collect();
        for byte in bytes.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        bytes
    } else {
        unscaled.to_vec()
    };
    // Base 256 -> base 10 by repeated division.
    let mut digits = Vec::new();
    while magnitude.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in magnitude.iter_mut() {
            let current = (remainder << 8) | u32::from(*byte);
            *byte = (current / 10) as u8;
            remainder = current % 10;
        }
        digits.push(b'0' + remainder as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    let mut text = String::from_utf8(digits).unwrap_or_default();
    if scale > 0 {
        let scale = scale as usize;
        if text.len() <= scale {
            text = format!("{}{text}", "0".repeat(scale + 1 - text.len()));
        }
        text.insert(text.len() - scale, '.');
    } else if scale < 0 && text != "0" {
        text.push_str(&"0".repeat((-scale) as usize));
    }
    if negative && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        text.insert(0, '-');
    }
    text
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn short(json: &Json) -> String {
    let text = json.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoder() -> Decoder {
        Decoder::new(DecodeOptions::default())
    }

    /// The schema of `dbserver1.public.orders`' value, as cdc-reader writes it (trimmed).
    fn orders_event(op: &str, before: Json, after: Json) -> Json {
        let row = json!({"type":"struct","optional":true,"name":"dbserver1.public.orders.Value","fields":[
            {"field":"id","type":"int64","optional":false},
            {"field":"status","type":"string","optional":false},
            {"field":"total","type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal",
             "parameters":{"scale":"2","connect.decimal.precision":"12"}},
            {"field":"created_at","type":"string","optional":false,"name":"io.debezium.time.ZonedTimestamp"},
            {"field":"day","type":"int32","optional":true,"name":"io.debezium.time.Date"},
            {"field":"at","type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp"},
            {"field":"ref","type":"string","optional":true,"name":"io.debezium.data.Uuid"},
            {"field":"doc","type":"string","optional":true,"name":"io.debezium.data.Json"},
            {"field":"tags","type":"array","optional":true,"items":{"type":"string","optional":true}}
        ]});
        json!({"schema":{"type":"struct","name":"dbserver1.public.orders.Envelope","fields":[
                {"field":"before","type":"struct","optional":true,"fields":row["fields"].clone()},
                {"field":"after","type":"struct","optional":true,"fields":row["fields"].clone()},
                {"field":"source","type":"struct","fields":[]},
                {"field":"op","type":"string"}]},
               "payload":{"before":before,"after":after,"op":op,
                          "source":{"schema":"public","table":"orders","lsn":1}}})
    }

    fn key(id: i64) -> Json {
        json!({"schema":{"type":"struct","name":"dbserver1.public.orders.Key",
                          "fields":[{"field":"id","type":"int64","optional":false}]},
               "payload":{"id":id}})
    }

    fn order(id: i64) -> Json {
        // 47.40 at scale 2 = unscaled 4740 = 0x12 0x84 = "EoQ="
        json!({"id":id,"status":"NEW","total":"EoQ=","created_at":"2026-12-03T14:20:00.123456Z",
               "day":20425,"at":1764771600123456i64,"ref":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
               "doc":"{\"a\": 1}","tags":["x",null]})
    }

    #[test]
    fn a_create_with_schema_becomes_a_typed_upsert() {
        let change = decoder()
            .decode(
                "dbserver1.public.orders",
                Some(&key(7)),
                Some(&orders_event("c", Json::Null, order(7))),
            )
            .unwrap()
            .unwrap();
        let RowChange::Upsert { table, row } = change else {
            panic!("not an upsert: {change:?}")
        };
        assert_eq!(table, TableId::new(Some("public"), "orders"));
        assert_eq!(row.key, vec!["id"]);
        assert_eq!(
            row.field("total").unwrap().ty,
            FieldType::Decimal {
                precision: Some(12),
                scale: 2
            }
        );
        assert_eq!(row.get("total"), Some(&Value::Decimal("47.40".into())));
        assert_eq!(
            row.get("created_at"),
            Some(&Value::TimestampTz("2026-12-03T14:20:00.123456Z".into()))
        );
        assert_eq!(row.get("day"), Some(&Value::Date(20425)));
        assert_eq!(
            row.get("at"),
            Some(&Value::TimestampMicros(1764771600123456))
        );
        assert_eq!(row.get("doc"), Some(&Value::Json(json!({"a": 1}))));
        assert_eq!(
            row.get("tags"),
            Some(&Value::Array(vec![Value::Text("x".into()), Value::Null]))
        );
        assert!(matches!(row.get("ref"), Some(Value::Uuid(_))));
    }

    #[test]
    fn deletes_and_tombstones_delete_by_key() {
        let mut decoder = decoder();
        let topic = "dbserver1.public.orders";
        let deleted = decoder
            .decode(
                topic,
                Some(&key(7)),
                Some(&orders_event("d", order(7), Json::Null)),
            )
            .unwrap()
            .unwrap();
        let RowChange::Delete { table, key: k } = deleted else {
            panic!()
        };
        assert_eq!(table.to_string(), "public.orders");
        assert_eq!(k.values, vec![Value::Int(7)]);
        let tombstone = decoder.decode(topic, Some(&key(7)), None).unwrap().unwrap();
        assert_eq!(tombstone.op(), "delete");
        assert_eq!(tombstone.table().to_string(), "public.orders");
        // Switched off: nothing.
        let mut off = Decoder::new(DecodeOptions {
            delete_enabled: false,
            ..Default::default()
        });
        assert_eq!(off.decode(topic, Some(&key(7)), None).unwrap(), None);
        assert_eq!(
            off.decode(
                topic,
                Some(&key(7)),
                Some(&orders_event("d", order(7), Json::Null))
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn truncate_only_when_enabled_and_messages_never() {
        let event = json!({"before":null,"after":null,"op":"t","source":{"schema":"public","table":"orders"}});
        assert_eq!(decoder().decode("t", None, Some(&event)).unwrap(), None);
        let mut on = Decoder::new(DecodeOptions {
            truncate_enabled: true,
            ..Default::default()
        });
        assert_eq!(
            on.decode("t", None, Some(&event)).unwrap().unwrap().op(),
            "truncate"
        );
        let message = json!({"op":"m","source":{},"before":null,"after":null});
        assert_eq!(on.decode("t", None, Some(&message)).unwrap(), None);
    }

    #[test]
    fn schemaless_events_infer_types() {
        let event = json!({"before":null,"after":{"id":3,"price":1.5,"name":"x","ok":true,"meta":{"a":1},"gone":null},
                           "op":"u","source":{"schema":"public","table":"things"}});
        let change = decoder()
            .decode("x", Some(&json!({"id":3})), Some(&event))
            .unwrap()
            .unwrap();
        let RowChange::Upsert { row, .. } = change else {
            panic!()
        };
        let types: Vec<_> = row
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.ty.clone()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("id", FieldType::Int64),
                ("price", FieldType::Float64),
                ("name", FieldType::Text),
                ("ok", FieldType::Boolean),
                ("meta", FieldType::Json),
                ("gone", FieldType::Text)
            ]
        );
    }

    #[test]
    fn flat_events_are_rows_named_after_the_topic() {
        let options = DecodeOptions {
            primary_key_fields: vec!["aggregate_id".into()],
            ..Default::default()
        };
        let value = json!({"order_id":42,"status":"NEW"});
        let change = Decoder::new(options)
            .decode("outbox.event.order", Some(&json!("42")), Some(&value))
            .unwrap()
            .unwrap();
        let RowChange::Upsert { table, row } = change else {
            panic!()
        };
        assert_eq!(table, TableId::new(None, "outbox_event_order"));
        assert_eq!(row.key, vec!["aggregate_id"]);
        assert_eq!(row.values[0], Value::Text("42".into()));
        // Without a column name for the primitive key: a clear error.
        let error = decoder()
            .decode("outbox.event.order", Some(&json!("42")), Some(&value))
            .unwrap_err();
        assert!(
            error.to_string().contains("--primary-key-fields"),
            "{error}"
        );
    }

    #[test]
    fn record_value_keys_and_bad_keys() {
        let mut by_value = Decoder::new(DecodeOptions {
            primary_key_mode: PrimaryKeyMode::RecordValue,
            primary_key_fields: vec!["order_id".into()],
            ..Default::default()
        });
        let change = by_value
            .decode("e", None, Some(&json!({"order_id":1,"x":2})))
            .unwrap()
            .unwrap();
        let RowChange::Upsert { row, .. } = change else {
            panic!()
        };
        assert_eq!(row.key, vec!["order_id"]);
        let missing = by_value
            .decode("e", None, Some(&json!({"x":2})))
            .unwrap_err();
        assert!(matches!(missing, DecodeError::BadKey(_)), "{missing}");
        let null_key = by_value
            .decode("e", None, Some(&json!({"order_id":null})))
            .unwrap_err();
        assert_eq!(
            null_key.to_string(),
            "the key: key field `order_id` is null"
        );
        let no_key = decoder()
            .decode("e", None, Some(&json!({"x":1})))
            .unwrap_err();
        assert!(no_key.to_string().contains("has no key"), "{no_key}");
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let mut event = orders_event("c", Json::Null, order(1));
        event["payload"]["after"]["total"] = json!("not base64!");
        let error = decoder()
            .decode("t", Some(&key(1)), Some(&event))
            .unwrap_err();
        assert!(
            error.to_string().starts_with("field `total`: not base64"),
            "{error}"
        );
        assert!(matches!(
            decoder().decode("t", None, Some(&json!([1, 2]))),
            Err(DecodeError::NotAnObject("array"))
        ));
        let unknown = json!({"op":"x","source":{"table":"t"},"after":{}});
        assert_eq!(
            decoder().decode("t", None, Some(&unknown)).unwrap_err(),
            DecodeError::UnknownOp("x".into())
        );
        assert!(parse_json("value", b"{nope").is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_text(&[0x12, 0x84], 2), "47.40");
        assert_eq!(decimal_text(&[0xED, 0x7C], 2), "-47.40");
        assert_eq!(decimal_text(&[0x05], 3), "0.005");
        assert_eq!(decimal_text(&[0xFB], 3), "-0.005");
        assert_eq!(decimal_text(&[], 0), "0");
        assert_eq!(decimal_text(&[0x0C], -2), "1200");
        // 99999999.99 = "AlQL4/8=" in the README's type map.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode("AlQL4/8=")
            .unwrap();
        assert_eq!(decimal_text(&bytes, 2), "99999999.99");
        // Beyond i128: 2^200.
        let mut big = vec![0x01];
        big.extend(vec![0u8; 25]);
        assert_eq!(
            decimal_text(&big, 0),
            "1606938044258990275541962092341162602522202993782792835301376"
        );
        let variable = json!({"scale":5,"value":"BMsv"});
        let schema = json!({"type":"struct","name":"io.debezium.data.VariableScaleDecimal"});
        assert_eq!(
            convert("n", &schema, &FieldType::VariableScaleDecimal, &variable).unwrap(),
            Value::Decimal("3.14159".into())
        );
    }

    #[test]
    fn times_are_normalised_to_micros() {
        let millis = json!({"type":"int32","name":"io.debezium.time.Time"});
        assert_eq!(
            convert("t", &millis, &FieldType::Time, &json!(45296789)).unwrap(),
            Value::TimeMicros(45296789000)
        );
        let nanos = json!({"type":"int64","name":"io.debezium.time.NanoTimestamp"});
        assert_eq!(
            convert(
                "t",
                &nanos,
                &FieldType::Timestamp,
                &json!(1_000_000_123_456i64)
            )
            .unwrap(),
            Value::TimestampMicros(1_000_000_123)
        );
        assert_eq!(
            field_type(&json!({"type":"float"})).unwrap(),
            FieldType::Float32
        );
        assert_eq!(
            field_type(&json!({"type":"float64"})).unwrap(),
            FieldType::Float64
        );
        let nan = convert(
            "f",
            &json!({"type":"double"}),
            &FieldType::Float64,
            &json!("NaN"),
        );
        assert!(matches!(nan, Ok(Value::Float(f)) if f.is_nan()));
    }

    fn headers(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<Vec<u8>>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn header_to_field_parses_and_refuses_what_is_not_header_equals_field() {
        assert_eq!(
            HeaderToField::parse(" id = event_id ").unwrap(),
            HeaderToField {
                header: "id".into(),
                field: "event_id".into()
            }
        );
        for bad in ["id", "=event_id", "id=", ""] {
            let error = HeaderToField::parse(bad).unwrap_err();
            assert!(error.contains("expected HEADER=FIELD"), "{error}");
        }
    }

    #[test]
    fn headers_become_text_fields_and_can_be_the_key() {
        // The outbox topic: the event id only in the header `id`, the order in the value.
        let mut outbox = Decoder::new(DecodeOptions {
            primary_key_mode: PrimaryKeyMode::RecordValue,
            primary_key_fields: vec!["event_id".into()],
            header_to_field: vec![
                HeaderToField::parse("id=event_id").unwrap(),
                HeaderToField::parse("eventType=event_type").unwrap(),
            ],
            ..Default::default()
        });
        let value = json!({"id":42,"status":"PAID","event_type":"overwritten"});
        let record_headers = headers(&[
            ("id", Some("first")),
            ("eventType", Some("\"OrderPaid\"")), // a JSON string header loses its quotes
            ("id", Some("5f0c2b6e-0000-4000-8000-000000000001")), // the last one wins
        ]);
        let change = outbox
            .decode_with_headers(
                "outbox.event.order",
                Some(&json!("42")),
                Some(&value),
                &record_headers,
            )
            .unwrap()
            .unwrap();
        let RowChange::Upsert { row, .. } = change else {
            panic!()
        };
        assert_eq!(row.key, vec!["event_id"]);
        assert_eq!(
            row.get("event_id"),
            Some(&Value::Text("5f0c2b6e-0000-4000-8000-000000000001".into()))
        );
        assert_eq!(
            row.get("event_type"),
            Some(&Value::Text("OrderPaid".into()))
        );
        assert_eq!(row.field("event_id").unwrap().ty, FieldType::Text);
        assert_eq!(row.get("id"), Some(&Value::Int(42)));
        assert_eq!(row.fields.len(), 4, "{row:?}");

        // A missing header is a null field: as the key, a dead letter that says so.
        let missing = outbox
            .decode_with_headers("outbox.event.order", None, Some(&value), &[])
            .unwrap_err();
        assert_eq!(missing.to_string(), "the key: key field `event_id` is null");
        // Bytes that are not text: a dead letter, never a panic.
        let binary = vec![("id".to_string(), Some(vec![0xff, 0xfe]))];
        let error = outbox
            .decode_with_headers("outbox.event.order", None, Some(&value), &binary)
            .unwrap_err();
        assert!(error.to_string().contains("not UTF-8"), "{error}");

        // A change event gets the field in its row image.
        let mut cdc = Decoder::new(DecodeOptions {
            header_to_field: vec![HeaderToField::parse("trace=trace_id").unwrap()],
            ..Default::default()
        });
        let event = orders_event("c", Json::Null, order(7));
        let change = cdc
            .decode_with_headers(
                "t",
                Some(&key(7)),
                Some(&event),
                &headers(&[("trace", Some("abc"))]),
            )
            .unwrap()
            .unwrap();
        let RowChange::Upsert { row, .. } = change else {
            panic!()
        };
        assert_eq!(row.get("trace_id"), Some(&Value::Text("abc".into())));
    }
}
