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
    SourcePosition, TableEnvelopeBuilder, TableSchema, TransactionBlock,
};
use crate::lsn::Lsn;
use crate::outbox::{OutboxConfig, OutboxError};
use crate::pgoutput::{
    Begin, ColumnValue, Commit, LogicalMessage, PgOutputMessage, Relation, TupleData,
};
use crate::transaction_metadata::{self, transaction_id, TransactionCounts};

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
#[derive(Clone)]
struct CapturedTable {
    relation: Relation,
    builder: TableEnvelopeBuilder,
    /// Positions of the key columns in the row, to spot a changed key.
    key_positions: Vec<usize>,
}

/// The transaction being read.
#[derive(Debug, Clone, Default)]
struct OpenTransaction {
    xid: u32,
    commit_ts_us: i64,
    /// Event counts for `--provide-transaction-metadata`.
    counts: TransactionCounts,
}

/// Debezium's `skipped.operations`: the change operations that are not written at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkippedOperations {
    pub creates: bool,
    pub updates: bool,
    pub deletes: bool,
    pub truncates: bool,
}

impl SkippedOperations {
    /// `none`, or a comma-separated list of `c`, `u`, `d`, `t`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut skipped = SkippedOperations::default();
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(skipped);
        }
        for operation in text.split(',').map(str::trim).filter(|op| !op.is_empty()) {
            match operation {
                "c" => skipped.creates = true,
                "u" => skipped.updates = true,
                "d" => skipped.deletes = true,
                "t" => skipped.truncates = true,
                other => {
                    return Err(format!(
                        "'{other}' is not an operation: expected none, or any of c,u,d,t"
                    ))
                }
            }
        }
        Ok(skipped)
    }

    /// True when the message's operation is skipped (an update that changes the key counts as
    /// an update, as in Debezium: none of its delete, tombstone and create is written).
    fn skips(&self, message: &PgOutputMessage) -> bool {
        match message {
            PgOutputMessage::Insert(_) => self.creates,
            PgOutputMessage::Update(_) => self.updates,
            PgOutputMessage::Delete(_) => self.deletes,
            PgOutputMessage::Truncate(_) => self.truncates,
            _ => false,
        }
    }
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
    /// Commit time of the last transaction (a non-transactional message carries it, as in Debezium).
    last_commit_time_us: i64,
    /// `--provide-transaction-metadata`: BEGIN/END records and the `transaction` block.
    transaction_metadata: bool,
    /// `--skipped-operations`.
    skipped: SkippedOperations,
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
            last_commit_time_us: 0,
            transaction_metadata: false,
            skipped: SkippedOperations::default(),
        }
    }

    /// Leaves out the changes of these operations (Debezium's `skipped.operations`).
    pub fn with_skipped_operations(mut self, skipped: SkippedOperations) -> Self {
        self.skipped = skipped;
        self
    }

    /// Turns on BEGIN/END records on `<prefix>.transaction` and the `transaction` block.
    pub fn with_transaction_metadata(mut self, enabled: bool) -> Self {
        self.transaction_metadata = enabled;
        self
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
        if self.skipped.skips(message) {
            return Ok(());
        }
        match message {
            PgOutputMessage::Begin(begin) => {
                self.begin(begin);
                if self.transaction_metadata {
                    let id = transaction_id(begin.xid, lsn);
                    out.push(self.transaction_record(
                        &id,
                        transaction_metadata::begin_value(
                            &id,
                            begin.commit_timestamp.to_unix_millis(),
                            self.config.schemas_enabled,
                        ),
                    ));
                }
            }
            PgOutputMessage::Insert(insert) => {
                let source = self.event_source(lsn, insert.relation_id);
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
                let record = table
                    .builder
                    .create(&after, &source, now())
                    .map_err(|e| envelope_error(table, e))?;
                out.push(table_output(table, lsn, record, Vec::new()));
            }
            PgOutputMessage::Update(update) => {
                let source = self.event_source(lsn, update.relation_id);
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
                // Debezium compares the primary key built from the old tuple with the new one.
                // Under REPLICA IDENTITY USING INDEX on other columns, the old tuple lacks the
                // key: Debezium then sees a key of zeroes, so a "key change" (we do the same).
                let key_changed = before.as_ref().is_some_and(|before| {
                    table
                        .key_positions
                        .iter()
                        .any(|&i| match (before.get(i), after.get(i)) {
                            (Some(CellValue::Text(old)), Some(CellValue::Text(new))) => old != new,
                            (Some(CellValue::Null), Some(CellValue::Text(_))) => true,
                            _ => false,
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
                    out.push(table_output(table, lsn, deleted, new_key_header.clone()));
                    if self.config_tombstones() {
                        let tombstone = table
                            .builder
                            .tombstone(&before)
                            .map_err(|e| envelope_error(table, e))?;
                        out.push(table_output(table, lsn, tombstone, new_key_header));
                    }
                    let created = table
                        .builder
                        .create(&after, &source, processing)
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(table_output(
                        table,
                        lsn,
                        created,
                        vec![("__debezium.oldkey".to_string(), old_key)],
                    ));
                } else {
                    let record = table
                        .builder
                        .update(before.as_deref(), &after, &source, now())
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(table_output(table, lsn, record, Vec::new()));
                }
            }
            PgOutputMessage::Delete(delete) => {
                let source = self.event_source(lsn, delete.relation_id);
                let table = self.table(delete.relation_id)?;
                if self.is_outbox(table) {
                    return Ok(()); // outbox deletes are ignored (insert-then-delete keeps the table empty)
                }
                let before = cells(table, &delete.old.tuple)?;
                let record = table
                    .builder
                    .delete(&before, &source, now())
                    .map_err(|e| envelope_error(table, e))?;
                out.push(table_output(table, lsn, record, Vec::new()));
                if self.config_tombstones() {
                    let tombstone = table
                        .builder
                        .tombstone(&before)
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(table_output(table, lsn, tombstone, Vec::new()));
                }
            }
            PgOutputMessage::Truncate(truncate) => {
                for relation_id in &truncate.relation_ids {
                    let source = self.event_source(lsn, *relation_id);
                    let table = self.table(*relation_id)?;
                    let record = table
                        .builder
                        .truncate(&source, now())
                        .map_err(|e| envelope_error(table, e))?;
                    out.push(to_output(record, Vec::new()));
                }
            }
            PgOutputMessage::Message(message) => {
                if self.transaction.is_none() {
                    // Debezium treats a non-transactional message as completely processed at
                    // its own LSN: it starts its own source.sequence and the next transaction's.
                    self.last_commit_end = Some(message.lsn.max(lsn));
                }
                out.push(self.logical_message(message, lsn)?)
            }
            PgOutputMessage::Commit(commit) => {
                if let (true, Some(open)) = (self.transaction_metadata, &self.transaction) {
                    let id = transaction_id(open.xid, lsn);
                    let value = transaction_metadata::end_value(
                        &id,
                        commit.commit_timestamp.to_unix_millis(),
                        &open.counts,
                        self.config.schemas_enabled,
                    );
                    out.push(self.transaction_record(&id, value));
                }
                self.commit(commit);
            }
            _ => {}
        }
        Ok(())
    }

    /// A session that resumes an existing slot at `confirmed`: every transaction it streams
    /// commits after that LSN, so it stands in for the end of the last commit in the first
    /// transaction's `source.sequence` (Debezium keeps the exact one in its offsets). Without
    /// it the first transaction after a restart would say `[null, ...]`, and a consumer that
    /// orders by commit first (projections' `Position::Sequence`) could not place it after an
    /// incremental snapshot read.
    pub fn resuming_at(mut self, confirmed: Lsn) -> Self {
        self.last_commit_end = Some(confirmed);
        self
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
        out.push(snapshot_record(
            table, row, marker, position, tx_id, started_us,
        )?);
        Ok(())
    }

    /// What the parallel snapshot's workers need to build the `op: "r"` records of one table
    /// themselves, exactly as [`Self::snapshot_row`] does (None: an outbox table, whose past
    /// rows are not written).
    pub fn snapshot_row_builder(
        &self,
        relation_id: u32,
        position: Lsn,
        tx_id: i64,
        started_us: i64,
    ) -> Result<Option<SnapshotRowBuilder>, ChangeError> {
        let table = self.table(relation_id)?;
        if self.is_outbox(table) {
            return Ok(None);
        }
        Ok(Some(SnapshotRowBuilder {
            table: Arc::new(table.clone()),
            position,
            tx_id,
            started_us,
        }))
    }

    fn begin(&mut self, begin: &Begin) {
        self.transaction = Some(OpenTransaction {
            xid: begin.xid,
            commit_ts_us: begin.commit_timestamp.to_unix_micros(),
            counts: TransactionCounts::default(),
        });
    }

    /// A Commit: the transaction is over; its end LSN starts the next one's `source.sequence`.
    fn commit(&mut self, commit: &Commit) {
        self.transaction = None;
        self.last_commit_end = Some(commit.end_lsn);
        self.last_commit_time_us = commit.commit_timestamp.to_unix_micros();
    }

    /// A BEGIN or END record on `<prefix>.transaction`.
    fn transaction_record(&self, id: &str, value: Vec<u8>) -> OutputRecord {
        OutputRecord {
            topic: Arc::from(
                transaction_metadata::transaction_topic(&self.config.topic_prefix).as_str(),
            ),
            key: Some(transaction_metadata::key(id, self.config.schemas_enabled)),
            value: Some(value),
            headers: Vec::new(),
        }
    }

    /// The source position of a change event of `relation_id`, counting it for the
    /// transaction metadata when that is on.
    fn event_source(&mut self, lsn: Lsn, relation_id: u32) -> SourcePosition {
        let mut position = self.source(lsn);
        if let (true, Some(open)) = (self.transaction_metadata, self.transaction.as_mut()) {
            let table = self
                .tables
                .get(&relation_id)
                .map(|t| format!("{}.{}", t.relation.schema(), t.relation.name))
                .unwrap_or_default();
            let (total_order, data_collection_order) = open.counts.count(&table);
            position.transaction = Some(TransactionBlock {
                id: transaction_id(open.xid, lsn),
                total_order,
                data_collection_order,
            });
        }
        position
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
        SourcePosition {
            lsn: Some(lsn.0),
            last_commit_lsn: self.last_commit_end.map(|l| l.0),
            tx_id: self.transaction.as_ref().map(|t| t.xid),
            // Outside a transaction (a non-transactional message) Debezium keeps the last
            // commit's time.
            commit_time_us: self
                .transaction
                .as_ref()
                .map_or(self.last_commit_time_us, |t| t.commit_ts_us),
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

/// One snapshot row's `op: "r"` record (initial or incremental, by `marker`).
fn snapshot_record(
    table: &CapturedTable,
    row: &[Option<String>],
    marker: SnapshotMarker,
    position: Lsn,
    tx_id: i64,
    started_us: i64,
) -> Result<OutputRecord, ChangeError> {
    let after: Vec<CellValue<'_>> = row
        .iter()
        .map(|v| v.as_deref().map_or(CellValue::Null, CellValue::Text))
        .collect();
    // An incremental read goes out at its chunk's high watermark: Debezium writes that
    // watermark's LSN as both halves of `source.sequence` (conformance/debezium/
    // incremental_snapshot/), which is what orders it against streamed changes downstream.
    let last_commit_lsn = (marker == SnapshotMarker::Incremental).then_some(position.0);
    let source = SourcePosition {
        lsn: Some(position.0),
        last_commit_lsn,
        tx_id: u32::try_from(tx_id).ok(),
        commit_time_us: started_us,
        snapshot: marker,
        ..SourcePosition::default()
    };
    let record = table
        .builder
        .read(&after, &source, now())
        .map_err(|e| envelope_error(table, e))?;
    Ok(table_output(table, position, record, Vec::new()))
}

/// Builds one table's initial-snapshot records off the stream's task (a parallel snapshot
/// worker holds one): the same records as [`ChangeTranslator::snapshot_row`].
#[derive(Clone)]
pub struct SnapshotRowBuilder {
    table: Arc<CapturedTable>,
    position: Lsn,
    tx_id: i64,
    started_us: i64,
}

impl SnapshotRowBuilder {
    /// The record of one row (its values as text, in the relation's column order).
    pub fn build(
        &self,
        row: &[Option<String>],
        marker: SnapshotMarker,
    ) -> Result<OutputRecord, ChangeError> {
        snapshot_record(
            &self.table,
            row,
            marker,
            self.position,
            self.tx_id,
            self.started_us,
        )
    }
}

/// A table's record for the sink, after a warning for each value written as null because it
/// could not be converted (the rule: no value PostgreSQL accepts stops the reader).
fn table_output(
    table: &CapturedTable,
    lsn: Lsn,
    record: EnvelopeRecord,
    headers: Vec<(String, Vec<u8>)>,
) -> OutputRecord {
    for value in &record.unconvertible {
        tracing::warn!(
            table = %format!("{}.{}", table.relation.schema(), table.relation.name),
            column = %value.column,
            lsn = %lsn,
            "{value}"
        );
    }
    to_output(record, headers)
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
            // A domain is written as its base type (with the domain's modifier), as Debezium does.
            let (type_oid, type_modifier, type_name) = match fact.domain_base {
                Some(base) => (base.type_oid, base.type_modifier, base.type_name),
                None => (column.type_oid, column.type_modifier, fact.type_name),
            };
            ColumnSchema {
                name: column.name.clone(),
                type_oid,
                type_modifier,
                type_name,
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

#[cfg(test)]
mod tests {
    use super::SkippedOperations;

    #[test]
    fn skipped_operations_parse_debeziums_values() {
        assert_eq!(
            SkippedOperations::parse("none").unwrap(),
            SkippedOperations::default()
        );
        let skipped = SkippedOperations::parse("u, t").unwrap();
        assert!(skipped.updates && skipped.truncates && !skipped.creates && !skipped.deletes);
        assert!(SkippedOperations::parse("c,x")
            .unwrap_err()
            .contains("expected none"));
    }
}
