//! Debezium's signals, as rows of the signal table (`--signal-data-collection`), decoded.
//!
//! The signal table has Debezium's layout, and a signal is an INSERT into it; the reader sees
//! the insert in the replication stream like any other change:
//!
//! ```text
//! CREATE TABLE debezium_signal (id varchar PRIMARY KEY, type varchar NOT NULL, data varchar);
//!
//! id      | type                  | data
//! --------+-----------------------+----------------------------------------------------------
//! ad-hoc-1| execute-snapshot      | {"data-collections": ["public.orders"], "type": "incremental",
//!         |                       |  "additional-conditions": [{"data-collection": "public.orders",
//!         |                       |                             "filter": "customer_id > 10"}]}
//! ad-hoc-2| stop-snapshot         | {"data-collections": ["public.orders"], "type": "incremental"}
//! ad-hoc-3| pause-snapshot        | {"type": "incremental"}
//! ad-hoc-4| resume-snapshot       | {"type": "incremental"}
//! 8f..-open  | snapshot-window-open  | {...}   written by the reader itself: the low watermark
//! 8f..-close | snapshot-window-close | {...}   and the high watermark of one chunk
//! ```
//!
//! Pure: a row's three values in, a [`Signal`] out.

use serde::Deserialize;

/// The `type` of the reader's own watermark rows (Debezium's names).
pub const WINDOW_OPEN: &str = "snapshot-window-open";
pub const WINDOW_CLOSE: &str = "snapshot-window-close";

/// One table of an `execute-snapshot` signal, with its optional `additional-conditions` filter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct RequestedTable {
    /// `schema.table` (a name without schema means `public`).
    pub name: String,
    /// A SQL condition the chunk queries add (`customer_id > 10`).
    pub filter: Option<String>,
}

/// What a signal row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Snapshot these tables, in this order, chunk by chunk.
    ExecuteSnapshot {
        tables: Vec<RequestedTable>,
    },
    /// Stop snapshotting these tables (all when empty).
    StopSnapshot {
        tables: Vec<String>,
    },
    PauseSnapshot,
    ResumeSnapshot,
    /// A low watermark (`<chunk id>-open`).
    WindowOpen {
        chunk_id: String,
    },
    /// A high watermark (`<chunk id>-close`).
    WindowClose {
        chunk_id: String,
    },
}

/// A signal the reader cannot act on: logged (with this text) and skipped; the reader goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("signal {id}: unknown type '{kind}' (expected execute-snapshot, stop-snapshot, pause-snapshot or resume-snapshot)")]
    UnknownType { id: String, kind: String },
    #[error("signal {id}: its data is not the JSON Debezium expects ({reason}), e.g. {{\"data-collections\": [\"public.orders\"], \"type\": \"incremental\"}}")]
    BadData { id: String, reason: String },
    #[error("signal {id}: snapshot type '{kind}' is not supported: only \"incremental\" (blocking snapshots are not implemented)")]
    UnsupportedSnapshotType { id: String, kind: String },
    #[error("signal {id}: execute-snapshot names no table in data-collections")]
    NoTables { id: String },
}

#[derive(Debug, Deserialize)]
struct SnapshotData {
    #[serde(rename = "data-collections", default)]
    data_collections: Vec<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "additional-conditions", default)]
    additional_conditions: Vec<AdditionalCondition>,
}

#[derive(Debug, Deserialize)]
struct AdditionalCondition {
    #[serde(rename = "data-collection")]
    data_collection: String,
    filter: String,
}

/// `orders` -> `public.orders`; `"public"."orders"` stays as written minus the quotes.
pub fn qualified_name(name: &str) -> String {
    let name = name.trim().replace('"', "");
    if name.contains('.') {
        name
    } else {
        format!("public.{name}")
    }
}

/// Decodes one signal row (`id`, `type`, `data`).
pub fn parse(id: &str, kind: &str, data: Option<&str>) -> Result<Signal, SignalError> {
    let chunk_of = |suffix: &str| id.strip_suffix(suffix).unwrap_or(id).to_string();
    match kind {
        WINDOW_OPEN => {
            return Ok(Signal::WindowOpen {
                chunk_id: chunk_of("-open"),
            })
        }
        WINDOW_CLOSE => {
            return Ok(Signal::WindowClose {
                chunk_id: chunk_of("-close"),
            })
        }
        "execute-snapshot" | "stop-snapshot" | "pause-snapshot" | "resume-snapshot" => {}
        other => {
            return Err(SignalError::UnknownType {
                id: id.to_string(),
                kind: other.to_string(),
            })
        }
    }
    let text = data
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or("{}");
    let data: SnapshotData = serde_json::from_str(text).map_err(|e| SignalError::BadData {
        id: id.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(snapshot_kind) = &data.kind {
        if !snapshot_kind.eq_ignore_ascii_case("incremental") {
            return Err(SignalError::UnsupportedSnapshotType {
                id: id.to_string(),
                kind: snapshot_kind.clone(),
            });
        }
    }
    let tables: Vec<String> = data
        .data_collections
        .iter()
        .map(|t| qualified_name(t))
        .collect();
    Ok(match kind {
        "execute-snapshot" => {
            if tables.is_empty() {
                return Err(SignalError::NoTables { id: id.to_string() });
            }
            let filter_of = |table: &str| {
                data.additional_conditions
                    .iter()
                    .find(|c| qualified_name(&c.data_collection) == table)
                    .map(|c| c.filter.clone())
                    .filter(|f| !f.trim().is_empty())
            };
            Signal::ExecuteSnapshot {
                tables: tables
                    .iter()
                    .map(|name| RequestedTable {
                        name: name.clone(),
                        filter: filter_of(name),
                    })
                    .collect(),
            }
        }
        "stop-snapshot" => Signal::StopSnapshot { tables },
        "pause-snapshot" => Signal::PauseSnapshot,
        _ => Signal::ResumeSnapshot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_snapshot_with_conditions() {
        let signal = parse(
            "s1",
            "execute-snapshot",
            Some(r#"{"data-collections": ["public.orders", "order_items"], "type": "INCREMENTAL",
                     "additional-conditions": [{"data-collection": "public.order_items", "filter": "line_no = 1"}]}"#),
        )
        .unwrap();
        assert_eq!(
            signal,
            Signal::ExecuteSnapshot {
                tables: vec![
                    RequestedTable {
                        name: "public.orders".into(),
                        filter: None
                    },
                    RequestedTable {
                        name: "public.order_items".into(),
                        filter: Some("line_no = 1".into())
                    },
                ]
            }
        );
    }

    #[test]
    fn the_other_signals_and_the_watermarks() {
        assert_eq!(
            parse("s2", "stop-snapshot", Some(r#"{"type":"incremental"}"#)).unwrap(),
            Signal::StopSnapshot { tables: vec![] }
        );
        assert_eq!(
            parse("s3", "pause-snapshot", None).unwrap(),
            Signal::PauseSnapshot
        );
        assert_eq!(
            parse("s4", "resume-snapshot", Some("")).unwrap(),
            Signal::ResumeSnapshot
        );
        assert_eq!(
            parse("abc-open", WINDOW_OPEN, Some("{}")).unwrap(),
            Signal::WindowOpen {
                chunk_id: "abc".into()
            }
        );
        assert_eq!(
            parse("abc-close", WINDOW_CLOSE, None).unwrap(),
            Signal::WindowClose {
                chunk_id: "abc".into()
            }
        );
    }

    #[test]
    fn bad_signals_say_what_is_expected() {
        let unknown = parse("x", "log", None).unwrap_err().to_string();
        assert!(unknown.contains("expected execute-snapshot"), "{unknown}");
        let bad = parse("x", "execute-snapshot", Some("not json"))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("data-collections"), "{bad}");
        let blocking = parse(
            "x",
            "execute-snapshot",
            Some(r#"{"data-collections":["a"],"type":"blocking"}"#),
        );
        assert!(matches!(
            blocking,
            Err(SignalError::UnsupportedSnapshotType { .. })
        ));
        assert!(matches!(
            parse("x", "execute-snapshot", Some(r#"{"type":"incremental"}"#)),
            Err(SignalError::NoTables { .. })
        ));
    }
}
