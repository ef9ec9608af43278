//! What the envelope builder is given: a table's description and rows of text values.
//!
//! The builder does not read pgoutput itself. The caller (the pipeline) fills a [`TableSchema`]
//! from a pgoutput Relation message plus a catalog query (NOT NULL, defaults, enum labels,
//! primary key), and hands each row over as [`CellValue`]s in column order, exactly as pgoutput
//! sent them in text format:
//!
//! ```text
//! pgoutput TupleData    't' "47.40"   'n'          'u'
//! CellValue             Text("47.40") Null         UnchangedToast
//! ```

/// A captured table, as the envelope builder needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The PostgreSQL schema (namespace), e.g. `public`.
    pub schema: String,
    /// The table name, e.g. `orders`.
    pub table: String,
    /// Every column, in the order of the Relation message (= the order of row values).
    pub columns: Vec<ColumnSchema>,
    /// The columns of the event key, in primary-key order (`pg_index.indkey` of the primary key;
    /// Debezium falls back to the first unique index when there is none). Empty: the table has
    /// no key, its events have a null key.
    pub key_columns: Vec<String>,
}

/// One column of a [`TableSchema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    /// `pg_attribute.atttypid` (the Relation message's type OID). For a domain pass its base
    /// type's OID, as Debezium maps domains by their base type.
    pub type_oid: u32,
    /// `pg_attribute.atttypmod` (the Relation message's type modifier; -1 when none). It carries
    /// `numeric(p,s)` and the fractional-second precision of `timestamp(p)`/`time(p)`.
    pub type_modifier: i32,
    /// `pg_type.typname` of the column's own type: `int8`, `numeric`, `timestamptz`, `_text`,
    /// an enum's name, a domain's name. Debezium picks how to read a column DEFAULT by it.
    pub type_name: String,
    /// `pg_attribute.attnotnull`: NOT NULL columns get `"optional": false`.
    pub not_null: bool,
    /// `pg_get_expr(adbin, adrelid)` of the column default: `'NEW'::text`, `now()`, `0.00`.
    pub default_expr: Option<String>,
    /// For arrays: the element type's OID (`pg_type.typelem`).
    pub element_type_oid: Option<u32>,
    /// For enums and arrays of enums: the labels in `enumsortorder`.
    pub enum_values: Option<Vec<String>>,
}

/// One value of a row, as pgoutput sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellValue<'a> {
    /// SQL NULL (pgoutput `n`); in a key-only old tuple also "not sent".
    Null,
    /// A TOASTed value that did not change and was not sent (pgoutput `u`).
    UnchangedToast,
    /// The value in PostgreSQL's text output format (pgoutput `t`), e.g. `2024-05-01 10:00:00+00`.
    Text(&'a str),
}

impl ColumnSchema {
    /// A column with no modifier, default, array or enum facts: handy in tests and examples.
    pub fn new(name: &str, type_oid: u32, type_name: &str, not_null: bool) -> Self {
        ColumnSchema {
            name: name.to_string(),
            type_oid,
            type_modifier: -1,
            type_name: type_name.to_string(),
            not_null,
            default_expr: None,
            element_type_oid: None,
            enum_values: None,
        }
    }
}
