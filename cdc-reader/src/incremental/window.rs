//! The watermark algorithm (DBLog, as Debezium follows it), as a state machine over events.
//!
//! A table is read in primary-key chunks while the stream goes on. A chunk read at some moment
//! is stale for any row that changes around that moment, so each read is bracketed by two rows
//! the reader writes into the signal table, and the stream tells when they commit:
//!
//! ```text
//! reader (SQL connection)              replication stream, in commit order
//! INSERT <chunk>-open  ─────────────>  ... change A ... <chunk>-open ... change B ... <chunk>-close ...
//! SELECT chunk (keys 1..1024)                        │ window opens    │ B's key is      │ window closes:
//! INSERT <chunk>-close ─────────────>                │                 │ dropped from    │ what is left of
//!                                                     the buffer = the chunk            the buffer goes out
//! ```
//!
//! - A (committed before the low watermark) is in the chunk already: nothing to do.
//! - B (between the watermarks) may or may not be in the chunk; its own streamed event goes out
//!   anyway, so its key leaves the buffer: the chunk never sends an older row after a newer event.
//! - At the high watermark the rest of the buffer goes out as `op: "r"` records: every change
//!   after that point is newer than the read and comes after it on the topic.
//!
//! The machine is pure: the stream feeds it signals, watermarks and the keys of changes; it says
//! which chunk to read next and hands back the rows to send when a window closes. [`Progress`]
//! is what survives a restart (`incremental::store` keeps it in the database).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::signal::{RequestedTable, Signal};

/// A primary key's values as text, in key order.
pub type Key = Vec<String>;
/// A row's values as text, in the table's column order.
pub type Row = Vec<Option<String>>;

/// How many signal ids are remembered, so that a signal the server sends again after a restart
/// (the slot resends from its confirmed position) is not acted on twice.
const REMEMBERED_SIGNALS: usize = 100;

/// A table an `execute-snapshot` named that the reader will not snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub table: String,
    pub reason: String,
}

/// Where the incremental snapshot is: persisted after every delivered chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The `execute-snapshot` signal being carried out (None: no snapshot running).
    pub signal_id: Option<String>,
    /// The tables still to do, the current one first.
    pub tables: Vec<RequestedTable>,
    /// The current table: the last key already delivered (None: from the start).
    pub last_key: Option<Key>,
    /// The current table: its largest key when its snapshot began; rows inserted above it are
    /// streamed anyway, so the snapshot of a growing table ends.
    pub max_key: Option<Key>,
    /// Rows delivered from the current table so far.
    pub rows_in_table: u64,
    /// `pause-snapshot` seen, no `resume-snapshot` yet.
    pub paused: bool,
    /// Ids of the signals already acted on (the newest last).
    pub handled_signals: Vec<String>,
    /// Tables refused, with the reason (a table without primary key, ...).
    pub refused: Vec<Refusal>,
}

impl Progress {
    /// Whether `other` differs from this only in the position inside the current table (the
    /// last key, the largest key, the rows so far): the same snapshot, signals and refusals.
    pub fn same_snapshot_as(&self, other: &Progress) -> bool {
        self.signal_id == other.signal_id
            && self.tables == other.tables
            && self.paused == other.paused
            && self.handled_signals == other.handled_signals
            && self.refused == other.refused
    }
}

/// The next read the machine wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRequest {
    pub table: RequestedTable,
    /// Read keys greater than this one (None: from the first key).
    pub after: Option<Key>,
    /// ... and not greater than this one. None with `needs_max_key`: find it first.
    pub up_to: Option<Key>,
    pub needs_max_key: bool,
    pub limit: usize,
}

/// The rows to send when a window closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedWindow {
    pub table: String,
    pub rows: Vec<Row>,
    /// This was the table's last chunk.
    pub table_done: bool,
    /// ... and the last table: the snapshot is over.
    pub snapshot_done: bool,
}

/// A chunk in memory, between its read and its high watermark.
#[derive(Debug)]
struct Buffer {
    chunk_id: String,
    /// In key order; a row whose key was changed by the stream is taken out (None).
    rows: Vec<Option<Row>>,
    positions: HashMap<Key, usize>,
    last_key: Option<Key>,
    /// The read returned `limit` rows: there may be more.
    full: bool,
    /// The low watermark went by: from now on streamed changes take keys out.
    open: bool,
}

/// The incremental snapshot's state.
#[derive(Debug)]
pub struct IncrementalSnapshot {
    progress: Progress,
    chunk_size: usize,
    buffer: Option<Buffer>,
}

/// What a signal did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalEffect {
    /// Seen before (the server resends after a restart): nothing done.
    AlreadyHandled,
    Started,
    /// A snapshot was running: these tables were added behind it.
    Queued,
    Stopped,
    Paused,
    Resumed,
    /// A watermark of ours, or one of an old chunk (ignored).
    Watermark,
}

impl IncrementalSnapshot {
    pub fn new(progress: Progress, chunk_size: usize) -> Self {
        IncrementalSnapshot {
            progress,
            chunk_size: chunk_size.max(1),
            buffer: None,
        }
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The table being read now.
    pub fn current_table(&self) -> Option<&RequestedTable> {
        self.progress.tables.first()
    }

    /// A table's refusal (it has no primary key, ...): recorded, and the snapshot goes on.
    pub fn refuse_current(&mut self, reason: String) {
        if let Some(table) = self.current_table().cloned() {
            self.progress.refused.push(Refusal {
                table: table.name,
                reason,
            });
            self.table_done();
        }
    }

    /// An `execute-snapshot`, `stop-snapshot`, `pause-snapshot` or `resume-snapshot` signal.
    /// (Watermarks go to [`Self::window_opened`] and [`Self::window_closed`].)
    pub fn signal(&mut self, id: &str, signal: &Signal) -> SignalEffect {
        if self.progress.handled_signals.iter().any(|s| s == id)
            || self.progress.signal_id.as_deref() == Some(id)
        {
            return SignalEffect::AlreadyHandled;
        }
        let effect = match signal {
            Signal::ExecuteSnapshot { tables } => {
                let running = self.progress.signal_id.is_some();
                for table in tables {
                    if !self.progress.tables.iter().any(|t| t.name == table.name) {
                        self.progress.tables.push(table.clone());
                    }
                }
                if running {
                    SignalEffect::Queued
                } else {
                    self.progress.signal_id = Some(id.to_string());
                    self.progress.last_key = None;
                    self.progress.max_key = None;
                    self.progress.rows_in_table = 0;
                    self.progress.refused.clear();
                    SignalEffect::Started
                }
            }
            Signal::StopSnapshot { tables } => {
                let current = self.current_table().map(|t| t.name.clone());
                if tables.is_empty() {
                    self.progress.tables.clear();
                } else {
                    self.progress.tables.retain(|t| !tables.contains(&t.name));
                }
                if self.current_table().map(|t| &t.name) != current.as_ref() {
                    // The current table went: forget its chunk; a late high watermark is ignored.
                    self.buffer = None;
                    self.progress.last_key = None;
                    self.progress.max_key = None;
                    self.progress.rows_in_table = 0;
                }
                if self.progress.tables.is_empty() {
                    self.finish_snapshot();
                }
                SignalEffect::Stopped
            }
            Signal::PauseSnapshot => {
                self.progress.paused = true;
                SignalEffect::Paused
            }
            Signal::ResumeSnapshot => {
                self.progress.paused = false;
                SignalEffect::Resumed
            }
            Signal::WindowOpen { .. } | Signal::WindowClose { .. } => {
                return SignalEffect::Watermark
            }
        };
        if effect != SignalEffect::Started {
            self.remember(id); // a started snapshot's id is remembered when it ends
        }
        effect
    }

    fn remember(&mut self, id: &str) {
        self.progress.handled_signals.push(id.to_string());
        let excess = self
            .progress
            .handled_signals
            .len()
            .saturating_sub(REMEMBERED_SIGNALS);
        self.progress.handled_signals.drain(..excess);
    }

    /// The next chunk to read, if one is due: a snapshot runs, it is not paused, and no chunk
    /// is waiting for its high watermark.
    pub fn next_chunk(&self) -> Option<ChunkRequest> {
        if self.progress.paused || self.buffer.is_some() {
            return None;
        }
        let table = self.current_table()?.clone();
        Some(ChunkRequest {
            table,
            after: self.progress.last_key.clone(),
            up_to: self.progress.max_key.clone(),
            needs_max_key: self.progress.max_key.is_none(),
            limit: self.chunk_size,
        })
    }

    /// The current table's largest key, read when its snapshot begins (None: it is empty, and
    /// done).
    pub fn max_key_read(&mut self, max_key: Option<Key>) {
        match max_key {
            Some(key) => self.progress.max_key = Some(key),
            None => self.table_done(),
        }
    }

    /// The chunk was read (after its low watermark was written): keep it until its high
    /// watermark. An empty chunk ends the table at once; returns whether a window is open
    /// (i.e. whether the high watermark must be written).
    pub fn chunk_read(&mut self, chunk_id: &str, rows: Vec<(Key, Row)>) -> bool {
        if rows.is_empty() {
            self.table_done();
            return false;
        }
        let full = rows.len() >= self.chunk_size;
        let last_key = rows.last().map(|(key, _)| key.clone());
        let mut positions = HashMap::with_capacity(rows.len());
        let mut buffered = Vec::with_capacity(rows.len());
        for (index, (key, row)) in rows.into_iter().enumerate() {
            positions.insert(key, index);
            buffered.push(Some(row));
        }
        self.buffer = Some(Buffer {
            chunk_id: chunk_id.to_string(),
            rows: buffered,
            positions,
            last_key,
            full,
            open: false,
        });
        true
    }

    /// A low watermark in the stream; only the current chunk's counts.
    pub fn window_opened(&mut self, chunk_id: &str) {
        if let Some(buffer) = self.buffer.as_mut().filter(|b| b.chunk_id == chunk_id) {
            buffer.open = true;
        }
    }

    /// A streamed change of `table` for `key` (an update that changes the key reports both).
    pub fn change(&mut self, table: &str, key: &Key) {
        if self.current_table().map(|t| t.name.as_str()) != Some(table) {
            return;
        }
        if let Some(buffer) = self.buffer.as_mut().filter(|b| b.open) {
            if let Some(index) = buffer.positions.remove(key) {
                buffer.rows[index] = None;
            }
        }
    }

    /// A TRUNCATE of `table` while its window is open: nothing of the chunk is still true.
    pub fn truncated(&mut self, table: &str) {
        if self.current_table().map(|t| t.name.as_str()) != Some(table) {
            return;
        }
        if let Some(buffer) = self.buffer.as_mut().filter(|b| b.open) {
            buffer.rows.iter_mut().for_each(|row| *row = None);
            buffer.positions.clear();
        }
    }

    /// A high watermark in the stream: for the current chunk, the rows left to send.
    pub fn window_closed(&mut self, chunk_id: &str) -> Option<ClosedWindow> {
        if self.buffer.as_ref()?.chunk_id != chunk_id {
            return None; // an old chunk's (sent again after a restart), or a stopped table's
        }
        let buffer = self.buffer.take()?;
        let table = self.current_table()?.name.clone();
        let rows: Vec<Row> = buffer.rows.into_iter().flatten().collect();
        self.progress.rows_in_table += rows.len() as u64;
        let table_done =
            !buffer.full || buffer.last_key.is_none() || buffer.last_key == self.progress.max_key;
        self.progress.last_key = buffer.last_key;
        if table_done {
            self.table_done();
        }
        Some(ClosedWindow {
            table,
            rows,
            table_done,
            snapshot_done: self.progress.signal_id.is_none(),
        })
    }

    fn table_done(&mut self) {
        if !self.progress.tables.is_empty() {
            self.progress.tables.remove(0);
        }
        self.progress.last_key = None;
        self.progress.max_key = None;
        self.progress.rows_in_table = 0;
        if self.progress.tables.is_empty() {
            self.finish_snapshot();
        }
    }

    fn finish_snapshot(&mut self) {
        if let Some(id) = self.progress.signal_id.take() {
            self.remember(&id);
        }
        self.buffer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> RequestedTable {
        RequestedTable {
            name: name.into(),
            filter: None,
        }
    }

    fn rows(keys: &[i32]) -> Vec<(Key, Row)> {
        keys.iter()
            .map(|k| {
                (
                    vec![k.to_string()],
                    vec![Some(k.to_string()), Some("v".into())],
                )
            })
            .collect()
    }

    fn ids(window: &ClosedWindow) -> Vec<String> {
        window.rows.iter().map(|r| r[0].clone().unwrap()).collect()
    }

    fn started(chunk_size: usize) -> IncrementalSnapshot {
        let mut machine = IncrementalSnapshot::new(Progress::default(), chunk_size);
        let signal = Signal::ExecuteSnapshot {
            tables: vec![table("public.t")],
        };
        assert_eq!(machine.signal("s1", &signal), SignalEffect::Started);
        machine
    }

    #[test]
    fn changes_between_the_watermarks_take_their_keys_out_of_the_chunk() {
        let mut machine = started(3);
        let request = machine.next_chunk().unwrap();
        assert!(request.needs_max_key && request.after.is_none());
        machine.max_key_read(Some(vec!["5".into()]));
        assert!(machine.chunk_read("c1", rows(&[1, 2, 3])));
        assert_eq!(machine.next_chunk(), None, "one chunk at a time");
        machine.change("public.t", &vec!["1".into()]); // before the low watermark: in the read
        machine.window_opened("c1");
        machine.change("public.t", &vec!["2".into()]); // between: its own event wins
        machine.change("public.other", &vec!["3".into()]); // another table: no effect
        let closed = machine.window_closed("c1").unwrap();
        assert_eq!(ids(&closed), ["1", "3"]);
        assert!(!closed.table_done);
        machine.change("public.t", &vec!["3".into()]); // after the high watermark: no effect
        let next = machine.next_chunk().unwrap();
        assert_eq!(next.after, Some(vec!["3".into()]));
        assert_eq!(next.up_to, Some(vec!["5".into()]));
        assert!(machine.chunk_read("c2", rows(&[4, 5])));
        machine.window_opened("c2");
        let closed = machine.window_closed("c2").unwrap();
        assert_eq!(ids(&closed), ["4", "5"]);
        assert!(closed.table_done && closed.snapshot_done);
        assert_eq!(machine.next_chunk(), None);
        assert_eq!(machine.progress().signal_id, None);
    }

    #[test]
    fn old_watermarks_and_repeated_signals_are_ignored() {
        let mut machine = started(2);
        machine.max_key_read(Some(vec!["9".into()]));
        machine.chunk_read("new", rows(&[1, 2]));
        machine.window_opened("old");
        machine.change("public.t", &vec!["1".into()]); // window not open yet
        assert_eq!(machine.window_closed("old"), None);
        machine.window_opened("new");
        assert_eq!(ids(&machine.window_closed("new").unwrap()), ["1", "2"]);
        let again = Signal::ExecuteSnapshot {
            tables: vec![table("public.t")],
        };
        assert_eq!(machine.signal("s1", &again), SignalEffect::AlreadyHandled);
    }

    #[test]
    fn a_full_chunk_ending_at_the_max_key_ends_the_table() {
        let mut machine = started(2);
        machine.max_key_read(Some(vec!["2".into()]));
        machine.chunk_read("c", rows(&[1, 2]));
        machine.window_opened("c");
        assert!(machine.window_closed("c").unwrap().table_done);
    }

    #[test]
    fn empty_tables_and_empty_chunks_end_at_once() {
        let mut machine = IncrementalSnapshot::new(Progress::default(), 2);
        let signal = Signal::ExecuteSnapshot {
            tables: vec![table("public.a"), table("public.b")],
        };
        machine.signal("s", &signal);
        machine.max_key_read(None);
        assert_eq!(machine.current_table().unwrap().name, "public.b");
        machine.max_key_read(Some(vec!["1".into()]));
        assert!(!machine.chunk_read("c", Vec::new()));
        assert_eq!(machine.next_chunk(), None);
        assert_eq!(machine.progress().handled_signals, ["s"]);
    }

    #[test]
    fn pause_resume_stop_and_refusals() {
        let mut machine = IncrementalSnapshot::new(Progress::default(), 2);
        let signal = Signal::ExecuteSnapshot {
            tables: vec![table("public.a"), table("public.b"), table("public.c")],
        };
        machine.signal("s", &signal);
        machine.refuse_current("no primary key".into());
        assert_eq!(machine.progress().refused[0].table, "public.a");
        assert_eq!(
            machine.signal("p", &Signal::PauseSnapshot),
            SignalEffect::Paused
        );
        assert_eq!(machine.next_chunk(), None);
        machine.signal("r", &Signal::ResumeSnapshot);
        assert_eq!(machine.next_chunk().unwrap().table.name, "public.b");
        machine.max_key_read(Some(vec!["7".into()]));
        machine.chunk_read("c", rows(&[1, 2]));
        let stop = Signal::StopSnapshot {
            tables: vec!["public.b".into()],
        };
        assert_eq!(machine.signal("x", &stop), SignalEffect::Stopped);
        assert_eq!(
            machine.window_closed("c"),
            None,
            "the stopped table's chunk is dropped"
        );
        let next = machine.next_chunk().unwrap();
        assert_eq!((next.table.name.as_str(), next.after), ("public.c", None));
        machine.signal("y", &Signal::StopSnapshot { tables: vec![] });
        assert_eq!(machine.next_chunk(), None);
        assert_eq!(machine.progress().signal_id, None);
    }

    #[test]
    fn truncate_in_the_window_empties_the_chunk() {
        let mut machine = started(5);
        machine.max_key_read(Some(vec!["3".into()]));
        machine.chunk_read("c", rows(&[1, 2, 3]));
        machine.window_opened("c");
        machine.truncated("public.t");
        let closed = machine.window_closed("c").unwrap();
        assert!(closed.rows.is_empty() && closed.table_done);
    }

    /// The algorithm against a simulated database: writers commit random inserts, updates,
    /// deletes and key changes while the reader reads chunks; the WAL runs ahead of the reader.
    /// Whatever the interleaving, the latest record per key equals the table at the end.
    #[test]
    fn simulated_interleavings_end_equal_to_the_table() {
        use std::collections::{BTreeMap, VecDeque};
        enum Wal {
            Change(i32, Option<u32>), // key, new value (None: deleted)
            Open(String),
            Close(String),
        }
        struct Db {
            rows: BTreeMap<i32, u32>,
            wal: VecDeque<Wal>,
            version: u32,
            chunks: u32,
            random: u64,
        }
        impl Db {
            fn random(&mut self, n: u64) -> u64 {
                self.random = self
                    .random
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (self.random >> 33) % n
            }
            /// One committed change: insert, delete, key change (k -> k + 100) or update.
            fn write(&mut self) {
                let (r, k) = (self.random(4), 1 + self.random(45) as i32);
                self.version += 1;
                let version = self.version;
                match r {
                    0 => {
                        self.rows.insert(k, version);
                        self.wal.push_back(Wal::Change(k, Some(version)));
                    }
                    1 => {
                        if self.rows.remove(&k).is_some() {
                            self.wal.push_back(Wal::Change(k, None));
                        }
                    }
                    2 => {
                        if let Some(v) = self.rows.remove(&k) {
                            self.rows.insert(k + 100, v);
                            self.wal.push_back(Wal::Change(k, None));
                            self.wal.push_back(Wal::Change(k + 100, Some(v)));
                        }
                    }
                    _ => {
                        if let Some(value) = self.rows.get_mut(&k) {
                            *value = version;
                            self.wal.push_back(Wal::Change(k, Some(version)));
                        }
                    }
                }
            }
            /// What the reader does when a chunk is due: low watermark, read, high watermark,
            /// with writers committing in between.
            fn read_chunk(&mut self, machine: &mut IncrementalSnapshot) {
                let key = |k: &i32| vec![format!("{k:05}")];
                while let Some(request) = machine.next_chunk() {
                    if request.needs_max_key {
                        machine.max_key_read(self.rows.keys().next_back().map(key));
                        continue;
                    }
                    self.chunks += 1;
                    let id = format!("c{}", self.chunks);
                    self.wal.push_back(Wal::Open(id.clone()));
                    for _ in 0..self.random(3) {
                        self.write();
                    }
                    let rows: Vec<(Key, Row)> = self
                        .rows
                        .iter()
                        .filter(|(k, _)| request.after.as_ref().is_none_or(|a| &key(k) > a))
                        .filter(|(k, _)| request.up_to.as_ref().is_none_or(|u| &key(k) <= u))
                        .take(request.limit)
                        .map(|(k, v)| (key(k), vec![Some(k.to_string()), Some(v.to_string())]))
                        .collect();
                    for _ in 0..self.random(3) {
                        self.write();
                    }
                    if machine.chunk_read(&id, rows) {
                        self.wal.push_back(Wal::Close(id));
                        break;
                    }
                }
            }
        }
        for seed in 1..300u64 {
            let mut db = Db {
                rows: (1..=40).map(|k| (k, 0)).collect(),
                wal: VecDeque::new(),
                version: 0,
                chunks: 0,
                random: seed,
            };
            let chunk_size = 1 + db.random(7) as usize;
            let mut machine = IncrementalSnapshot::new(Progress::default(), chunk_size);
            let signal = Signal::ExecuteSnapshot {
                tables: vec![self::table("public.t")],
            };
            machine.signal("s", &signal);
            let mut topic: HashMap<i32, Option<u32>> = HashMap::new();
            db.read_chunk(&mut machine);
            let mut steps = 0;
            while !db.wal.is_empty() || machine.progress().signal_id.is_some() {
                steps += 1;
                assert!(steps < 100_000, "seed {seed}: no end");
                if steps < 2_000 && db.random(3) == 0 {
                    db.write(); // the WAL runs ahead of the reader
                    continue;
                }
                let Some(event) = db.wal.pop_front() else {
                    continue;
                };
                match event {
                    Wal::Change(k, value) => {
                        machine.change("public.t", &vec![format!("{k:05}")]);
                        topic.insert(k, value);
                    }
                    Wal::Open(id) => machine.window_opened(&id),
                    Wal::Close(id) => {
                        if let Some(closed) = machine.window_closed(&id) {
                            for row in closed.rows {
                                let k: i32 = row[0].as_deref().unwrap().parse().unwrap();
                                let v: u32 = row[1].as_deref().unwrap().parse().unwrap();
                                topic.insert(k, Some(v));
                            }
                        }
                        db.read_chunk(&mut machine);
                    }
                }
            }
            for (k, v) in &db.rows {
                assert_eq!(topic.get(k), Some(&Some(*v)), "seed {seed}: key {k}");
            }
            for (k, v) in &topic {
                assert!(
                    v.is_none() || db.rows.contains_key(k),
                    "seed {seed}: key {k} was deleted"
                );
            }
        }
    }

    #[test]
    fn progress_survives_as_json() {
        let mut machine = started(2);
        machine.max_key_read(Some(vec!["9".into()]));
        machine.chunk_read("c", rows(&[1, 2]));
        machine.window_opened("c");
        machine.window_closed("c");
        let json = serde_json::to_string(machine.progress()).unwrap();
        let restored: Progress = serde_json::from_str(&json).unwrap();
        let resumed = IncrementalSnapshot::new(restored, 2);
        assert_eq!(resumed.next_chunk().unwrap().after, Some(vec!["2".into()]));
    }
}
