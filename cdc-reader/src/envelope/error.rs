//! What can go wrong turning a row into an envelope.

/// An event could not be built; the message names the table and column and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "table {table}: a row has {actual} values but the table has {expected} columns; \
         the table description is out of date (a Relation message was missed?)"
    )]
    RowLength {
        table: String,
        expected: usize,
        actual: usize,
    },

    #[error("table {table}, column {column} ({type_name}): cannot convert {value:?}: {reason}")]
    InvalidValue {
        table: String,
        column: String,
        type_name: String,
        value: String,
        reason: String,
    },

    #[error(
        "table {table}, column {column} ({type_name}): the value is an unchanged TOAST value, the old \
         value is not known and this type has no placeholder; set REPLICA IDENTITY FULL on the table"
    )]
    UnchangedToast {
        table: String,
        column: String,
        type_name: String,
    },
}

/// A column the builder maps differently from Debezium, noticed once when the table is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaWarning {
    pub column: String,
    pub type_name: String,
    pub message: String,
}

impl std::fmt::Display for SchemaWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column {} ({}): {}",
            self.column, self.type_name, self.message
        )
    }
}
