//! The outcome of a conformance comparison, for people and for tests.
//!
//! Printed, a report names each record by table, operation, key and its position on each side,
//! then the path that differs, Debezium's value first:
//!
//! ```text
//! conformance: 12 Debezium records, 11 ours, 11 paired, 2 differences
//!   public.orders u {"id":1001} (dbz #4, ours #4): value.payload.after.total: dbz="AJw=" ours="AJ0="
//!   only in Debezium: public.orders tombstone {"id":1001} (dbz #5)
//! ```
//!
//! Long values are cut to their first characters and their length, so a 32 kB TOAST value
//! does not drown the report.

use std::fmt;

use serde_json::Value;

use crate::pairing::Pair;
use crate::record::Record;
use crate::CompareOptions;

/// Which record a difference is about: table (topic minus prefix), op, key, and its index in
/// Debezium's list and/or ours (0-based: the line of a recording, minus one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub table: String,
    pub op: String,
    pub key: String,
    pub debezium_index: Option<usize>,
    pub ours_index: Option<usize>,
}

impl RecordRef {
    fn of(record: &Record, prefix: &str) -> Self {
        Self {
            table: record.table(prefix),
            op: record.op(),
            key: record.key_text(),
            debezium_index: None,
            ours_index: None,
        }
    }

    pub(super) fn of_pair(debezium: &Record, pair: &Pair, options: &CompareOptions) -> Self {
        Self {
            debezium_index: Some(pair.debezium),
            ours_index: Some(pair.ours),
            ..Self::of(debezium, &options.debezium_topic_prefix)
        }
    }

    pub(super) fn of_debezium(record: &Record, index: usize, options: &CompareOptions) -> Self {
        Self {
            debezium_index: Some(index),
            ..Self::of(record, &options.debezium_topic_prefix)
        }
    }

    pub(super) fn of_ours(record: &Record, index: usize, options: &CompareOptions) -> Self {
        Self {
            ours_index: Some(index),
            ..Self::of(record, &options.our_topic_prefix)
        }
    }
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.table, self.op, self.key)?;
        match (self.debezium_index, self.ours_index) {
            (Some(dbz), Some(ours)) => write!(f, " (dbz #{dbz}, ours #{ours})"),
            (Some(dbz), None) => write!(f, " (dbz #{dbz})"),
            (None, Some(ours)) => write!(f, " (ours #{ours})"),
            (None, None) => Ok(()),
        }
    }
}

/// One way in which our records are not Debezium's.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// A paired record differs at `path`; `None` where that side lacks the field.
    Field {
        record: RecordRef,
        path: String,
        debezium: Option<Value>,
        ours: Option<Value>,
    },
    /// Debezium wrote this record and we wrote nothing that pairs with it.
    OnlyInDebezium(RecordRef),
    /// We wrote this record and Debezium wrote nothing that pairs with it.
    OnlyInOurs(RecordRef),
    /// Within `table`, our partner of Debezium's record `debezium_index` comes before the
    /// partner of an earlier Debezium record: the per-topic order differs.
    OrderDiffers {
        table: String,
        debezium_index: usize,
        ours_index: usize,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Field {
                record,
                path,
                debezium,
                ours,
            } => write!(
                f,
                "{record}: {path}: dbz={} ours={}",
                shown(debezium.as_ref()),
                shown(ours.as_ref())
            ),
            Difference::OnlyInDebezium(record) => write!(f, "only in Debezium: {record}"),
            Difference::OnlyInOurs(record) => write!(f, "only in ours: {record}"),
            Difference::OrderDiffers {
                table,
                debezium_index,
                ours_index,
            } => write!(
                f,
                "order differs in {table}: dbz #{debezium_index} pairs with ours #{ours_index}, \
                 which comes before the partner of an earlier Debezium record"
            ),
        }
    }
}

/// How many characters of a value a report line shows.
const SHOWN_CHARS: usize = 80;

/// A value as compact JSON, `(missing)` when absent, cut after [`SHOWN_CHARS`] characters.
fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(missing)".to_owned();
    };
    let text = value.to_string();
    let length = text.chars().count();
    if length <= SHOWN_CHARS {
        return text;
    }
    let start: String = text.chars().take(SHOWN_CHARS).collect();
    format!("{start}… ({length} chars)")
}

/// Everything a comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub debezium_records: usize,
    pub our_records: usize,
    pub paired: usize,
    pub differences: Vec<Difference>,
}

impl Report {
    /// True when every record paired and no pair differs beyond what is ignored.
    pub fn is_identical(&self) -> bool {
        self.differences.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance: {} Debezium records, {} ours, {} paired, ",
            self.debezium_records, self.our_records, self.paired
        )?;
        if self.is_identical() {
            return write!(f, "identical");
        }
        write!(f, "{} differences", self.differences.len())?;
        for difference in &self.differences {
            write!(f, "\n  {difference}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn orders_ref() -> RecordRef {
        RecordRef {
            table: "public.orders".into(),
            op: "u".into(),
            key: r#"{"id":1001}"#.into(),
            debezium_index: Some(4),
            ours_index: Some(3),
        }
    }

    #[test]
    fn prints_each_difference_on_its_own_line() {
        let report = Report {
            debezium_records: 2,
            our_records: 1,
            paired: 1,
            differences: vec![
                Difference::Field {
                    record: orders_ref(),
                    path: "value.payload.after.total".into(),
                    debezium: Some(json!("AJw=")),
                    ours: None,
                },
                Difference::OnlyInDebezium(RecordRef {
                    op: "tombstone".into(),
                    ours_index: None,
                    ..orders_ref()
                }),
            ],
        };
        assert!(!report.is_identical());
        assert_eq!(
            report.to_string(),
            "conformance: 2 Debezium records, 1 ours, 1 paired, 2 differences\n  \
             public.orders u {\"id\":1001} (dbz #4, ours #3): value.payload.after.total: dbz=\"AJw=\" ours=(missing)\n  \
             only in Debezium: public.orders tombstone {\"id\":1001} (dbz #4)"
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = json!("x".repeat(1000));
        let text = shown(Some(&long));
        assert!(text.ends_with("… (1002 chars)"), "{text}");
        assert_eq!(
            text.chars().count(),
            SHOWN_CHARS + "… (1002 chars)".len() - 2
        );
    }

    #[test]
    fn an_empty_report_is_identical() {
        let report = Report {
            debezium_records: 0,
            our_records: 0,
            paired: 0,
            differences: Vec::new(),
        };
        assert!(report.is_identical());
        assert_eq!(
            report.to_string(),
            "conformance: 0 Debezium records, 0 ours, 0 paired, identical"
        );
    }
}
