//! Synthetic order histories and their Kafka records: what the tests and the benchmark feed
//! the consumer before the real producer and cdc-reader are wired in.
//!
//! A [`HistoryBuilder`] plays the database: it keeps the `orders` rows, and each insert,
//! update or delete becomes a [`ChangeEvent`] with a growing LSN, as cdc-reader would emit.
//! [`with_redeliveries`] then plays an at-least-once reader that restarts: it repeats runs of
//! already-sent events (same LSN, new Kafka offsets). The encoders write the records in
//! Debezium's JSON (with or without schema) and in the outbox's shape.

use std::collections::BTreeMap;

use serde_json::json;

use crate::debezium::encode_connect_decimal;
use crate::event::{ChangeEvent, Op, OrderId, OrderRow, Position};
use crate::money::Cents;

/// The statuses of `orders.status`.
pub const STATUSES: [&str; 4] = ["NEW", "PAID", "SHIPPED", "CANCELLED"];

/// Plays the `orders` table and records its change events.
#[derive(Debug, Clone)]
pub struct HistoryBuilder {
    rows: BTreeMap<OrderId, OrderRow>,
    events: Vec<ChangeEvent>,
    next_id: OrderId,
    next_lsn: i64,
}

impl Default for HistoryBuilder {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            events: Vec::new(),
            next_id: 1,
            next_lsn: 1_000,
        }
    }
}

impl HistoryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn lsn(&mut self) -> i64 {
        self.next_lsn += 56;
        self.next_lsn
    }

    fn record(&mut self, order_id: OrderId, op: Op, after: Option<OrderRow>, lsn: i64) {
        self.events.push(ChangeEvent {
            order_id,
            op,
            after,
            // What the decoder makes of debezium_records' `source.sequence`,
            // `["<lsn - 8>","<lsn>"]`.
            position: Position::Sequence {
                last_commit: Some(lsn - 8),
                lsn,
            },
        });
    }

    /// A row that existed before capture started: no event until [`Self::snapshot`].
    pub fn preexisting(&mut self, row: OrderRow) -> OrderId {
        let id = self.next_id;
        self.next_id += 1;
        self.rows.insert(id, row);
        id
    }

    /// The initial snapshot: a read (`r`) of every row, all at one LSN.
    pub fn snapshot(&mut self) {
        let lsn = self.lsn();
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|(id, row)| (*id, row.clone()))
            .collect();
        for (id, row) in rows {
            self.record(id, Op::Read, Some(row), lsn);
        }
    }

    pub fn create(&mut self, row: OrderRow) -> OrderId {
        let id = self.next_id;
        self.next_id += 1;
        self.rows.insert(id, row.clone());
        let lsn = self.lsn();
        self.record(id, Op::Create, Some(row), lsn);
        id
    }

    /// Replaces the row of `order_id` (if it exists) by `change(row)`.
    pub fn update(&mut self, order_id: OrderId, change: impl FnOnce(&mut OrderRow)) {
        let Some(row) = self.rows.get_mut(&order_id) else {
            return;
        };
        change(row);
        let row = row.clone();
        let lsn = self.lsn();
        self.record(order_id, Op::Update, Some(row), lsn);
    }

    pub fn delete(&mut self, order_id: OrderId) {
        if self.rows.remove(&order_id).is_some() {
            let lsn = self.lsn();
            self.record(order_id, Op::Delete, None, lsn);
        }
    }

    /// The ids of the live orders.
    pub fn live_ids(&self) -> Vec<OrderId> {
        self.rows.keys().copied().collect()
    }

    /// The events so far, and the final rows (the state `SELECT * FROM orders` would show).
    pub fn finish(self) -> (Vec<ChangeEvent>, BTreeMap<OrderId, OrderRow>) {
        (self.events, self.rows)
    }
}

/// A small deterministic random generator (SplitMix64), so a seed reproduces a history.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A random history of about `changes` events over `customers` customers: creates, updates
/// of total / customer / status, cancels and deletes, after a snapshot of `preexisting` rows.
pub fn random_history(
    seed: u64,
    preexisting: usize,
    changes: usize,
    customers: u64,
) -> HistoryBuilder {
    let mut rng = SplitMix64(seed);
    let mut history = HistoryBuilder::new();
    let random_row = |rng: &mut SplitMix64| OrderRow {
        customer_id: 1 + rng.below(customers) as i64,
        status: "NEW".to_string(),
        total: Cents(rng.below(100_000) as i64),
    };
    for _ in 0..preexisting {
        let row = random_row(&mut rng);
        history.preexisting(row);
    }
    history.snapshot();
    let mut live: Vec<OrderId> = history.live_ids();
    while history.events.len() < changes + preexisting {
        let dice = rng.below(100);
        if live.is_empty() || dice < 35 {
            let row = random_row(&mut rng);
            live.push(history.create(row));
            continue;
        }
        let index = rng.below(live.len() as u64) as usize;
        let Some(&order_id) = live.get(index) else {
            continue;
        };
        match dice {
            35..=59 => {
                let cents = rng.below(100_000) as i64;
                history.update(order_id, |row| row.total = Cents(cents));
            }
            60..=69 => {
                let customer = 1 + rng.below(customers) as i64;
                history.update(order_id, |row| row.customer_id = customer);
            }
            70..=84 => {
                let status = STATUSES[rng.below(3) as usize + 1];
                history.update(order_id, |row| row.status = status.to_string());
            }
            85..=91 => history.update(order_id, |row| row.status = "CANCELLED".to_string()),
            _ => {
                history.delete(order_id);
                live.swap_remove(index);
            }
        }
    }
    history
}

/// Plays an at-least-once reader that restarts now and then: after some events it "crashes"
/// and sends again from an earlier point, so runs of events arrive twice (or more), each time
/// at new offsets. About `restarts` restarts, each repeating up to `max_rewind` events.
pub fn with_redeliveries(
    events: &[ChangeEvent],
    seed: u64,
    restarts: usize,
    max_rewind: usize,
) -> Vec<ChangeEvent> {
    let mut rng = SplitMix64(seed);
    let mut delivered = Vec::with_capacity(events.len() + restarts * max_rewind);
    let mut crash_points: Vec<usize> = (0..restarts)
        .map(|_| rng.below(events.len() as u64 + 1) as usize)
        .collect();
    crash_points.sort_unstable();
    let mut next = 0;
    for point in crash_points {
        delivered.extend_from_slice(events.get(next..point).unwrap_or_default());
        next = point.max(next);
        // The reader restarts from an earlier position it had confirmed.
        next = next.saturating_sub(rng.below(max_rewind as u64 + 1) as usize);
    }
    delivered.extend_from_slice(events.get(next..).unwrap_or_default());
    delivered
}

/// Adds `count` stale duplicates: copies of random events re-sent later, after newer changes
/// of the same order (what a retrying sender or a re-snapshot can do). Replaying a whole run in
/// order heals itself; a lone stale copy is what the LSN check must catch.
pub fn with_stale_duplicates(events: &[ChangeEvent], seed: u64, count: usize) -> Vec<ChangeEvent> {
    let mut rng = SplitMix64(seed);
    let mut delivered = events.to_vec();
    for _ in 0..count {
        if delivered.is_empty() {
            break;
        }
        let from = rng.below(delivered.len() as u64) as usize;
        let to = from + 1 + rng.below((delivered.len() - from) as u64) as usize;
        if let Some(copy) = delivered.get(from).cloned() {
            delivered.insert(to.min(delivered.len()), copy);
        }
    }
    delivered
}

/// A Kafka record to produce: key, value (`None` = tombstone), headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The Debezium records of one change: the change, plus a tombstone after a delete.
pub fn debezium_records(event: &ChangeEvent, with_schema: bool) -> Vec<Record> {
    let lsn = match event.position {
        Position::Lsn(lsn) | Position::Sequence { lsn, .. } => lsn,
        Position::EventId(_) => 0,
    };
    let row_json = |row: &OrderRow| {
        json!({
            "id": event.order_id, "customer_id": row.customer_id, "status": row.status,
            "total": encode_connect_decimal(row.total), "currency": "EUR",
            "created_at": "2026-11-23T15:40:00.000000Z", "updated_at": "2026-11-23T15:40:00.000000Z"
        })
    };
    let (op, before, after) = match (&event.op, &event.after) {
        (Op::Delete, _) | (_, None) => (
            "d",
            json!({"id": event.order_id, "customer_id": 0, "status": null, "total": null, "currency": null,
                   "created_at": null, "updated_at": null}),
            serde_json::Value::Null,
        ),
        (Op::Create, Some(row)) => ("c", serde_json::Value::Null, row_json(row)),
        (Op::Update, Some(row)) => ("u", serde_json::Value::Null, row_json(row)),
        (Op::Read, Some(row)) => ("r", serde_json::Value::Null, row_json(row)),
    };
    let snapshot = if op == "r" { "true" } else { "false" };
    let payload = json!({
        "before": before, "after": after,
        "source": {
            "version": "3.6.1.Final", "connector": "postgresql", "name": "dbserver1",
            "ts_ms": 1_795_000_000_000i64, "snapshot": snapshot, "db": "playground",
            "sequence": format!("[\"{}\",\"{lsn}\"]", lsn - 8), "ts_us": 1_795_000_000_000_000i64,
            "ts_ns": 1_795_000_000_000_000_000i64, "schema": "public", "table": "orders",
            "txId": 700 + lsn / 56, "lsn": lsn, "xmin": null
        },
        "transaction": null, "op": op,
        "ts_ms": 1_795_000_000_001i64, "ts_us": 1_795_000_000_001_000i64, "ts_ns": 1_795_000_000_001_000_000i64
    });
    let key_payload = json!({"id": event.order_id});
    // JsonConverter writes "schema" before "payload" (serde_json would sort them).
    let (key, value) = if with_schema {
        (
            format!(r#"{{"schema":{},"payload":{key_payload}}}"#, key_schema()),
            format!(r#"{{"schema":{},"payload":{payload}}}"#, envelope_schema()),
        )
    } else {
        (key_payload.to_string(), payload.to_string())
    };
    let key = key.into_bytes();
    let mut records = vec![Record {
        key: key.clone(),
        value: Some(value.into_bytes()),
        headers: vec![],
    }];
    if op == "d" {
        records.push(Record {
            key,
            value: None,
            headers: vec![],
        });
    }
    records
}

/// The outbox record of one change; its event id is derived from the order id and the LSN,
/// so a redelivered change carries the same id, as a re-read outbox row would.
pub fn outbox_record(event: &ChangeEvent) -> Record {
    let lsn = match &event.position {
        Position::Lsn(lsn) | Position::Sequence { lsn, .. } => *lsn,
        Position::EventId(_) => 0,
    };
    let event_type = match (&event.op, &event.after) {
        (Op::Delete, _) | (_, None) => "OrderDeleted",
        (Op::Create | Op::Read, _) => "OrderCreated",
        (Op::Update, Some(row)) if row.status == "CANCELLED" => "OrderCancelled",
        (Op::Update, _) => "OrderUpdated",
    };
    let value = match &event.after {
        Some(row) => json!({
            "id": event.order_id, "customer_id": row.customer_id, "status": row.status,
            "total": row.total.to_string(), "currency": "EUR", "items": [],
            "created_at": "2026-11-23T15:40:00Z", "updated_at": "2026-11-23T15:40:00Z"
        }),
        None => json!({"id": event.order_id}),
    };
    Record {
        key: format!("\"{}\"", event.order_id).into_bytes(),
        value: Some(value.to_string().into_bytes()),
        headers: vec![
            (
                "id".to_string(),
                format!("{:08x}-0000-4000-8000-{lsn:012x}", event.order_id).into_bytes(),
            ),
            ("eventType".to_string(), event_type.as_bytes().to_vec()),
        ],
    }
}

fn key_schema() -> serde_json::Value {
    json!({"type": "struct", "fields": [{"type": "int64", "optional": false, "default": 0, "field": "id"}],
           "optional": false, "name": "dbserver1.public.orders.Key"})
}

fn row_schema(field: &str) -> serde_json::Value {
    json!({"type": "struct", "fields": [
        {"type": "int64", "optional": false, "default": 0, "field": "id"},
        {"type": "int64", "optional": false, "field": "customer_id"},
        {"type": "string", "optional": false, "default": "NEW", "field": "status"},
        {"type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
         "parameters": {"scale": "2", "connect.decimal.precision": "12"}, "field": "total"},
        {"type": "string", "optional": false, "default": "EUR", "field": "currency"},
        {"type": "string", "optional": false, "name": "io.debezium.time.ZonedTimestamp", "version": 1,
         "default": "1970-01-01T00:00:00Z", "field": "created_at"},
        {"type": "string", "optional": false, "name": "io.debezium.time.ZonedTimestamp", "version": 1,
         "default": "1970-01-01T00:00:00Z", "field": "updated_at"}],
      "optional": true, "name": "dbserver1.public.orders.Value", "field": field})
}

fn envelope_schema() -> serde_json::Value {
    let source_fields: Vec<serde_json::Value> = [
        ("string", false, "version"),
        ("string", false, "connector"),
        ("string", false, "name"),
        ("int64", false, "ts_ms"),
        ("string", true, "snapshot"),
        ("string", false, "db"),
        ("string", true, "sequence"),
        ("int64", true, "ts_us"),
        ("int64", true, "ts_ns"),
        ("string", false, "schema"),
        ("string", false, "table"),
        ("int64", true, "txId"),
        ("int64", true, "lsn"),
        ("int64", true, "xmin"),
    ]
    .into_iter()
    .map(|(kind, optional, field)| json!({"type": kind, "optional": optional, "field": field}))
    .collect();
    json!({"type": "struct", "fields": [
        row_schema("before"), row_schema("after"),
        {"type": "struct", "fields": source_fields, "optional": false,
         "name": "io.debezium.connector.postgresql.Source", "version": 1, "field": "source"},
        {"type": "struct", "fields": [
            {"type": "string", "optional": false, "field": "id"},
            {"type": "int64", "optional": false, "field": "total_order"},
            {"type": "int64", "optional": false, "field": "data_collection_order"}],
         "optional": true, "name": "event.block", "version": 1, "field": "transaction"},
        {"type": "string", "optional": false, "field": "op"},
        {"type": "int64", "optional": true, "field": "ts_ms"},
        {"type": "int64", "optional": true, "field": "ts_us"},
        {"type": "int64", "optional": true, "field": "ts_ns"}],
      "optional": false, "name": "dbserver1.public.orders.Envelope", "version": 2})
}
