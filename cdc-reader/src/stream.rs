//! The streaming loop: WAL in, envelopes out, the confirmed LSN back to PostgreSQL.
//!
//! ```text
//!             CopyData (XLogData | keepalive)                     records (ticket = tx)
//! PostgreSQL ───────────────────────────────> [ stream loop ] ───────────────────────> sink
//!      ^                                      │   pgoutput::decode                      │
//!      │   standby status update (flush LSN)  │   changes::ChangeTranslator             │
//!      └──────────────────────────────────────┘   delivery::DeliveryTracker  <── acks ──┘
//! ```
//!
//! One task does it all, in a `tokio::select!` over five things: the next frame from the
//! server, acknowledgements from the sink, the status timer (which also probes the server's
//! position when the stream goes quiet), the heartbeat timer, and the shutdown signal. Before
//! streaming, the same machinery delivers the initial snapshot ([`Stream::snapshot`]). Each
//! change is sent as soon as it is decoded (memory stays flat on a transaction of any size);
//! when the sink's queue is full the loop stops reading (TCP pushes back on the server) but
//! keeps draining acknowledgements and sending status updates, so the server never times us
//! out and nothing is confirmed that is not delivered.
//!
//! The status timer also watches the server: between transactions every status update asks
//! for an immediate reply, so a connection on which nothing arrives for
//! `--connection-timeout` is dead (a network cut, a frozen server) and the loop ends with
//! [`ConnectionError::Timeout`]; `reader` then connects again (see `retry`). A loop that ends
//! with an error leaves its records in flight: the next session's server resends them.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::catalog::CatalogError;
use crate::changes::{ChangeTranslator, OutputRecord};
use crate::delivery::DeliveryTracker;
use crate::envelope::SnapshotMarker;
use crate::heartbeat::{heartbeat_record, heartbeat_topic};
use crate::incremental::{signal::Signal, IncrementalSnapshots, Observed};
use crate::lsn::Lsn;
use crate::pgoutput::{self, PgOutputMessage};
use crate::replication::connection::{ConnectionError, FrameReader, FrameWriter, StreamFrame};
use crate::replication::protocol::{PgTimestamp, ReplicationMessage, StandbyStatusUpdate};
use crate::sink::{Ack, OutgoingRecord, SendError, Sink, SinkError};
use crate::snapshot::{SnapshotTable, TableReader};
use crate::snapshot_parallel::{ParallelReads, TableBatches};
use crate::ReaderError;

/// How long the stream must be quiet before the reader probes the server for its position.
const PROBE_AFTER: Duration = Duration::from_millis(100);

/// Settings of the loop itself.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub status_interval: Duration,
    /// Stop once everything up to this LSN is confirmed.
    pub until_lsn: Option<Lsn>,
    /// Write a heartbeat record this often.
    pub heartbeat_interval: Option<Duration>,
    /// SQL to run at each heartbeat.
    pub heartbeat_action_query: Option<String>,
    /// Topic prefix (for the heartbeat topic) and whether records carry schemas.
    pub topic_prefix: String,
    pub schemas_enabled: bool,
    /// The server is gone when nothing arrives for this long while the loop waits for it.
    pub connection_timeout: Duration,
}

/// Counters for the summary line and the progress display.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub transactions: u64,
    pub changes: u64,
    pub records_sent: u64,
    pub confirmed: Lsn,
    /// Frames (XLogData, keepalives) received while streaming.
    pub frames_received: u64,
}

impl StreamStats {
    /// Adds the counters of a later session; its confirmed LSN is the newest.
    pub fn add(&mut self, later: &StreamStats) {
        self.transactions += later.transactions;
        self.changes += later.changes;
        self.records_sent += later.records_sent;
        self.frames_received += later.frames_received;
        self.confirmed = later.confirmed;
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// SIGINT/SIGTERM (or the caller's shutdown future).
    Shutdown,
    /// `--until-lsn` reached.
    ReachedTarget,
    /// The server ended the copy stream.
    ServerEnded,
}

/// The state of one streaming session.
pub struct Stream<'a, S: Sink> {
    /// Set by [`Stream::run`]; the snapshot phase runs before there is a stream.
    writer: Option<FrameWriter>,
    sink: &'a mut S,
    /// The sink's acknowledgements; borrowed, so that the snapshot phase and the stream that
    /// follows it share the one channel.
    acks: &'a mut mpsc::UnboundedReceiver<Ack>,
    translator: &'a mut ChangeTranslator,
    /// Borrowed: it outlives the session, so that tickets keep counting up across reconnects.
    tracker: &'a mut DeliveryTracker,
    settings: StreamSettings,
    /// The open transaction's ticket, between Begin and Commit.
    open_ticket: Option<u64>,
    /// The highest WAL position the server told us about.
    received: Lsn,
    last_status: Instant,
    /// When the last frame arrived from the server.
    last_frame: Instant,
    /// When the loop last went back to reading after waiting for the sink (frames that queued
    /// up meanwhile are not the server's silence).
    reading_resumed: Instant,
    last_reported: Lsn,
    pub stats: StreamStats,
    records: Vec<OutputRecord>,
    /// For `/metrics`: table names by relation id, and the commits waiting for their acks.
    table_names: std::collections::HashMap<u32, String>,
    commit_clock: crate::metrics::CommitClock,
    /// `--signal-data-collection`: incremental snapshots while streaming (see `incremental`).
    incremental: Option<IncrementalSnapshots>,
    /// When Kafka last acknowledged a record, and when the reader last said it waits for one.
    last_ack: Instant,
    last_ack_warning: Instant,
}

/// How long records may wait for Kafka's acknowledgement before the log says so.
const ACKS_OVERDUE: Duration = Duration::from_secs(10);

impl<'a, S: Sink> Stream<'a, S> {
    pub fn new(
        sink: &'a mut S,
        acks: &'a mut mpsc::UnboundedReceiver<Ack>,
        translator: &'a mut ChangeTranslator,
        tracker: &'a mut DeliveryTracker,
        settings: StreamSettings,
    ) -> Self {
        let start = tracker.confirmed();
        Stream {
            writer: None,
            sink,
            acks,
            translator,
            tracker,
            settings,
            open_ticket: None,
            received: start,
            last_status: Instant::now(),
            last_frame: Instant::now(),
            reading_resumed: Instant::now(),
            last_reported: Lsn::ZERO,
            stats: StreamStats {
                confirmed: start,
                ..StreamStats::default()
            },
            records: Vec::with_capacity(4),
            table_names: std::collections::HashMap::new(),
            commit_clock: crate::metrics::CommitClock::default(),
            incremental: None,
            last_ack: Instant::now(),
            last_ack_warning: Instant::now(),
        }
    }

    /// Streams with incremental snapshots on demand (signals in `--signal-data-collection`).
    pub fn with_incremental(mut self, incremental: Option<IncrementalSnapshots>) -> Self {
        self.incremental = incremental;
        self
    }

    /// The initial snapshot: every row of `tables` as an `op: "r"` record, read inside the
    /// snapshot transaction already open on the catalog connection; returns when Kafka has
    /// acknowledged all of them. `position` is the slot's consistent point.
    pub async fn snapshot(
        &mut self,
        tables: &[SnapshotTable],
        position: Lsn,
        tx_id: i64,
    ) -> Result<u64, ReaderError> {
        let started_us = crate::changes::now_micros();
        self.snapshot_with(tables, position, tx_id, started_us, None)
            .await
    }

    /// [`Stream::snapshot`], with the rows read (and their records built) by parallel workers
    /// when `parallel` is given (`--snapshot-max-threads`, see `snapshot_parallel`); the
    /// records come out the same way. `started_us` is the snapshot's `source.ts_ms` (the
    /// workers' record builders were given the same).
    pub async fn snapshot_with(
        &mut self,
        tables: &[SnapshotTable],
        position: Lsn,
        tx_id: i64,
        started_us: i64,
        mut parallel: Option<ParallelReads>,
    ) -> Result<u64, ReaderError> {
        let ticket = self.tracker.begin();
        let mut rows_sent = 0u64;
        for (index, table) in tables.iter().enumerate() {
            let progress = snapshot_progress(table);
            let at = SnapshotPlace {
                first_table: index == 0,
                last_table: index + 1 == tables.len(),
                position,
                tx_id,
                started_us,
                ticket,
            };
            let rows = match parallel.as_mut() {
                Some(parallel) => {
                    self.snapshot_built_table(table, parallel.table(index), &at, &progress)
                        .await?
                }
                None => {
                    let cursor = TableReader::open(
                        self.translator.catalog().client(),
                        &table.relation,
                        index,
                    )
                    .await?;
                    self.snapshot_table(table, cursor, &at, &progress).await?
                }
            };
            rows_sent += rows;
            progress.finish_and_clear();
            tracing::info!(table = %format!("{}.{}", table.relation.schema(), table.relation.name), rows, "snapshot of table done");
        }
        self.tracker.commit(ticket, position)?;
        while self.tracker.records_in_flight() > 0 {
            match self.acks.recv().await {
                Some(ack) => self.handle_ack(ack)?,
                None => {
                    return Err(ReaderError::Stream(
                        "the sink's acknowledgement channel closed".into(),
                    ))
                }
            }
        }
        Ok(rows_sent)
    }

    /// One table read through a cursor on the snapshot connection, each record built here.
    async fn snapshot_table(
        &mut self,
        table: &SnapshotTable,
        mut cursor: TableReader,
        at: &SnapshotPlace,
        progress: &indicatif::ProgressBar,
    ) -> Result<u64, ReaderError> {
        let mut pending: Option<(Vec<Option<String>>, bool)> = None; // (row, first in table)
        let mut seen_in_table = 0u64;
        loop {
            let batch = cursor
                .next_batch(self.translator.catalog().client())
                .await?;
            let exhausted = batch.is_empty();
            for row in batch {
                if let Some((previous, first)) = pending.take() {
                    let marker = snapshot_marker(at.first_table, at.last_table, first, false);
                    self.send_snapshot_row(table, &previous, marker, at).await?;
                    progress.inc(1);
                }
                pending = Some((row, seen_in_table == 0));
                seen_in_table += 1;
            }
            if exhausted {
                break;
            }
        }
        if let Some((previous, first)) = pending.take() {
            let marker = snapshot_marker(at.first_table, at.last_table, first, true);
            self.send_snapshot_row(table, &previous, marker, at).await?;
            progress.inc(1);
        }
        Ok(seen_in_table)
    }

    /// One table from the parallel workers, its records built by them with the marker `true`:
    /// the table's first and last records are built again here with their own markers.
    async fn snapshot_built_table(
        &mut self,
        table: &SnapshotTable,
        mut batches: TableBatches,
        at: &SnapshotPlace,
        progress: &indicatif::ProgressBar,
    ) -> Result<u64, ReaderError> {
        let mut pending: Option<BuiltRow> = None;
        let mut seen_in_table = 0u64;
        while let Some(batch) = batches.next_batch().await? {
            let mut records = batch.records.into_iter();
            let mut first_row = Some(batch.first_row);
            let mut last_row = Some(batch.last_row);
            for i in 0..batch.rows {
                if let Some(previous) = pending.take() {
                    self.send_built_row(table, previous, false, at).await?;
                    progress.inc(1);
                }
                let text = if i == 0 {
                    first_row.take()
                } else if i + 1 == batch.rows {
                    last_row.take()
                } else {
                    None
                };
                pending = Some(BuiltRow {
                    record: records.next(),
                    text,
                    first_in_table: seen_in_table == 0,
                });
                seen_in_table += 1;
            }
        }
        if let Some(previous) = pending.take() {
            self.send_built_row(table, previous, true, at).await?;
            progress.inc(1);
        }
        Ok(seen_in_table)
    }

    /// Sends a worker's record, or, where the marker is not `true`, the record built again.
    async fn send_built_row(
        &mut self,
        table: &SnapshotTable,
        row: BuiltRow,
        last_in_table: bool,
        at: &SnapshotPlace,
    ) -> Result<(), ReaderError> {
        let marker = snapshot_marker(
            at.first_table,
            at.last_table,
            row.first_in_table,
            last_in_table,
        );
        match (row.record, row.text) {
            (Some(record), _) if marker == SnapshotMarker::True => {
                self.sink.ensure_topic(&record.topic).await?;
                self.send_with_backpressure(&record, at.ticket).await
            }
            (_, Some(text)) => self.send_snapshot_row(table, &text, marker, at).await,
            (None, None) => Ok(()), // a table whose rows are not written (the outbox)
            (Some(_), None) => Err(ReaderError::Stream(format!(
                "the parallel snapshot lost the text of a row that {} {}.{} (a bug)",
                if last_in_table { "ends" } else { "starts" },
                table.relation.schema(),
                table.relation.name
            ))),
        }
    }

    async fn send_snapshot_row(
        &mut self,
        table: &SnapshotTable,
        row: &[Option<String>],
        marker: SnapshotMarker,
        at: &SnapshotPlace,
    ) -> Result<(), ReaderError> {
        self.records.clear();
        self.translator.snapshot_row(
            table.relation.id,
            row,
            marker,
            at.position,
            at.tx_id,
            at.started_us,
            &mut self.records,
        )?;
        self.send_records(at.ticket).await
    }

    /// Streams until shutdown, the target LSN, or an error.
    pub async fn run(
        &mut self,
        mut reader: FrameReader,
        writer: FrameWriter,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<StreamEnd, ReaderError> {
        self.writer = Some(writer);
        tokio::pin!(shutdown);
        // An incremental snapshot a restart interrupted goes on at its next chunk.
        if let Some(mut incremental) = self.incremental.take() {
            let resumed = incremental
                .read_next_chunk(self.translator, self.tracker)
                .await;
            self.incremental = Some(incremental);
            resumed?;
        }
        // Ticks often; a status update goes out every `status_interval`, or sooner as a probe
        // when the stream went quiet with something left to confirm (see `on_status_tick`).
        let mut status_timer =
            tokio::time::interval(self.settings.status_interval.min(PROBE_AFTER));
        status_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Without --heartbeat-interval the timer exists but its branch is disabled.
        let heartbeat_every = self
            .settings
            .heartbeat_interval
            .unwrap_or(Duration::from_secs(3600));
        let mut heartbeat_timer = tokio::time::interval_at(
            tokio::time::Instant::now() + heartbeat_every,
            heartbeat_every,
        );
        heartbeat_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            if self.reached_target() {
                break StreamEnd::ReachedTarget;
            }
            // Acknowledgements and commits move chunks of an incremental snapshot to delivered.
            self.store_incremental_progress().await?;
            tokio::select! {
                biased;
                _ = &mut shutdown => break StreamEnd::Shutdown,
                Some(ack) = self.acks.recv() => self.handle_ack(ack)?,
                _ = status_timer.tick() => self.on_status_tick().await?,
                _ = heartbeat_timer.tick(), if self.settings.heartbeat_interval.is_some() => self.heartbeat().await?,
                frame = reader.next_stream_frame() => match frame? {
                    StreamFrame::CopyData(payload) => {
                        self.last_frame = Instant::now();
                        self.stats.frames_received += 1;
                        self.handle_copy_data(payload).await?
                    }
                    StreamFrame::CopyDone => break StreamEnd::ServerEnded,
                },
            }
        };
        self.finish().await?;
        Ok(end)
    }

    /// Stores the incremental snapshot's progress as far as Kafka acknowledged its chunks.
    async fn store_incremental_progress(&mut self) -> Result<(), ReaderError> {
        match self.incremental.as_mut() {
            Some(incremental) if incremental.chunks_unacknowledged() > 0 => {
                incremental
                    .store_delivered(self.translator.catalog().client(), self.tracker)
                    .await
            }
            _ => Ok(()),
        }
    }

    fn reached_target(&self) -> bool {
        matches!(self.settings.until_lsn, Some(target) if self.tracker.confirmed() >= target)
    }

    fn handle_ack(&mut self, ack: Ack) -> Result<(), ReaderError> {
        self.last_ack = Instant::now();
        self.take_ack(ack)?;
        // Drain whatever else is ready in one go.
        while let Ok(more) = self.acks.try_recv() {
            self.take_ack(more)?;
        }
        self.stats.confirmed = self.tracker.confirmed();
        self.commit_clock.confirmed(self.stats.confirmed);
        crate::metrics::positions(
            self.received,
            self.stats.confirmed,
            self.tracker.records_in_flight(),
        );
        Ok(())
    }

    fn take_ack(&mut self, ack: Ack) -> Result<(), ReaderError> {
        if self.tracker.is_stale(ack.ticket) {
            // Sent before a reconnect: the server sends that transaction again, so neither a
            // late success nor a late failure of this copy matters.
            return Ok(self.tracker.acknowledged(ack.ticket)?);
        }
        if let Err(error) = ack.result {
            return Err(ReaderError::Delivery(error));
        }
        Ok(self.tracker.acknowledged(ack.ticket)?)
    }

    async fn handle_copy_data(&mut self, payload: bytes::Bytes) -> Result<(), ReaderError> {
        match ReplicationMessage::parse(payload)? {
            ReplicationMessage::XLogData(xlog) => {
                self.received = self.received.max(xlog.wal_end).max(xlog.wal_start);
                let message = pgoutput::decode(xlog.data)?;
                self.handle_message(message, xlog.wal_start).await?;
            }
            ReplicationMessage::PrimaryKeepalive(keepalive) => {
                self.received = self.received.max(keepalive.wal_end);
                tracing::trace!(wal_end = %keepalive.wal_end, reply = keepalive.reply_requested, open = self.open_ticket.is_some(), in_flight = self.tracker.transactions_in_flight(), "keepalive");
                if self.open_ticket.is_none() {
                    self.tracker.idle(keepalive.wal_end);
                    self.stats.confirmed = self.tracker.confirmed();
                }
                if keepalive.reply_requested {
                    self.send_status(false).await?;
                }
            }
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        message: PgOutputMessage,
        lsn: Lsn,
    ) -> Result<(), ReaderError> {
        match &message {
            PgOutputMessage::Begin(_) => self.open_ticket = Some(self.tracker.begin()),
            PgOutputMessage::Relation(relation) => {
                if crate::metrics::enabled() {
                    self.table_names.insert(
                        relation.id,
                        format!("{}.{}", relation.schema(), relation.name),
                    );
                }
                if let Err(error) = self.translator.define_relation(relation).await {
                    return Err(self.catalog_failure(error.into()));
                }
            }
            _ => {}
        }
        match self.incremental.as_mut().map(|i| i.observe(&message)) {
            None | Some(Observed::Pass) => {}
            Some(Observed::Skip) => return Ok(()),
            Some(Observed::Signal { id, signal }) => {
                return self.incremental_signal(&id, &signal, lsn).await
            }
        }
        self.records.clear();
        self.translator
            .translate(&message, lsn, &mut self.records)?;
        if let PgOutputMessage::Commit(commit) = &message {
            // The transaction's last records (an END record with transaction metadata) go out
            // under its ticket; then the commit LSN waits for all of them to be acknowledged.
            let ticket = self
                .open_ticket
                .take()
                .ok_or(ReaderError::Stream("COMMIT without BEGIN".into()))?;
            self.send_records(ticket).await?;
            self.tracker.commit(ticket, commit.end_lsn)?;
            self.commit_clock
                .committed(commit.end_lsn, commit.commit_timestamp.to_unix_micros());
            self.stats.transactions += 1;
            self.stats.confirmed = self.tracker.confirmed();
            return Ok(());
        }
        if self.records.is_empty() {
            return Ok(());
        }
        if !matches!(message, PgOutputMessage::Begin(_)) {
            self.stats.changes += 1;
            self.count_change(&message);
        }
        match self.open_ticket {
            Some(ticket) => self.send_records(ticket).await,
            None => {
                // A change outside a transaction (a non-transactional logical message) is a
                // transaction of its own that ends at its LSN.
                let ticket = self.tracker.begin();
                self.send_records(ticket).await?;
                self.tracker.commit(ticket, lsn)?;
                Ok(())
            }
        }
    }

    /// `pgcdc_reader_changes_total{table, op}` for a row change.
    fn count_change(&self, message: &PgOutputMessage) {
        if !crate::metrics::enabled() {
            return;
        }
        let (relation_id, op) = match message {
            PgOutputMessage::Insert(m) => (m.relation_id, "c"),
            PgOutputMessage::Update(m) => (m.relation_id, "u"),
            PgOutputMessage::Delete(m) => (m.relation_id, "d"),
            PgOutputMessage::Truncate(_) => (0, "t"),
            PgOutputMessage::Message(_) => (0, "m"),
            _ => return,
        };
        let table = self
            .table_names
            .get(&relation_id)
            .map_or("", String::as_str);
        crate::metrics::change_read(table, op);
    }

    /// A signal row (or one of our watermarks): at a high watermark the chunk's remaining rows
    /// go out as `op: "r"` records under the watermark's transaction, and once Kafka has them
    /// all the progress is stored and the next chunk read (see `incremental::window`).
    async fn incremental_signal(
        &mut self,
        id: &str,
        signal: &Signal,
        lsn: Lsn,
    ) -> Result<(), ReaderError> {
        let Some(mut incremental) = self.incremental.take() else {
            return Ok(());
        };
        let result = async {
            let Some((relation_id, closed)) = incremental
                .handle_signal(self.translator, self.tracker, id, signal)
                .await?
            else {
                return Ok(());
            };
            let own_ticket = self.open_ticket.is_none();
            let ticket = self.open_ticket.unwrap_or_else(|| self.tracker.begin());
            let read_at = crate::changes::now_micros();
            for row in &closed.rows {
                self.records.clear();
                self.translator.snapshot_row(
                    relation_id,
                    row,
                    SnapshotMarker::Incremental,
                    lsn,
                    0,
                    read_at,
                    &mut self.records,
                )?;
                self.send_records(ticket).await?;
            }
            if own_ticket {
                self.tracker.commit(ticket, lsn)?;
            }
            self.stats.changes += closed.rows.len() as u64;
            // No wait for Kafka here: the next chunk is read while these are acknowledged,
            // and their progress is stored once they are (`store_delivered`).
            incremental
                .chunk_sent(self.translator, self.tracker, &closed, ticket)
                .await
        }
        .await;
        self.incremental = Some(incremental);
        result
    }

    /// Sends `self.records` under `ticket`.
    async fn send_records(&mut self, ticket: u64) -> Result<(), ReaderError> {
        let records = std::mem::take(&mut self.records);
        for record in &records {
            self.sink.ensure_topic(&record.topic).await?;
            self.send_with_backpressure(record, ticket).await?;
        }
        self.records = records;
        Ok(())
    }

    async fn send_with_backpressure(
        &mut self,
        record: &OutputRecord,
        ticket: u64,
    ) -> Result<(), ReaderError> {
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let outgoing = OutgoingRecord {
            topic: &record.topic,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &headers,
        };
        self.prepare_until_ready(outgoing).await?;
        let mut waiting_since: Option<Instant> = None;
        loop {
            match self.sink.send(outgoing, ticket) {
                Ok(()) => {
                    self.tracker.sent(ticket)?;
                    self.stats.records_sent += 1;
                    crate::metrics::record_sent(&record.topic);
                    return Ok(());
                }
                Err(SendError::QueueFull) => {
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(10) {
                        tracing::warn!(
                            in_flight = self.tracker.records_in_flight(),
                            "the sink has accepted nothing for 10 s (is Kafka reachable?); waiting, confirming nothing new"
                        );
                        waiting_since = Some(Instant::now());
                    }
                    self.reading_resumed = Instant::now();
                    match tokio::time::timeout(Duration::from_millis(100), self.acks.recv()).await {
                        Ok(Some(ack)) => self.handle_ack(ack)?,
                        Ok(None) => {
                            return Err(ReaderError::Stream(
                                "the sink's acknowledgement channel closed".into(),
                            ))
                        }
                        Err(_) => {}
                    }
                    if self.last_status.elapsed() >= self.settings.status_interval {
                        self.send_status(false).await?;
                    }
                }
                Err(SendError::Fatal(error)) => return Err(ReaderError::Delivery(error)),
            }
        }
    }

    /// [`Sink::prepare`] until it succeeds: while the sink waits for something (the schema
    /// registry), the loop waits with backoff, reading no WAL; it keeps taking
    /// acknowledgements and sending status updates, so it confirms what was delivered before
    /// this record and nothing after it.
    async fn prepare_until_ready(
        &mut self,
        outgoing: OutgoingRecord<'_>,
    ) -> Result<(), ReaderError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.sink.prepare(outgoing).await {
                Ok(()) => return Ok(()),
                Err(SinkError::Unavailable(reason)) => {
                    tracing::warn!(topic = outgoing.topic, retry_in = ?backoff, "{reason}; waiting, confirming nothing past this record");
                    let until = Instant::now() + backoff;
                    while let Some(left) = until.checked_duration_since(Instant::now()) {
                        match tokio::time::timeout(left, self.acks.recv()).await {
                            Ok(Some(ack)) => self.handle_ack(ack)?,
                            Ok(None) => {
                                return Err(ReaderError::Stream(
                                    "the sink's acknowledgement channel closed".into(),
                                ))
                            }
                            Err(_) => break,
                        }
                    }
                    self.reading_resumed = Instant::now();
                    if self.last_status.elapsed() >= self.settings.status_interval {
                        self.send_status(false).await?;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// A heartbeat: the record on `__debezium-heartbeat.<prefix>`, and the action query.
    async fn heartbeat(&mut self) -> Result<(), ReaderError> {
        if let Some(query) = &self.settings.heartbeat_action_query {
            if let Err(error) = self
                .translator
                .catalog()
                .client()
                .batch_execute(query)
                .await
            {
                tracing::warn!(%error, "the heartbeat action query failed");
                if self.translator.catalog().is_closed() {
                    return Err(ReaderError::Catalog(CatalogError::Lost(error.to_string())));
                }
            }
        }
        if self.open_ticket.is_some() {
            return Ok(()); // a transaction is being read: changes are flowing anyway
        }
        let topic = heartbeat_topic(&self.settings.topic_prefix);
        let ts_ms = crate::changes::now_micros() / 1000;
        let (key, value) = heartbeat_record(
            &self.settings.topic_prefix,
            ts_ms,
            self.settings.schemas_enabled,
        );
        let record = OutputRecord {
            topic: topic.as_str().into(),
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        };
        self.sink.ensure_topic(&record.topic).await?;
        let ticket = self.tracker.begin();
        self.send_with_backpressure(&record, ticket).await?;
        self.tracker.commit(ticket, self.tracker.confirmed())?;
        Ok(())
    }

    /// The status timer: a regular status update every `status_interval`; in between, when the
    /// stream has been quiet for a moment between transactions, a probe. Either way, between
    /// transactions we ask the server to answer at once with a keepalive: it carries how far
    /// decoding got, which `DeliveryTracker::idle` then confirms, so WAL written only to
    /// uncaptured tables is released (the slot does not pin it) and `--until-lsn` ends promptly.
    async fn on_status_tick(&mut self) -> Result<(), ReaderError> {
        let in_flight = self.tracker.records_in_flight();
        if in_flight == 0 {
            // Nothing to wait for counts as fresh.
            self.last_ack = Instant::now();
        } else if self.last_ack.elapsed() > ACKS_OVERDUE
            && self.last_ack_warning.elapsed() > ACKS_OVERDUE
        {
            // acks=all: a partition with fewer in-sync replicas than min.insync.replicas
            // (brokers down) refuses writes; librdkafka retries them without end.
            tracing::warn!(
                in_flight,
                confirmed = %self.tracker.confirmed(),
                "Kafka has acknowledged nothing for {:.0?}: brokers are down or a partition has fewer in-sync replicas than min.insync.replicas (acks=all); waiting, confirming nothing past the unacknowledged records",
                self.last_ack.elapsed()
            );
            self.last_ack_warning = Instant::now();
        }
        let silent_for = self.last_frame.max(self.reading_resumed).elapsed();
        if silent_for >= self.settings.connection_timeout {
            return Err(ConnectionError::Timeout(format!(
                "nothing arrived on the replication connection for {silent_for:.1?} \
                 (--connection-timeout {:?}), not even the replies the reader asks for",
                self.settings.connection_timeout
            ))
            .into());
        }
        let between_transactions = self.open_ticket.is_none();
        if self.last_status.elapsed() >= self.settings.status_interval {
            return self.send_status(between_transactions).await;
        }
        let quiet = self.last_frame.elapsed() >= PROBE_AFTER;
        let behind = self.tracker.confirmed() < self.received || self.settings.until_lsn.is_some();
        if between_transactions && quiet && behind && self.last_status.elapsed() >= PROBE_AFTER {
            self.send_status(true).await?;
        }
        Ok(())
    }

    /// Tells the server how far we got: flush = the tracker's confirmed LSN, never more.
    async fn send_status(&mut self, reply_requested: bool) -> Result<(), ReaderError> {
        let confirmed = self.tracker.confirmed();
        let update = StandbyStatusUpdate {
            write: self.received.max(confirmed),
            flush: confirmed,
            apply: confirmed,
            clock: PgTimestamp::now(),
            reply_requested,
        };
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        writer.send_copy_data(&update.encode()).await?;
        self.last_status = Instant::now();
        if confirmed != self.last_reported {
            tracing::debug!(%confirmed, "confirmed to the server");
            self.last_reported = confirmed;
        }
        Ok(())
    }

    /// A catalog look-up failed: when its connection is gone, that is a lost connection (worth
    /// a reconnect), not a problem of the table.
    fn catalog_failure(&self, error: ReaderError) -> ReaderError {
        if self.translator.catalog().is_closed() {
            ReaderError::Catalog(CatalogError::Lost(error.to_string()))
        } else {
            error
        }
    }

    /// Delivers what is in flight, confirms it, and closes the stream politely.
    async fn finish(&mut self) -> Result<(), ReaderError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.tracker.records_in_flight() > 0 && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), self.acks.recv()).await {
                Ok(Some(ack)) => self.handle_ack(ack)?,
                Ok(None) => break,
                Err(_) => {}
            }
        }
        if self.tracker.records_in_flight() > 0 {
            tracing::warn!(
                in_flight = self.tracker.records_in_flight(),
                "records still unacknowledged at exit; they will be sent again on the next start"
            );
        }
        self.sink.flush(Duration::from_secs(5)).ok();
        self.stats.confirmed = self.tracker.confirmed();
        self.send_status(false).await?;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        match writer.finish().await {
            Ok(()) | Err(ConnectionError::Io(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}

/// Where in the initial snapshot a table is, and what its records carry.
struct SnapshotPlace {
    first_table: bool,
    last_table: bool,
    /// The slot's consistent point, the snapshot's xid, when it began.
    position: Lsn,
    tx_id: i64,
    started_us: i64,
    /// The snapshot's delivery ticket (one for the whole snapshot).
    ticket: u64,
}

/// A row of the parallel snapshot waiting to be sent: its worker-built record (None: the
/// table's rows are not written), and its text when it began or ended a batch.
struct BuiltRow {
    record: Option<OutputRecord>,
    text: Option<Vec<Option<String>>>,
    first_in_table: bool,
}

/// Debezium's snapshot markers (RelationalSnapshotChangeEventSource): the last record of the
/// last table is "last", the first of the first table "first", then the per-table markers.
fn snapshot_marker(
    first_table: bool,
    last_table: bool,
    first_in_table: bool,
    last_in_table: bool,
) -> SnapshotMarker {
    if last_in_table && last_table {
        SnapshotMarker::Last
    } else if first_in_table && first_table {
        SnapshotMarker::First
    } else if last_in_table {
        SnapshotMarker::LastInDataCollection
    } else if first_in_table {
        SnapshotMarker::FirstInDataCollection
    } else {
        SnapshotMarker::True
    }
}

fn snapshot_progress(table: &SnapshotTable) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(table.estimated_rows.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "snapshot {msg:<24} [{bar:30}] {pos}/~{len} rows {per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!(
        "{}.{}",
        table.relation.schema(),
        table.relation.name
    ));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_markers_follow_debezium() {
        assert_eq!(
            snapshot_marker(true, false, true, false),
            SnapshotMarker::First
        );
        assert_eq!(
            snapshot_marker(true, false, false, false),
            SnapshotMarker::True
        );
        assert_eq!(
            snapshot_marker(true, false, false, true),
            SnapshotMarker::LastInDataCollection
        );
        assert_eq!(
            snapshot_marker(false, false, true, false),
            SnapshotMarker::FirstInDataCollection
        );
        assert_eq!(
            snapshot_marker(false, true, false, true),
            SnapshotMarker::Last
        );
        assert_eq!(
            snapshot_marker(true, true, true, true),
            SnapshotMarker::Last,
            "a one-row snapshot ends it"
        );
    }
}
