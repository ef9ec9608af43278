//! The sink's model of a change: what a decoded Kafka record says to do to one table.
//!
//! Everything between "bytes from Kafka" and "a write to a store" speaks these types:
//!
//! ```text
//! Kafka record ──decode──> RowChange { table, row } ──route──> RowChange (renamed table)
//!                                                   ──target──> PostgreSQL / Cassandra rows
//! ```
//!
//! A [`Row`] carries its own schema ([`Field`]s with a [`FieldType`]), because the stores need
//! it: PostgreSQL to create a table or add a column (`--schema-evolution basic`), Cassandra to
//! create a table (`--auto-create`). The types are Kafka Connect's and Debezium's *logical*
//! types, not Kafka Connect's wire types: a Debezium `io.debezium.time.MicroTimestamp` is an
//! `int64` on the wire and a [`FieldType::Timestamp`] here, so a target maps it back to
//! `timestamp` and not to `bigint`. The values are normalised in the same step (every time of
//! day in microseconds, whatever precision Debezium sent), so targets need no Debezium
//! knowledge at all.
//!
//! Pure data, no I/O.

use std::fmt;

/// The table a change goes to, after routing (`--route`). `schema` is the PostgreSQL schema
/// (or nothing: the target's default, `public` / the keyspace of `--to`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    pub schema: Option<String>,
    pub table: String,
}

impl TableId {
    pub fn new(schema: Option<&str>, table: &str) -> Self {
        Self {
            schema: schema.map(str::to_string),
            table: table.to_string(),
        }
    }

    /// Parses `schema.table` or `table` (the form `--route` replacements produce).
    pub fn parse(name: &str) -> Self {
        match name.split_once('.') {
            Some((schema, table)) if !schema.is_empty() && !table.is_empty() => {
                Self::new(Some(schema), table)
            }
            _ => Self::new(None, name),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// The type of one field: Kafka Connect's primitive types refined by the logical type the
/// record's schema names (`connect.name` / `name`).
///
/// ```text
/// Debezium / Connect schema                               FieldType
/// boolean                                                 Boolean
/// int8 / int16 / int32 / int64                            Int8 / Int16 / Int32 / Int64
/// float32 / float64                                       Float32 / Float64
/// string                                                  Text
/// bytes                                                   Bytes
/// org.apache.kafka.connect.data.Decimal (bytes, scale)    Decimal { precision, scale }
/// io.debezium.data.VariableScaleDecimal (struct)          VariableScaleDecimal
/// io.debezium.data.Uuid (string)                          Uuid
/// io.debezium.data.Json (string)                          Json
/// io.debezium.time.Date, o.a.k.connect.data.Date          Date
/// io.debezium.time.Time / MicroTime / NanoTime            Time           (micros)
/// io.debezium.time.Timestamp / MicroTimestamp / Nano...   Timestamp      (micros, no zone)
/// io.debezium.time.ZonedTimestamp (string)                TimestampTz
/// io.debezium.time.ZonedTime (string)                     TimeTz
/// io.debezium.time.MicroDuration (int64)                  Interval       (micros)
/// array of T                                              Array(T)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Text,
    Bytes,
    /// A decimal with a fixed scale (PostgreSQL `numeric(p, s)`), and its precision when the
    /// schema says it (Debezium's `connect.decimal.precision` parameter).
    Decimal {
        precision: Option<u32>,
        scale: u32,
    },
    /// A decimal whose scale travels with each value (PostgreSQL `numeric` without a typmod).
    VariableScaleDecimal,
    Uuid,
    Json,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since midnight.
    Time,
    /// Microseconds since 1970-01-01 00:00:00, no time zone (PostgreSQL `timestamp`).
    Timestamp,
    /// An instant, as ISO-8601 text with an offset (Debezium's `ZonedTimestamp`).
    TimestampTz,
    /// A time of day with an offset, as ISO-8601 text (Debezium's `ZonedTime`).
    TimeTz,
    /// A duration in microseconds (Debezium's `MicroDuration`).
    Interval,
    Array(Box<FieldType>),
}

impl FieldType {
    /// Whether values of this type can take part in a primary key.
    pub fn can_be_key(&self) -> bool {
        !matches!(
            self,
            FieldType::Json | FieldType::Array(_) | FieldType::Float32 | FieldType::Float64
        )
    }
}

/// One column of a row: its name, type and whether it may be null.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub optional: bool,
}

impl Field {
    pub fn new(name: &str, ty: FieldType, optional: bool) -> Self {
        Self {
            name: name.to_string(),
            ty,
            optional,
        }
    }
}

/// One value, normalised (see the module comment): the target converts it to its own type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every integer type (Int8 .. Int64), and [`FieldType::Interval`] micros.
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// The exact decimal text, e.g. `-12.50` (never a float: a mirror must be exact).
    Decimal(String),
    Uuid(uuid::Uuid),
    Json(serde_json::Value),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    TimeMicros(i64),
    /// Microseconds since 1970-01-01 00:00:00 (no zone).
    TimestampMicros(i64),
    /// ISO-8601 with an offset, as Debezium sends it (`2026-12-03T14:20:00.123456Z`); also
    /// [`FieldType::TimeTz`] values (`14:20:00Z`).
    TimestampTz(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A row: its fields, their values (same order, same length), and which fields form the
/// primary key (names, in key order; empty with `--primary-key-mode none`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub fields: Vec<Field>,
    pub values: Vec<Value>,
    pub key: Vec<String>,
}

impl Row {
    /// The value of field `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| &self.values[i])
    }

    /// The field called `name`, if the row has it.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The key fields with their values, in key order (a key name the row lacks is skipped:
    /// [`crate::change`] users check keys when rows are built, see `decode`).
    pub fn key_values(&self) -> Vec<(&Field, &Value)> {
        self.key
            .iter()
            .filter_map(|name| {
                let i = self.fields.iter().position(|f| &f.name == name)?;
                Some((&self.fields[i], &self.values[i]))
            })
            .collect()
    }

    /// Only the key fields (for a delete).
    pub fn key_row(&self) -> Row {
        let (fields, values) = self
            .key_values()
            .into_iter()
            .map(|(f, v)| (f.clone(), v.clone()))
            .unzip();
        Row {
            fields,
            values,
            key: self.key.clone(),
        }
    }
}

/// What one Kafka record asks the target to do.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// Insert, or replace the row with the same key (`--insert-mode upsert`; with
    /// `--insert-mode insert` a plain insert).
    Upsert { table: TableId, row: Row },
    /// Delete the row with this key (`key` holds only the key fields).
    Delete { table: TableId, key: Row },
    /// Delete every row of the table.
    Truncate { table: TableId },
}

impl RowChange {
    pub fn table(&self) -> &TableId {
        match self {
            RowChange::Upsert { table, .. }
            | RowChange::Delete { table, .. }
            | RowChange::Truncate { table } => table,
        }
    }

    pub fn table_mut(&mut self) -> &mut TableId {
        match self {
            RowChange::Upsert { table, .. }
            | RowChange::Delete { table, .. }
            | RowChange::Truncate { table } => table,
        }
    }

    /// `upsert`, `delete` or `truncate`: the `op` label of the metrics.
    pub fn op(&self) -> &'static str {
        match self {
            RowChange::Upsert { .. } => "upsert",
            RowChange::Delete { .. } => "delete",
            RowChange::Truncate { .. } => "truncate",
        }
    }
}

/// Where a record came from in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ids_parse_and_print() {
        assert_eq!(
            TableId::parse("public.orders"),
            TableId::new(Some("public"), "orders")
        );
        assert_eq!(TableId::parse("orders"), TableId::new(None, "orders"));
        assert_eq!(TableId::parse("public.orders").to_string(), "public.orders");
    }

    #[test]
    fn key_row_keeps_only_the_key() {
        let row = Row {
            fields: vec![
                Field::new("id", FieldType::Int64, false),
                Field::new("status", FieldType::Text, false),
            ],
            values: vec![Value::Int(7), Value::Text("NEW".into())],
            key: vec!["id".into()],
        };
        let key = row.key_row();
        assert_eq!(key.fields.len(), 1);
        assert_eq!(key.values, vec![Value::Int(7)]);
        assert_eq!(row.get("status"), Some(&Value::Text("NEW".into())));
    }
}
