//! Incremental snapshots on demand, Debezium's way: a signal row asks for a table, the reader
//! reads it in primary-key chunks while it streams, and sends the rows as `op: "r"` records with
//! `source.snapshot: "incremental"`.
//!
//! ```text
//! INSERT INTO debezium_signal ... 'execute-snapshot' ...      (someone, any time)
//!        │ arrives in the replication stream like any change
//!        ▼
//! stream ──observe──> IncrementalSnapshots ──> window::IncrementalSnapshot  (pure: the watermark algorithm)
//!        <─rows to send at the high watermark─┘     │
//!                                                 sql: watermark rows, chunk queries, progress
//! ```
//!
//! - `signal`  decodes signal rows (execute-snapshot, stop-, pause-, resume-snapshot, watermarks)
//! - `window`  the state machine: which chunk next, which keys the stream took out of it
//! - `sql`     the queries, on the reader's ordinary SQL connection
//!
//! The signal table (`--signal-data-collection`, Debezium's `signal.data.collection`) is added
//! to the publication by the reader, like the captured tables; its rows are not written to
//! Kafka. Progress is stored once Kafka acknowledged a chunk's records
//! (`cdc_reader_incremental_snapshots`, beside the initial snapshot's `cdc_reader_snapshots`),
//! so a reader killed mid-snapshot goes on at the chunk after the last one Kafka has.
//!
//! The next chunk is read as soon as a chunk's records are handed to the producer, not when
//! Kafka acknowledges them: the acknowledgements come in while the next window is open, and
//! the progress of each chunk waits in [`IncrementalSnapshots`] (with its delivery ticket)
//! until they do. So the stored progress never runs ahead of Kafka, and the reader never
//! idles for a round trip to the broker between chunks.

pub mod signal;
pub mod sql;
pub mod window;

use std::collections::VecDeque;

use tokio_postgres::Client;

use crate::changes::ChangeTranslator;
use crate::delivery::DeliveryTracker;
use crate::pgoutput::{PgOutputMessage, TupleData};
use crate::snapshot::{self, SnapshotError};
use crate::ReaderError;
use signal::Signal;
use sql::ChunkQuery;
use window::{ClosedWindow, IncrementalSnapshot, Key, Progress};

/// What the stream should do with a message, once the incremental snapshot has seen it.
#[derive(Debug)]
pub enum Observed {
    /// A change like any other: translate and send it.
    Pass,
    /// A row of the signal table that is not a signal to act on: not written.
    Skip,
    /// A signal (or one of our watermarks): act on it with [`IncrementalSnapshots::handle_signal`].
    Signal { id: String, signal: Signal },
}

/// The table being read, with what the chunk queries need.
struct CurrentTable {
    name: String,
    relation_id: u32,
    query: ChunkQuery,
    bar: indicatif::ProgressBar,
}

/// The incremental snapshot of one reader: its state machine plus the I/O around it.
pub struct IncrementalSnapshots {
    machine: IncrementalSnapshot,
    slot: String,
    signal_table: String,
    signal_relation_id: u32,
    /// The captured tables (None: all tables): a table outside them is refused, since its
    /// changes would not be in the stream to correct the chunks.
    captured: Option<Vec<String>>,
    current: Option<CurrentTable>,
    /// What was last stored, to skip writes that change nothing.
    stored: Progress,
    /// The progress after each chunk handed to the sink and not yet acknowledged by Kafka,
    /// with the delivery ticket of its records, oldest first.
    unstored: VecDeque<(u64, Progress)>,
}

impl IncrementalSnapshots {
    /// Checks the signal table and loads the slot's stored progress.
    pub async fn start(
        client: &Client,
        slot: &str,
        signal_table: &str,
        chunk_size: usize,
        captured: Option<Vec<String>>,
    ) -> Result<Self, ReaderError> {
        let signal_table = signal::qualified_name(signal_table);
        let signal_relation_id = sql::signal_table_oid(client, &signal_table)
            .await
            .map_err(SnapshotError::Incremental)?;
        sql::ensure_progress_table(client).await?;
        // The watermarks travel through the WAL, and logical decoding sends only flushed WAL:
        // with synchronous_commit=off each window would wait for the WAL writer (up to
        // wal_writer_delay, 200 ms). This connection's own commits (watermarks, progress) flush.
        client
            .batch_execute("SET synchronous_commit = on")
            .await
            .map_err(|source| SnapshotError::Query {
                context: "SET synchronous_commit".into(),
                source,
            })?;
        let progress = sql::load_progress(client, slot).await?;
        if let Some(table) = progress.tables.first() {
            tracing::info!(table = %table.name, after = ?progress.last_key, "resuming the incremental snapshot at the next chunk");
        }
        Ok(IncrementalSnapshots {
            machine: IncrementalSnapshot::new(progress.clone(), chunk_size),
            slot: slot.to_string(),
            signal_table,
            signal_relation_id,
            captured,
            current: None,
            stored: progress,
            unstored: VecDeque::new(),
        })
    }

    /// Looks at each decoded message before it is translated: signals are picked out, and a
    /// change of the table being read takes its key out of the chunk in memory.
    pub fn observe(&mut self, message: &PgOutputMessage) -> Observed {
        let relation_id = match message {
            PgOutputMessage::Insert(m) => m.relation_id,
            PgOutputMessage::Update(m) => m.relation_id,
            PgOutputMessage::Delete(m) => m.relation_id,
            PgOutputMessage::Truncate(truncate) => {
                if let Some(current) = &self.current {
                    if truncate.relation_ids.contains(&current.relation_id) {
                        self.machine.truncated(&current.name);
                    }
                }
                return Observed::Pass;
            }
            _ => return Observed::Pass,
        };
        if relation_id == self.signal_relation_id {
            let PgOutputMessage::Insert(insert) = message else {
                return Observed::Skip;
            };
            let value = |i: usize| insert.new.columns.get(i).and_then(|v| v.as_text());
            let (Some(id), Some(kind)) = (value(0), value(1)) else {
                return Observed::Skip;
            };
            return match signal::parse(id, kind, value(2)) {
                Ok(signal) => Observed::Signal {
                    id: id.to_string(),
                    signal,
                },
                Err(error) => {
                    tracing::warn!(%error, "ignoring a signal");
                    Observed::Skip
                }
            };
        }
        let Some(current) = &self.current else {
            return Observed::Pass;
        };
        if relation_id != current.relation_id {
            return Observed::Pass;
        }
        let key_of = |tuple: &TupleData| -> Option<Key> {
            current
                .query
                .key_positions
                .iter()
                .map(|&i| tuple.columns.get(i)?.as_text().map(str::to_string))
                .collect()
        };
        let mut keys = Vec::with_capacity(2);
        match message {
            PgOutputMessage::Insert(insert) => keys.extend(key_of(&insert.new)),
            PgOutputMessage::Update(update) => {
                keys.extend(key_of(&update.new));
                if let Some(old) = &update.old {
                    keys.extend(key_of(&old.tuple));
                }
            }
            PgOutputMessage::Delete(delete) => keys.extend(key_of(&delete.old.tuple)),
            _ => {}
        }
        let name = current.name.clone();
        for key in &keys {
            self.machine.change(&name, key);
        }
        Observed::Pass
    }

    /// Acts on a signal. At the current chunk's high watermark it returns the table's relation
    /// id and the rows to send now; the caller hands them to the sink and calls
    /// [`Self::chunk_sent`].
    pub async fn handle_signal(
        &mut self,
        translator: &mut ChangeTranslator,
        tracker: &DeliveryTracker,
        id: &str,
        signal: &Signal,
    ) -> Result<Option<(u32, ClosedWindow)>, ReaderError> {
        match signal {
            Signal::WindowOpen { chunk_id } => {
                self.machine.window_opened(chunk_id);
                Ok(None)
            }
            Signal::WindowClose { chunk_id } => {
                let relation_id = self.current.as_ref().map(|c| c.relation_id);
                Ok(self
                    .machine
                    .window_closed(chunk_id)
                    .zip(relation_id)
                    .map(|(closed, id)| (id, closed)))
            }
            other => {
                let effect = self.machine.signal(id, other);
                tracing::info!(signal = id, ?effect, "incremental snapshot signal");
                if self.current.as_ref().map(|c| &c.name)
                    != self.machine.current_table().map(|t| &t.name)
                {
                    self.finish_table();
                }
                self.read_next_chunk(translator, tracker).await?;
                Ok(None)
            }
        }
    }

    /// The rows of a closed window went to the sink under `ticket`: their progress waits for
    /// Kafka's acknowledgement (see [`Self::store_delivered`]); the next chunk is read now.
    pub async fn chunk_sent(
        &mut self,
        translator: &mut ChangeTranslator,
        tracker: &DeliveryTracker,
        closed: &ClosedWindow,
        ticket: u64,
    ) -> Result<(), ReaderError> {
        if let Some(current) = &self.current {
            current.bar.inc(closed.rows.len() as u64);
        }
        if closed.table_done {
            self.finish_table();
        }
        if closed.snapshot_done {
            tracing::info!("incremental snapshot done");
        }
        self.unstored
            .push_back((ticket, self.machine.progress().clone()));
        self.read_next_chunk(translator, tracker).await
    }

    /// Reads the next chunk when one is due, bracketed by its watermarks; tables that cannot be
    /// read are refused (and recorded) on the way. Also called when the stream starts, to go on
    /// with a snapshot a restart interrupted.
    pub async fn read_next_chunk(
        &mut self,
        translator: &mut ChangeTranslator,
        tracker: &DeliveryTracker,
    ) -> Result<(), ReaderError> {
        while let Some(request) = self.machine.next_chunk() {
            if self.current.as_ref().map(|c| &c.name) != Some(&request.table.name) {
                self.finish_table();
                if let Err(reason) = self.open_table(translator, &request.table.name).await? {
                    tracing::error!(table = %request.table.name, "incremental snapshot refused: {reason}");
                    self.machine.refuse_current(reason);
                    continue;
                }
            }
            let Some(current) = &self.current else {
                break;
            };
            let client = translator.catalog().client();
            if request.needs_max_key {
                let filter = request.table.filter.as_deref();
                match current.query.max_key(client, filter).await {
                    Ok(max) => self.machine.max_key_read(max),
                    Err(error) if filter.is_some() && !client.is_closed() => {
                        let reason =
                            format!("its additional-conditions filter does not work: {error}");
                        tracing::error!(table = %request.table.name, "incremental snapshot refused: {reason}");
                        self.machine.refuse_current(reason);
                    }
                    Err(error) => return Err(error.into()),
                }
                continue;
            }
            let chunk_id = uuid::Uuid::new_v4().to_string();
            sql::write_watermark(client, &self.signal_table, &chunk_id, signal::WINDOW_OPEN)
                .await?;
            let rows = current.query.read(client, &request).await?;
            if self.machine.chunk_read(&chunk_id, rows) {
                sql::write_watermark(client, &self.signal_table, &chunk_id, signal::WINDOW_CLOSE)
                    .await?;
                break;
            }
        }
        if self.current.is_some() && self.machine.current_table().is_none() {
            self.finish_table();
        }
        self.store_delivered(translator.catalog().client(), tracker)
            .await
    }

    /// Describes the table and checks that it can be read in key order; Ok(Err(reason)) when not.
    async fn open_table(
        &mut self,
        translator: &mut ChangeTranslator,
        name: &str,
    ) -> Result<Result<(), String>, ReaderError> {
        if let Some(captured) = &self.captured {
            if !captured.iter().any(|t| signal::qualified_name(t) == name) {
                return Ok(Err(format!(
                    "{name} is not captured: add it to --tables (its streamed changes are what keep the chunks right)"
                )));
            }
        }
        let table = match snapshot::describe(translator.catalog(), name).await {
            Ok(table) => table,
            Err(SnapshotError::MissingTable(_)) => {
                return Ok(Err(format!("{name} does not exist")))
            }
            Err(error) => return Err(error.into()),
        };
        let key = match sql::primary_key(translator.catalog().client(), name).await? {
            Ok(key) => key,
            Err(reason) => return Ok(Err(reason)),
        };
        translator.install_table(table.relation.clone(), &table.facts);
        let bar = progress_bar(name, table.estimated_rows);
        bar.inc(self.machine.progress().rows_in_table);
        self.current = Some(CurrentTable {
            name: name.to_string(),
            relation_id: table.relation.id,
            query: ChunkQuery::new(&table.relation, &key),
            bar,
        });
        Ok(Ok(()))
    }

    fn finish_table(&mut self) {
        if let Some(current) = self.current.take() {
            let rows = current.bar.position();
            let elapsed = current.bar.elapsed();
            current.bar.finish_and_clear();
            tracing::info!(table = %current.name, rows, ?elapsed, "incremental snapshot of table done");
        }
    }

    /// Chunks handed to the sink whose records Kafka has not all acknowledged yet.
    pub fn chunks_unacknowledged(&self) -> usize {
        self.unstored.len()
    }

    /// Stores the newest progress Kafka has caught up with: that of the last chunk whose
    /// records (and everything sent before them) are acknowledged, or the machine's own when
    /// no chunk waits. A write only when it changes something.
    pub async fn store_delivered(
        &mut self,
        client: &Client,
        tracker: &DeliveryTracker,
    ) -> Result<(), ReaderError> {
        let mut delivered = None;
        while let Some((ticket, _)) = self.unstored.front() {
            if !tracker.is_delivered(*ticket) {
                break;
            }
            delivered = self.unstored.pop_front().map(|(_, progress)| progress);
        }
        let progress = match delivered {
            _ if self.unstored.is_empty() => self.machine.progress(),
            Some(ref progress) => progress,
            None => return Ok(()),
        };
        if progress != &self.stored {
            let flush = !progress.same_snapshot_as(&self.stored);
            sql::save_progress(client, &self.slot, progress, flush).await?;
            self.stored = progress.clone();
        }
        Ok(())
    }
}

/// A bar per table: rows, rows/s (the row count is PostgreSQL's estimate).
fn progress_bar(table: &str, estimated_rows: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(estimated_rows.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "incremental snapshot {msg:<24} [{bar:30}] {pos}/~{len} rows {per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(table.to_string());
    bar
}
