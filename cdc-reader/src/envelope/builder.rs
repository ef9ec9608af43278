//! Turning one table's row changes into Debezium change events (topic, key, value).
//!
//! A [`TableEnvelopeBuilder`] is made once per table description (again after each Relation
//! message). It renders everything that is the same for every event of the table: the topic,
//! the key schema and the envelope schema, as JSON text. Per event it only writes the payload:
//!
//! ```text
//! topic  dbz.public.orders
//! key    {"schema":{..Key schema..},"payload":{"id":1001}}
//! value  {"schema":{..Envelope schema..},
//!         "payload":{"before":null,"after":{"id":1001,..},"source":{..},"transaction":null,
//!                    "op":"c","ts_ms":1795448503021,"ts_us":..,"ts_ns":..}}
//! ```
//!
//! Which rows go in `before` is the caller's: pgoutput's old tuple as it came. Under REPLICA
//! IDENTITY DEFAULT an update has none (`before` is null) and a delete has only the key columns;
//! Debezium then fills the other NOT NULL columns with their default or a zero value (`""`, `0`,
//! `"1970-01-01T00:00:00Z"`), which this builder reproduces.

use std::sync::Arc;

use super::config::{BinaryHandling, EnvelopeConfig, UnknownTypeHandling};
use super::default_value::default_json;
use super::error::{EnvelopeError, SchemaWarning, UnconvertibleValue};
use super::json;
use super::kind::{oid, ValueKind};
use super::names::{adjust_field_name, adjust_schema_name};
use super::schema::ConnectSchema;
use super::source::{
    source_schema, transaction_schema, write_transaction, SourcePosition, SourceTemplate,
};
use super::table::{CellValue, ColumnSchema, TableSchema};
use super::value::write_value;

/// One Kafka record: topic, key and value bytes (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRecord {
    pub topic: Arc<str>,
    /// None: no key (a table without primary key, a truncate event).
    pub key: Option<Vec<u8>>,
    /// None: a tombstone.
    pub value: Option<Vec<u8>>,
    /// Values that could not be converted and were written as null (or the column DEFAULT)
    /// instead: the caller logs a warning for each (no value may stop the reader).
    pub unconvertible: Vec<UnconvertibleValue>,
}

/// When the reader processed an event: the envelope's top-level `ts_ms`/`ts_us`/`ts_ns`.
/// Passed in by the caller so that the builder stays pure (and tests repeatable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessingTime {
    unix_nanos: i64,
}

impl ProcessingTime {
    /// Nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(unix_nanos: i64) -> Self {
        ProcessingTime { unix_nanos }
    }

    pub const fn unix_nanos(self) -> i64 {
        self.unix_nanos
    }

    /// Appends `,"ts_ms":..,"ts_us":..,"ts_ns":..` (Java's Instant arithmetic: rounding down).
    pub(crate) fn write_fields(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"ts_ms\":");
        json::write_i64(out, self.unix_nanos.div_euclid(1_000_000));
        out.extend_from_slice(b",\"ts_us\":");
        json::write_i64(out, self.unix_nanos.div_euclid(1_000));
        out.extend_from_slice(b",\"ts_ns\":");
        json::write_i64(out, self.unix_nanos);
    }
}

/// Everything about one column that is fixed for the table.
#[derive(Debug, Clone)]
struct ColumnPlan {
    name: String,
    /// The field's name in events (the column name, adjusted by `field.name.adjustment.mode`).
    field_name: String,
    type_name: String,
    /// `"name":`
    field_prefix: Vec<u8>,
    kind: ValueKind,
    /// Left out of events (an unmapped type under `UnknownTypeHandling::Omit`, or a column
    /// `column.include.list`/`column.exclude.list` leave out).
    omitted: bool,
    /// The column DEFAULT as Debezium shows it in the schema, rendered as JSON.
    default_json: Option<String>,
    /// What a NULL becomes: null, the default, or the type's zero value.
    null_json: Vec<u8>,
    /// What an unchanged TOAST value becomes when its old value is unknown.
    toast_json: Option<Vec<u8>>,
    /// What a value that cannot be converted becomes: null, or the DEFAULT where
    /// JsonConverter writes it for a missing value.
    failure_json: Vec<u8>,
    /// Debezium's column mappers for this column (value fields only).
    mappers: ColumnMappers,
}

/// What `column.mask.with.N.chars`, `column.truncate.to.N.chars` and
/// `column.propagate.source.type` do to one column's value field.
#[derive(Debug, Clone, Default)]
struct ColumnMappers {
    /// Written in place of every value (`"****"`), for a masked string column.
    mask_json: Option<Vec<u8>>,
    /// Strings cut to this many (UTF-16) characters, bytes to this many bytes.
    truncate_to: Option<usize>,
    /// Added to the value field's schema parameters, in this order.
    schema_parameters: Vec<(&'static str, String)>,
}

/// Debezium's column mappers for a column, as its `ColumnMappers` picks them.
fn column_mappers(
    column: &ColumnSchema,
    column_id: &str,
    config: &EnvelopeConfig,
) -> ColumnMappers {
    let rules = &config.column_rules;
    let facts = source_column_facts(column);
    let mut mappers = ColumnMappers::default();
    if let Some(length) = rules.mask_length(column_id) {
        mappers
            .schema_parameters
            .push(("masked", "true".to_string()));
        // Only character columns are masked (JDBC CHAR/VARCHAR); the others keep their values.
        if matches!(
            column.type_name.as_str(),
            "text" | "varchar" | "bpchar" | "char" | "name"
        ) {
            let mut mask = Vec::with_capacity(length + 2);
            json::write_str(&mut mask, &"*".repeat(length));
            mappers.mask_json = Some(mask);
        }
    } else if let Some(length) = rules.truncate_length(column_id) {
        // Truncation is "possible" when the column may be longer than the limit.
        if facts.length < 0 || facts.length as usize > length {
            mappers
                .schema_parameters
                .push(("truncateLength", length.to_string()));
            mappers.truncate_to = Some(length);
        }
    }
    if rules.propagates_source_type(column_id, &column.type_name) {
        mappers.schema_parameters.extend([
            ("__debezium.source.column.type", facts.type_name),
            ("__debezium.source.column.length", facts.length.to_string()),
            ("__debezium.source.column.scale", facts.scale.to_string()),
            ("__debezium.source.column.name", column.name.clone()),
        ]);
    }
    mappers
}

/// A column's type, length and scale as Debezium knows them (the JDBC driver's `TypeInfoCache`
/// precision or display size, and scale, for the column's type modifier).
struct SourceColumnFacts {
    type_name: String,
    length: i64,
    scale: i64,
}

fn source_column_facts(column: &ColumnSchema) -> SourceColumnFacts {
    const UNKNOWN_LENGTH: i64 = i32::MAX as i64;
    let base = oid::array_element(column.type_oid)
        .or(column.element_type_oid)
        .unwrap_or(column.type_oid);
    let typmod = i64::from(column.type_modifier);
    // Fraction digits of a time type: the typmod, 6 when undeclared.
    let seconds = match typmod {
        -1 => 7,
        0 => 0,
        1 => 3,
        digits => digits + 1,
    };
    let length = match base {
        oid::INT2 => 5,
        oid::INT4 | oid::OID => 10,
        oid::INT8 => 19,
        oid::FLOAT4 => 8,
        oid::FLOAT8 => 17,
        oid::NUMERIC if typmod == -1 => 131_089,
        oid::NUMERIC => ((typmod - 4) & 0xffff_0000) >> 16,
        oid::CHAR | oid::BOOL => 1,
        oid::BPCHAR | oid::VARCHAR if typmod == -1 => UNKNOWN_LENGTH,
        oid::BPCHAR | oid::VARCHAR => typmod - 4,
        oid::DATE => 13,
        oid::TIME => 8 + seconds,
        oid::TIMETZ => 14 + seconds,
        oid::TIMESTAMP => 22 + seconds,
        oid::TIMESTAMPTZ => 28 + seconds,
        oid::INTERVAL => 49,
        oid::BIT => typmod,
        oid::VARBIT if typmod == -1 => UNKNOWN_LENGTH,
        oid::VARBIT => typmod,
        _ => UNKNOWN_LENGTH,
    };
    let scale = match base {
        oid::FLOAT4 => 8,
        oid::FLOAT8 => 17,
        oid::NUMERIC if typmod == -1 => 0,
        oid::NUMERIC => (typmod - 4) & 0xffff,
        oid::TIME | oid::TIMETZ | oid::TIMESTAMP | oid::TIMESTAMPTZ if typmod == -1 => 6,
        oid::TIME | oid::TIMETZ | oid::TIMESTAMP | oid::TIMESTAMPTZ => typmod,
        oid::INTERVAL if typmod == -1 => 6,
        oid::INTERVAL => typmod & 0xffff,
        _ => 0,
    };
    SourceColumnFacts {
        type_name: column.type_name.to_uppercase(),
        length,
        scale,
    }
}

/// Cuts the value written at `out[start..]` to `length`: a JSON string to that many UTF-16
/// units (Java's `substring`), Kafka Connect bytes to that many bytes; other values stay.
fn truncate_written_value(out: &mut Vec<u8>, start: usize, length: usize, kind: &ValueKind) {
    let Ok(text) = serde_json::from_slice::<String>(&out[start..]) else {
        return;
    };
    let is_bytes = matches!(
        kind,
        ValueKind::Bytes {
            binary: BinaryHandling::Bytes
        }
    );
    out.truncate(start);
    if is_bytes {
        use base64::Engine as _;
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .unwrap_or_default();
        bytes.truncate(length);
        json::write_base64(out, &bytes);
        return;
    }
    let mut units = 0;
    let cut: String = text
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= length
        })
        .collect();
    json::write_str(out, &cut);
}

/// Builds the Debezium events of one table. Cheap to use per event; build it once per table.
#[derive(Debug, Clone)]
pub struct TableEnvelopeBuilder {
    /// `schema.table`, for error messages.
    table: String,
    topic: Arc<str>,
    columns: Vec<ColumnPlan>,
    key_columns: Vec<usize>,
    key_schema_json: Option<String>,
    envelope_schema_json: String,
    source: SourceTemplate,
    schemas_enabled: bool,
    warnings: Vec<SchemaWarning>,
}

impl TableEnvelopeBuilder {
    /// Prepares the topic and schemas of `table`. Columns whose type is not mapped are written
    /// as text (or left out, see [`UnknownTypeHandling`]) and reported by [`Self::warnings`],
    /// for the caller to log once.
    pub fn new(table: &TableSchema, config: &EnvelopeConfig) -> Self {
        let qualified = format!("{}.{}", table.schema, table.table);
        let topic = sanitize_topic(&format!(
            "{}.{}.{}",
            config.topic_prefix, table.schema, table.table
        ));
        let mut warnings = Vec::new();
        let columns: Vec<ColumnPlan> = table
            .columns
            .iter()
            .map(|column| plan_column(column, &qualified, config, &mut warnings))
            .collect();
        // message.key.columns replaces the primary key for the tables it names.
        let key_names = config
            .column_rules
            .key_columns_for(&qualified)
            .unwrap_or(&table.key_columns);
        let mut key_columns = Vec::with_capacity(key_names.len());
        for name in key_names {
            match table.columns.iter().position(|column| &column.name == name) {
                Some(index) if !columns[index].omitted => key_columns.push(index),
                Some(_) => {}
                None => warnings.push(SchemaWarning {
                    column: name.clone(),
                    type_name: String::new(),
                    message: "named as a key column but not one of the table's columns; left out of the key"
                        .to_string(),
                }),
            }
        }

        let field_schema = |plan: &ColumnPlan, column: &ColumnSchema| {
            let mut schema = plan.kind.schema();
            schema.optional = !column.not_null || plan.kind == ValueKind::AlwaysNull;
            schema.default_json = plan.default_json.clone();
            (plan.field_name.clone(), schema)
        };
        // The column mappers (mask, truncate, source type) change the value's fields, not the key's.
        let value_field_schema = |plan: &ColumnPlan, column: &ColumnSchema| {
            let (name, mut schema) = field_schema(plan, column);
            schema
                .parameters
                .extend(plan.mappers.schema_parameters.iter().cloned());
            (name, schema)
        };
        let schema_name = |suffix: &str| {
            adjust_schema_name(&format!("{topic}.{suffix}"), config.schema_name_adjustment)
        };
        let key_schema_json = (!key_columns.is_empty()).then(|| {
            let fields = key_columns
                .iter()
                .map(|&index| field_schema(&columns[index], &table.columns[index]))
                .collect();
            ConnectSchema::structure(Some(schema_name("Key")), fields).to_json()
        });
        let value_fields = columns
            .iter()
            .zip(&table.columns)
            .filter(|(plan, _)| !plan.omitted)
            .map(|(plan, column)| value_field_schema(plan, column))
            .collect();
        let value_schema =
            ConnectSchema::structure(Some(schema_name("Value")), value_fields).optional();
        let optional_int64 = || ConnectSchema::primitive("int64").optional();
        let envelope = ConnectSchema::structure(
            Some(schema_name("Envelope")),
            vec![
                ("before".into(), value_schema.clone()),
                ("after".into(), value_schema),
                ("source".into(), source_schema()),
                ("transaction".into(), transaction_schema()),
                ("op".into(), ConnectSchema::primitive("string")),
                ("ts_ms".into(), optional_int64()),
                ("ts_us".into(), optional_int64()),
                ("ts_ns".into(), optional_int64()),
            ],
        )
        .with_version(2);

        TableEnvelopeBuilder {
            source: SourceTemplate::new(
                &config.source_version,
                &config.topic_prefix,
                &config.database,
                &table.schema,
                &table.table,
                config.replace_null_with_default,
            ),
            table: qualified,
            topic: Arc::from(topic),
            columns,
            key_columns,
            key_schema_json,
            envelope_schema_json: envelope.to_json(),
            schemas_enabled: config.schemas_enabled,
            warnings,
        }
    }

    /// The table's topic, `<prefix>.<schema>.<table>`.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// Columns mapped differently from Debezium (see [`SchemaWarning`]).
    pub fn warnings(&self) -> &[SchemaWarning] {
        &self.warnings
    }

    /// True when events have a key (the table has key columns).
    pub fn has_key(&self) -> bool {
        self.key_schema_json.is_some()
    }

    /// An insert (`op: "c"`).
    pub fn create(
        &self,
        after: &[CellValue<'_>],
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> Result<EnvelopeRecord, EnvelopeError> {
        self.change("c", None, Some(after), after, source, processed)
    }

    /// A row read by a snapshot (`op: "r"`).
    pub fn read(
        &self,
        after: &[CellValue<'_>],
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> Result<EnvelopeRecord, EnvelopeError> {
        self.change("r", None, Some(after), after, source, processed)
    }

    /// An update (`op: "u"`). `before` is pgoutput's old tuple when it sent one (REPLICA
    /// IDENTITY FULL, or a changed key), else None. Unchanged TOAST values in `after` take the
    /// old value from `before` when it has one. A key change is not this method's business:
    /// Debezium writes it as a delete (+ tombstone) and a create.
    pub fn update(
        &self,
        before: Option<&[CellValue<'_>]>,
        after: &[CellValue<'_>],
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> Result<EnvelopeRecord, EnvelopeError> {
        self.change("u", before, Some(after), after, source, processed)
    }

    /// A delete (`op: "d"`); `before` is the old tuple (all columns, or only the key columns
    /// with the others NULL under REPLICA IDENTITY DEFAULT).
    pub fn delete(
        &self,
        before: &[CellValue<'_>],
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> Result<EnvelopeRecord, EnvelopeError> {
        self.change("d", Some(before), None, before, source, processed)
    }

    /// The tombstone that follows a delete: same key, null value (lets Kafka compaction drop
    /// the row's history).
    pub fn tombstone(&self, key_row: &[CellValue<'_>]) -> Result<EnvelopeRecord, EnvelopeError> {
        self.check_row(key_row)?;
        let mut unconvertible = Vec::new();
        Ok(EnvelopeRecord {
            topic: self.topic.clone(),
            key: self.key(key_row, None, &mut unconvertible)?,
            value: None,
            unconvertible,
        })
    }

    /// A truncate (`op: "t"`): no key, no rows.
    pub fn truncate(
        &self,
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> Result<EnvelopeRecord, EnvelopeError> {
        let mut unconvertible = Vec::new();
        let value = self.envelope("t", None, None, source, processed, &mut unconvertible)?;
        Ok(EnvelopeRecord {
            topic: self.topic.clone(),
            key: None,
            value: Some(value),
            unconvertible,
        })
    }

    /// Only the key's payload, e.g. `{"id":1001}` (`{}` for a table without key): for the
    /// `__debezium.oldkey`/`__debezium.newkey` headers of a key change.
    pub fn key_payload(&self, row: &[CellValue<'_>]) -> Result<Vec<u8>, EnvelopeError> {
        self.check_row(row)?;
        let mut out = Vec::with_capacity(64);
        // The same values are in the events of the change, which report what failed.
        self.write_key_payload(row, None, &mut out, &mut Vec::new())?;
        Ok(out)
    }

    /// The record key of a row: `{"schema":..,"payload":{..}}` (or the payload alone), None for
    /// a table without key.
    fn key(
        &self,
        row: &[CellValue<'_>],
        old_row: Option<&[CellValue<'_>]>,
        unconvertible: &mut Vec<UnconvertibleValue>,
    ) -> Result<Option<Vec<u8>>, EnvelopeError> {
        let Some(schema) = &self.key_schema_json else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(schema.len() + 64);
        if self.schemas_enabled {
            out.extend_from_slice(b"{\"schema\":");
            out.extend_from_slice(schema.as_bytes());
            out.extend_from_slice(b",\"payload\":");
        }
        self.write_key_payload(row, old_row, &mut out, unconvertible)?;
        if self.schemas_enabled {
            out.push(b'}');
        }
        Ok(Some(out))
    }

    fn write_key_payload(
        &self,
        row: &[CellValue<'_>],
        old_row: Option<&[CellValue<'_>]>,
        out: &mut Vec<u8>,
        unconvertible: &mut Vec<UnconvertibleValue>,
    ) -> Result<(), EnvelopeError> {
        out.push(b'{');
        for (position, &index) in self.key_columns.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            self.write_field(index, row, old_row, out, unconvertible, false);
        }
        out.push(b'}');
        Ok(())
    }

    fn change(
        &self,
        op: &str,
        before: Option<&[CellValue<'_>]>,
        after: Option<&[CellValue<'_>]>,
        key_row: &[CellValue<'_>],
        source: &SourcePosition,
        processed: ProcessingTime,
    ) -> Result<EnvelopeRecord, EnvelopeError> {
        for row in before.iter().chain(after.iter()) {
            self.check_row(row)?;
        }
        let key_old_row = if after.is_some() { before } else { None };
        let mut unconvertible = Vec::new();
        let key = self.key(key_row, key_old_row, &mut unconvertible)?;
        let value = self.envelope(op, before, after, source, processed, &mut unconvertible)?;
        Ok(EnvelopeRecord {
            topic: self.topic.clone(),
            key,
            value: Some(value),
            unconvertible,
        })
    }

    fn check_row(&self, row: &[CellValue<'_>]) -> Result<(), EnvelopeError> {
        if row.len() != self.columns.len() {
            return Err(EnvelopeError::RowLength {
                table: self.table.clone(),
                expected: self.columns.len(),
                actual: row.len(),
            });
        }
        Ok(())
    }

    /// The value: `{"schema":..,"payload":{..}}` or only the payload.
    fn envelope(
        &self,
        op: &str,
        before: Option<&[CellValue<'_>]>,
        after: Option<&[CellValue<'_>]>,
        source: &SourcePosition,
        processed: ProcessingTime,
        unconvertible: &mut Vec<UnconvertibleValue>,
    ) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(self.envelope_schema_json.len() + 1024);
        if self.schemas_enabled {
            out.extend_from_slice(b"{\"schema\":");
            out.extend_from_slice(self.envelope_schema_json.as_bytes());
            out.extend_from_slice(b",\"payload\":");
        }
        out.extend_from_slice(b"{\"before\":");
        match before {
            Some(row) => self.write_row(row, None, &mut out, unconvertible),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"after\":");
        match after {
            Some(row) => self.write_row(row, before, &mut out, unconvertible),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"source\":");
        self.source.write(source, &mut out);
        out.extend_from_slice(b",\"transaction\":");
        write_transaction(source.transaction.as_ref(), &mut out);
        out.extend_from_slice(b",\"op\":");
        json::write_str(&mut out, op);
        processed.write_fields(&mut out);
        out.push(b'}');
        if self.schemas_enabled {
            out.push(b'}');
        }
        Ok(out)
    }

    /// `{"col":value,..}`; `old_row` supplies values for unchanged TOAST cells.
    fn write_row(
        &self,
        row: &[CellValue<'_>],
        old_row: Option<&[CellValue<'_>]>,
        out: &mut Vec<u8>,
        unconvertible: &mut Vec<UnconvertibleValue>,
    ) {
        out.push(b'{');
        let mut first = true;
        for (index, plan) in self.columns.iter().enumerate() {
            if plan.omitted {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            self.write_field(index, row, old_row, out, unconvertible, true);
        }
        out.push(b'}');
    }

    /// `"col":value` for column `index`. A value that cannot be converted never fails the
    /// event: the field gets what Debezium's `event.converting.failure.handling.mode=warn`
    /// writes (null, or the column DEFAULT where JsonConverter puts it in place of a null) and
    /// the value is added to `unconvertible` for the caller to warn about.
    fn write_field(
        &self,
        index: usize,
        row: &[CellValue<'_>],
        old_row: Option<&[CellValue<'_>]>,
        out: &mut Vec<u8>,
        unconvertible: &mut Vec<UnconvertibleValue>,
        in_value: bool,
    ) {
        let plan = &self.columns[index];
        out.extend_from_slice(&plan.field_prefix);
        if let (true, Some(mask)) = (in_value, &plan.mappers.mask_json) {
            // Debezium's MaskStrings replaces every value, NULL included.
            out.extend_from_slice(mask);
            return;
        }
        let mut cell = row[index];
        if cell == CellValue::UnchangedToast {
            if let Some(CellValue::Text(old)) = old_row.map(|old_row| old_row[index]) {
                cell = CellValue::Text(old);
            }
        }
        let value_start = out.len();
        let failure = match cell {
            CellValue::Text(text) => match write_value(&plan.kind, text, out) {
                Ok(()) => {
                    if let (true, Some(length)) = (in_value, plan.mappers.truncate_to) {
                        truncate_written_value(out, value_start, length, &plan.kind);
                    }
                    None
                }
                Err(reason) => Some((text.chars().take(100).collect(), reason)),
            },
            CellValue::Null => {
                out.extend_from_slice(&plan.null_json);
                None
            }
            CellValue::UnchangedToast => match &plan.toast_json {
                Some(placeholder) => {
                    out.extend_from_slice(placeholder);
                    None
                }
                None => Some((
                    String::new(),
                    "an unchanged TOAST value whose old value is not known, and this type has no \
                     placeholder; set REPLICA IDENTITY FULL on the table"
                        .to_string(),
                )),
            },
        };
        if let Some((value, reason)) = failure {
            out.truncate(value_start);
            out.extend_from_slice(&plan.failure_json);
            if !unconvertible.iter().any(|seen| seen.column == plan.name) {
                unconvertible.push(UnconvertibleValue {
                    column: plan.name.clone(),
                    type_name: plan.type_name.clone(),
                    value,
                    reason,
                });
            }
        }
    }
}

/// Works out how a column is written.
fn plan_column(
    column: &ColumnSchema,
    table_id: &str,
    config: &EnvelopeConfig,
    warnings: &mut Vec<SchemaWarning>,
) -> ColumnPlan {
    let column_id = format!("{table_id}.{}", column.name);
    let listed = config.column_rules.is_written(&column_id);
    let mapped = ValueKind::of_column(column, config.type_options());
    // Debezium leaves these arrays out even with include.unknown.datatypes=true.
    let never_included = matches!(
        column.type_name.as_str(),
        "_money" | "_name" | "_interval" | "_varbit" | "_xml" | "_point" | "_refcursor"
    );
    let omitted = !listed
        || (mapped.is_none()
            && (config.unknown_types == UnknownTypeHandling::Omit
                || (config.unknown_types == UnknownTypeHandling::AsBytes && never_included)));
    if mapped.is_none() && listed {
        warnings.push(SchemaWarning {
            column: column.name.clone(),
            type_name: column.type_name.clone(),
            message: match config.unknown_types {
                UnknownTypeHandling::Omit => {
                    "type not mapped; the column is left out of events (as Debezium does)"
                }
                UnknownTypeHandling::AsText => {
                    "type not mapped; written as its PostgreSQL text form (Debezium would leave the column out)"
                }
                UnknownTypeHandling::AsBytes => {
                    "type not mapped; written as the bytes of its PostgreSQL text form (include.unknown.datatypes=true)"
                }
            }
            .to_string(),
        });
    }
    let kind = match (mapped, config.unknown_types) {
        (Some(kind), _) => kind,
        (None, UnknownTypeHandling::AsBytes) => ValueKind::UnknownBytes {
            binary: config.binary_handling,
            geometric: matches!(
                column.type_name.as_str(),
                "box" | "circle" | "line" | "lseg" | "path" | "polygon"
            ),
        },
        (None, _) => ValueKind::Unmapped,
    };
    let default = default_json(column, &kind);
    let null_json = match (&default, column.not_null) {
        (Some(default), true) => default.clone(),
        (None, true) => kind.fallback_json(),
        (Some(default), false) if config.replace_null_with_default => default.clone(),
        _ => "null".to_string(),
    };
    // Debezium leaves an unconvertible field unset; JsonConverter then writes the schema's
    // default (when replacing nulls with defaults, or for a NOT NULL column), else null. A NOT
    // NULL column without default makes Debezium fail the record; we write null.
    let failure_json = match (&default, column.not_null) {
        (Some(default), true) => default.clone(),
        (Some(default), false) if config.replace_null_with_default => default.clone(),
        _ => "null".to_string(),
    };
    let mut field_prefix = Vec::with_capacity(column.name.len() + 3);
    json::write_str(
        &mut field_prefix,
        &adjust_field_name(&column.name, config.field_name_adjustment),
    );
    field_prefix.push(b':');
    ColumnPlan {
        mappers: column_mappers(column, &column_id, config),
        name: column.name.clone(),
        field_name: adjust_field_name(&column.name, config.field_name_adjustment),
        type_name: column.type_name.clone(),
        field_prefix,
        toast_json: toast_placeholder(column, &kind, &config.unavailable_value_placeholder),
        kind,
        omitted,
        default_json: default,
        null_json: null_json.into_bytes(),
        failure_json: failure_json.into_bytes(),
    }
}

/// Debezium's placeholder for an unchanged TOAST value (`unavailable.value.placeholder`), in the
/// shape of the column: a string, its bytes, or a one-element list; for int/date arrays the
/// placeholder's bytes as numbers (Debezium's own oddity). None: no placeholder for the type.
fn toast_placeholder(
    column: &ColumnSchema,
    kind: &ValueKind,
    placeholder: &str,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let placeholder_bytes = placeholder_bytes(placeholder);
    let placeholder = &String::from_utf8_lossy(&placeholder_bytes);
    match kind {
        ValueKind::String { .. } | ValueKind::Enum { .. } | ValueKind::Unmapped => {
            json::write_str(&mut out, placeholder)
        }
        ValueKind::Bytes {
            binary: BinaryHandling::Bytes,
        } => json::write_base64(&mut out, &placeholder_bytes),
        // What Debezium 3.6.1 writes (conformance/debezium/binary_handling_mode_*/toast_types):
        // the placeholder text under hex, nothing (null) under base64.
        ValueKind::Bytes {
            binary: BinaryHandling::Hex,
        } => json::write_str(&mut out, placeholder),
        ValueKind::Array { .. } => {
            let element = oid::array_element(column.type_oid).or(column.element_type_oid)?;
            out.push(b'[');
            match element {
                oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::JSON | oid::JSONB => {
                    json::write_str(&mut out, placeholder)
                }
                oid::BYTEA if config_binary_is_bytes(kind) => {
                    json::write_base64(&mut out, &placeholder_bytes)
                }
                oid::INT4 | oid::DATE | oid::INT8 => {
                    for (index, byte) in placeholder_bytes.iter().enumerate() {
                        if index > 0 {
                            out.push(b',');
                        }
                        // Java bytes are signed.
                        json::write_i64(&mut out, i64::from(*byte as i8));
                    }
                }
                _ => return None,
            }
            out.push(b']');
        }
        _ => return None,
    }
    Some(out)
}

/// True for an array of `bytea` written as Kafka Connect bytes.
fn config_binary_is_bytes(kind: &ValueKind) -> bool {
    matches!(kind, ValueKind::Array { items, .. } if matches!(**items, ValueKind::Bytes { binary: BinaryHandling::Bytes }))
}

/// The placeholder's bytes: `hex:` and hex digits are those bytes (Debezium's form for a
/// placeholder that is not text), anything else its UTF-8 bytes.
fn placeholder_bytes(placeholder: &str) -> Vec<u8> {
    if let Some(hex) = placeholder.strip_prefix("hex:") {
        if hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return (0..hex.len())
                .step_by(2)
                .filter_map(|at| u8::from_str_radix(&hex[at..at + 2], 16).ok())
                .collect();
        }
    }
    placeholder.as_bytes().to_vec()
}

/// Debezium's topic name rule: characters other than `[a-zA-Z0-9._-]` become `_`, at most 249.
fn sanitize_topic(name: &str) -> String {
    let mut topic: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    topic.truncate(249);
    topic
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::source::{SnapshotMarker, TransactionBlock};
    use crate::envelope::table::CellValue::{Null, Text, UnchangedToast};

    fn payload(record: &EnvelopeRecord) -> serde_json::Value {
        serde_json::from_slice(record.value.as_deref().unwrap()).unwrap()
    }

    fn builder(columns: Vec<ColumnSchema>, config: EnvelopeConfig) -> TableEnvelopeBuilder {
        let table = TableSchema {
            schema: "public".into(),
            table: "t".into(),
            columns,
            key_columns: vec!["id".into()],
        };
        TableEnvelopeBuilder::new(
            &table,
            &EnvelopeConfig {
                schemas_enabled: false,
                ..config
            },
        )
    }

    #[test]
    fn snapshot_reads_and_transaction_blocks() {
        let b = builder(
            vec![ColumnSchema::new("id", oid::INT4, "int4", true)],
            EnvelopeConfig::default(),
        );
        let source = SourcePosition {
            lsn: Some(10),
            tx_id: Some(7),
            commit_time_us: 1_000_001,
            snapshot: SnapshotMarker::First,
            transaction: Some(TransactionBlock {
                id: "7:10".into(),
                total_order: 1,
                data_collection_order: 1,
            }),
            ..SourcePosition::default()
        };
        let record = b
            .read(
                &[Text("1")],
                &source,
                ProcessingTime::from_unix_nanos(2_000_000_123),
            )
            .unwrap();
        let value = payload(&record);
        assert_eq!(value["op"], "r");
        assert_eq!(value["source"]["snapshot"], "first");
        assert_eq!(value["source"]["ts_ms"], 1000);
        assert_eq!(
            value["transaction"],
            serde_json::json!({"id":"7:10","total_order":1,"data_collection_order":1})
        );
        assert_eq!(
            (value["ts_ms"].as_i64(), value["ts_us"].as_i64()),
            (Some(2000), Some(2_000_000))
        );
        let incremental = SourcePosition {
            snapshot: SnapshotMarker::Incremental,
            ..source
        };
        let value = payload(
            &b.read(
                &[Text("1")],
                &incremental,
                ProcessingTime::from_unix_nanos(0),
            )
            .unwrap(),
        );
        assert_eq!(
            (
                value["source"]["lsn"].clone(),
                value["source"]["txId"].clone()
            ),
            (serde_json::Value::Null, serde_json::Value::Null)
        );
    }

    #[test]
    fn unchanged_toast_placeholders_take_the_column_shape() {
        let mut ints = ColumnSchema::new("ints", 1007, "_int4", false);
        ints.element_type_oid = Some(oid::INT4);
        let b = builder(
            vec![
                ColumnSchema::new("id", oid::INT4, "int4", true),
                ColumnSchema::new("blob", oid::BYTEA, "bytea", false),
                ColumnSchema::new("texts", 1009, "_text", false),
                ints,
                ColumnSchema::new("amount", oid::NUMERIC, "numeric", false),
            ],
            EnvelopeConfig {
                unavailable_value_placeholder: "__x".into(),
                ..EnvelopeConfig::default()
            },
        );
        let source = SourcePosition::default();
        let row = [
            Text("1"),
            UnchangedToast,
            UnchangedToast,
            UnchangedToast,
            Null,
        ];
        let value = payload(
            &b.update(None, &row, &source, ProcessingTime::from_unix_nanos(0))
                .unwrap(),
        );
        assert_eq!(value["after"]["blob"], "X194"); // base64 of "__x"
        assert_eq!(value["after"]["texts"], serde_json::json!(["__x"]));
        assert_eq!(value["after"]["ints"], serde_json::json!([95, 95, 120]));
        // A type without placeholder: the field is null and the value reported, the event written.
        let row = [Text("1"), Null, Null, Null, UnchangedToast];
        let record = b
            .update(None, &row, &source, ProcessingTime::from_unix_nanos(0))
            .unwrap();
        assert!(payload(&record)["after"]["amount"].is_null());
        assert_eq!(record.unconvertible.len(), 1);
        assert!(
            record.unconvertible[0]
                .reason
                .contains("REPLICA IDENTITY FULL"),
            "{}",
            record.unconvertible[0]
        );
    }

    #[test]
    fn unmapped_columns_can_be_omitted_like_debezium() {
        let b = builder(
            vec![
                ColumnSchema::new("id", oid::INT4, "int4", true),
                ColumnSchema::new("p", 603, "box", false),
            ],
            EnvelopeConfig {
                unknown_types: UnknownTypeHandling::Omit,
                ..EnvelopeConfig::default()
            },
        );
        assert_eq!(b.warnings().len(), 1);
        let record = b
            .create(
                &[Text("1"), Text("(1,2)")],
                &SourcePosition::default(),
                ProcessingTime::from_unix_nanos(0),
            )
            .unwrap();
        assert_eq!(payload(&record)["after"], serde_json::json!({"id": 1}));
    }

    #[test]
    fn unknown_key_columns_are_reported_not_fatal() {
        let table = TableSchema {
            schema: "public".into(),
            table: "t".into(),
            columns: vec![ColumnSchema::new("id", oid::INT4, "int4", true)],
            key_columns: vec!["gone".into()],
        };
        let b = TableEnvelopeBuilder::new(&table, &EnvelopeConfig::default());
        assert!(!b.has_key());
        assert_eq!(b.warnings()[0].column, "gone");
    }

    #[test]
    fn topic_names_are_sanitized() {
        assert_eq!(sanitize_topic("dbz.public.orders"), "dbz.public.orders");
        assert_eq!(sanitize_topic("dbz.my schema.Ordrë"), "dbz.my_schema.Ordr_");
    }
}
