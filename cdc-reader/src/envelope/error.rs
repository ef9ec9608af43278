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

/// A value the builder could not convert (numeric `NaN` under precise decimals, a text form it
/// does not know, an unchanged TOAST value it cannot fill in). The event is written anyway with
/// the field null, as Debezium does under its default `event.converting.failure.handling.mode=warn`;
/// the caller logs this with the table and LSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnconvertibleValue {
    pub column: String,
    pub type_name: String,
    /// The first 100 characters of the value's text form (empty for an unchanged TOAST value).
    pub value: String,
    /// Why it could not be converted, and what to do about it when something can be done.
    pub reason: String,
}

impl std::fmt::Display for UnconvertibleValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column {} ({}): cannot convert {:?}: {}; the field is written as null",
            self.column, self.type_name, self.value, self.reason
        )
    }
}
