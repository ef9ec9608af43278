//! From decoded pgoutput messages to the records to write: the reader's "apply" step.
//!
//! ```text
//! pgoutput::Relation  -> catalog facts -> envelope::TableEnvelopeBuilder (one per table)
//! pgoutput::Begin     -> remember xid and commit time (source.txId, source.ts_ms)
//! pgoutput::Insert    -> op "c"                                  topic <prefix>.<schema>.<table>
//! pgoutput::Update    -> op "u"; a changed primary key becomes op "d" + tombstone + op "c"
//!                        with the __debezium.newkey / __debezium.oldkey headers
//! pgoutput::Delete    -> op "d" + tombstone (same key, null value)
//! pgoutput::Truncate  -> op "t" per table, null key
//! pgoutput::Message   -> op "m" on <prefix>.message
//! outbox insert       -> the routed event on outbox.event.<aggregatetype> (see `outbox`)
//! pgoutput::Commit    -> remember its end LSN (source.sequence of the next transaction)
//! ```
//!
//! The only I/O here is the catalog look-up when a table's Relation message arrives; turning a
//! change into records is pure and lives in `envelope`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::{Catalog, TableFacts};
use crate::envelope::{
    CellValue, ColumnSchema, EnvelopeConfig, EnvelopeRecord, ProcessingTime, SnapshotMarker,
    SourcePosition, TableEnvelopeBuilder, TableSchema,
};
use crate::lsn::Lsn;
use crate::outbox::{OutboxConfig, OutboxError};
use crate::pgoutput::{
    Begin, ColumnValue, Commit, LogicalMessage, PgOutputMessage, Relation, TupleData,
};

/// One record for the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why a change could not be turned into records.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("a change for relation {0} arrived before its Relation message")]
    UnknownRelation(u32),
    #[error("a row of {table} has {found} values for {expected} columns")]
    ColumnCount {
        table: String,
        expected: usize,
        found: usize,
    },
    #[error("building the envelope for {table}: {reason}")]
    Envelope { table: String, reason: String },
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// A captured table: its Relation message and its envelope builder.
struct CapturedTable {
    relation: Relation,
    builder: TableEnvelopeBuilder,
    /// Positions of the key columns in the row, to spot a changed key.
    key_positions: Vec<usize>,
}

/// The transaction being read.
#[derive(Debug, Clone, Copy, Default)]
struct OpenTransaction {
    xid: u32,
    commit_ts_us: i64,
}

/// Turns decoded messages into records; one per replication session.
pub struct ChangeTranslator {
    config: EnvelopeConfig,
    catalog: Catalog,
    tables: HashMap<u32, CapturedTable>,
    outbox: Option<OutboxConfig>,
    transaction: Option<OpenTransaction>,
    /// End LSN of the last commit seen in this session (Debezium's `lsn_commit`, the first half
    /// of `source.sequence`).
    last_commit_end: Option<Lsn>,
}

/// Processing time "now", for the envelope's top-level ts_ms/ts_us/ts_ns.
fn now() -> ProcessingTime {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ProcessingTime::from_unix_nanos(since_epoch.as_nanos() as i64)
}

/// Wall-clock microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    now().unix_nanos() / 1000
}

impl ChangeTranslator {
    pub fn new(config: EnvelopeConfig, catalog: Catalog, outbox: Option<OutboxConfig>) -> Self {
        ChangeTranslator {
            config,
            catalog,
            tables: HashMap::new(),
            outbox,
            transaction: None,
            last_commit_end: None,
        }
    }

    /// The catalog connection (the snapshot and heartbeat queries use it too).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A Relation message: (re)build the table's envelope builder. Called for every Relation
    /// message, so a schema change mid-stream shows in the next records.
    pub async fn define_relation(&mut self, relation: &Relation) -> Result<(), ChangeError> {
        let name = format!("{}.{}", relation.schema(), relation.name);
        let facts =
            self.catalog
                .table(relation.id, &name)
                .await
                .map_err(|e| ChangeError::Envelope {
                    table: name.clone(),
                    reason: e.to_string(),
                })?;
        self.install_table(relation.clone(), &facts);
        Ok(())
    }

    /// Sets up a table from its Relation message and catalog facts (pure; tests call it).
    pub fn install_table(&mut self, relation: Relation, facts: &TableFacts) {
        let schema = table_schema(&relation, facts);
        let key_positions = schema
            .key_columns
            .iter()
            .filter_map(|key| relation.columns.iter().position(|c| &c.name == key))
            .collect();
        let builder = TableEnvelopeBuilder::new(&schema, &self.config);
        for warning in builder.warnings() {
            tracing::warn!(table = %format!("{}.{}", schema.schema, schema.table), "{warning}");
        }
        self.tables.insert(
            relation.id,
            CapturedTable {
                relation,
                builder,
                key_positions,
            },
        );
    }

    /// Turns one message into records (appended to `out`); `lsn` is where the server says the
    /// message sits in the WAL (XLogData's start).
    pub fn translate(
        &mut self,
        message: &PgOutputMessage,
        lsn: Lsn,
        out: &mut Vec<OutputRecord>,
    ) -> Result<(), ChangeError> {
        match message {
            PgOutputMessage::Begin(begin) => self.begin(begin),
            PgOutputMessage::Insert(insert) => {
                let table = self.table(insert.relation_id)?;
                if let Some(outbox) = &self.outbox {
                    if outbox.matches(&table.relation) {
                        let event = outbox.route(&table.relation, &insert.new)?;
                        out.push(OutputRecord {
                            topic: Arc::from(event.topic.as_str()),
                            key: Some(event.key),
                            value: event.value,
                            headers: event.headers,
                        });
                        return Ok(());
                    }
                }
                let after = cells(table, &insert.new)?;
                let source = self.source(lsn);
                let record = table
                    .builder
                    .create(&after, &source, now())
                    .map_err(|e| envelope_error(table, e))?;
                out.push(to_output(record, Vec::new()));
            }
            PgOutputMessage::Update(update) => {
                let table = self.table(update.relation_id)?;
                if self.is_outbox(table) {
                    tracing::warn!(table = %table.relation.name, "an outbox row was updated; the event router ignores updates");
                    return Ok(());
                }
                let after = cells(table, &update.new)?;
                let before = match &update.old {
                    Some(old) => Some(cells(table, &old.tuple)?),
                    None => None,
                };
                let source = self.source(lsn);
                let key_changed = before.as_ref().is_some_and(|before| {
                    table.key_positions.iter().any(|&i| {
                        matches!((before.get(i), after.get(i)), (Some(CellValue::Text(a)), Some(CellValue::Text(b))) if a != b)
                    })
                });
                if key_changed {
                    // Debezium: a delete (and tombstone) under the old key, a create under the new.
                    let before = before.unwrap_or_default();
                    let old_key = table
                        .builder
                        .key_payload(&before)
                        .map_err(|e| envelope_error(table, e))?;
                    let new_key = table
                        .builder
                        .key_payload(&after)
                        .map_err(|e| envelope_error(table, e))?;
                    let new_key_header = vec![("__debezium.newkey".to_string(), new_key)];
                    let processing = now();
                    let deleted = table
                        .builder
                        .delete(&before, &source, processing)
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(to_output(deleted, new_key_header.clone()));
                    if self.config_tombstones() {
                        let tombstone = table
                            .builder
                            .tombstone(&before)
                            .map_err(|e| envelope_error(table, e))?;
                        out.push(to_output(tombstone, new_key_header));
                    }
                    let created = table
                        .builder
                        .create(&after, &source, processing)
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(to_output(
                        created,
                        vec![("__debezium.oldkey".to_string(), old_key)],
                    ));
                } else {
                    let record = table
                        .builder
                        .update(before.as_deref(), &after, &source, now())
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(to_output(record, Vec::new()));
                }
            }
            PgOutputMessage::Delete(delete) => {
                let table = self.table(delete.relation_id)?;
                if self.is_outbox(table) {
                    return Ok(()); // outbox deletes are ignored (insert-then-delete keeps the table empty)
                }
                let before = cells(table, &delete.old.tuple)?;
                let source = self.source(lsn);
                let record = table
                    .builder
                    .delete(&before, &source, now())
                    .map_err(|e| envelope_error(table, e))?;
                out.push(to_output(record, Vec::new()));
                if self.config_tombstones() {
                    let tombstone = table
                        .builder
                        .tombstone(&before)
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(to_output(tombstone, Vec::new()));
                }
            }
            PgOutputMessage::Truncate(truncate) => {
                let source_lsn = lsn;
                for relation_id in &truncate.relation_ids {
                    let table = self.table(*relation_id)?;
                    let source = self.source(source_lsn);
                    let record = table
                        .builder
                        .truncate(&source, now())
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(to_output(record, Vec::new()));
                }
            }
            PgOutputMessage::Message(message) => out.push(self.logical_message(message, lsn)?),
            PgOutputMessage::Commit(commit) => self.commit(commit),
            _ => {}
        }
        Ok(())
    }

    /// One row read by the snapshot (`op: "r"`), its values as text in the relation's column order.
    #[allow(clippy::too_many_arguments)]
    pub fn snapshot_row(
        &self,
        relation_id: u32,
        row: &[Option<String>],
        marker: SnapshotMarker,
        position: Lsn,
        tx_id: i64,
        started_us: i64,
        out: &mut Vec<OutputRecord>,
    ) -> Result<(), ChangeError> {
        let table = self.table(relation_id)?;
        if self.is_outbox(table) {
            return Ok(()); // past outbox rows are not events to replay
        }
        let after: Vec<CellValue<'_>> = row
            .iter()
            .map(|v| v.as_deref().map_or(CellValue::Null, CellValue::Text))
            .collect();
        let source = SourcePosition {
            lsn: Some(position.0),
            tx_id: u32::try_from(tx_id).ok(),
            commit_time_us: started_us,
            snapshot: marker,
            ..SourcePosition::default()
        };
        let record = table
            .builder
            .read(&after, &source, now())
            .map_err(|e| envelope_error(table, e))?;
        out.push(to_output(record, Vec::new()));
        Ok(())
    }

    fn begin(&mut self, begin: &Begin) {
        self.transaction = Some(OpenTransaction {
            xid: begin.xid,
            commit_ts_us: begin.commit_timestamp.to_unix_micros(),
        });
    }

    /// A Commit: the transaction is over; its end LSN starts the next one's `source.sequence`.
    pub fn commit(&mut self, commit: &Commit) {
        self.transaction = None;
        self.last_commit_end = Some(commit.end_lsn);
    }

    fn table(&self, relation_id: u32) -> Result<&CapturedTable, ChangeError> {
        self.tables
            .get(&relation_id)
            .ok_or(ChangeError::UnknownRelation(relation_id))
    }

    fn is_outbox(&self, table: &CapturedTable) -> bool {
        self.outbox
            .as_ref()
            .is_some_and(|o| o.matches(&table.relation))
    }

    fn config_tombstones(&self) -> bool {
        self.config.tombstones_on_delete
    }

    fn source(&self, lsn: Lsn) -> SourcePosition {
        let transaction = self.transaction.unwrap_or_default();
        SourcePosition {
            lsn: Some(lsn.0),
            last_commit_lsn: self.last_commit_end.map(|l| l.0),
            tx_id: self.transaction.map(|t| t.xid),
            commit_time_us: transaction.commit_ts_us,
            snapshot: SnapshotMarker::False,
            ..SourcePosition::default()
        }
    }

    fn logical_message(
        &self,
        message: &LogicalMessage,
        lsn: Lsn,
    ) -> Result<OutputRecord, ChangeError> {
        let source = self.source(message.lsn.max(lsn));
        let record = crate::envelope::logical_message(
            &self.config,
            message.transactional,
            &message.prefix,
            &message.content,
            &source,
            now(),
        )
        .map_err(|e| ChangeError::Envelope {
            table: "message".into(),
            reason: e.to_string(),
        })?;
        Ok(to_output(record, Vec::new()))
    }
}

fn envelope_error(table: &CapturedTable, error: impl std::fmt::Display) -> ChangeError {
    ChangeError::Envelope {
        table: format!("{}.{}", table.relation.schema(), table.relation.name),
        reason: error.to_string(),
    }
}

fn to_output(record: EnvelopeRecord, headers: Vec<(String, Vec<u8>)>) -> OutputRecord {
    OutputRecord {
        topic: record.topic,
        key: record.key,
        value: record.value,
        headers,
    }
}

/// A row's values as the envelope builder takes them.
fn cells<'a>(table: &CapturedTable, row: &'a TupleData) -> Result<Vec<CellValue<'a>>, ChangeError> {
    if row.columns.len() != table.relation.columns.len() {
        return Err(ChangeError::ColumnCount {
            table: format!("{}.{}", table.relation.schema(), table.relation.name),
            expected: table.relation.columns.len(),
            found: row.columns.len(),
        });
    }
    Ok(row
        .columns
        .iter()
        .map(|value| match value {
            ColumnValue::Null => CellValue::Null,
            ColumnValue::UnchangedToast => CellValue::UnchangedToast,
            ColumnValue::Text(text) => CellValue::Text(text.as_str()),
            // We ask for the text format; a binary value would be a server surprise.
            ColumnValue::Binary(_) => CellValue::Null,
        })
        .collect())
}

/// The envelope builder's view of a table: pgoutput's columns and types, the catalog's facts.
pub fn table_schema(relation: &Relation, facts: &TableFacts) -> TableSchema {
    let columns = relation
        .columns
        .iter()
        .map(|column| {
            let fact = facts.columns.get(&column.name).cloned().unwrap_or_default();
            ColumnSchema {
                name: column.name.clone(),
                type_oid: column.type_oid,
                type_modifier: column.type_modifier,
                type_name: fact.type_name,
                not_null: fact.not_null,
                default_expr: fact.default_expr,
                element_type_oid: fact.element_type_oid,
                enum_values: fact.enum_values,
            }
        })
        .collect();
    TableSchema {
        schema: relation.schema().to_string(),
        table: relation.name.clone(),
        columns,
        key_columns: facts.key_columns.clone(),
    }
}
