//! The join's behaviour, without I/O: what is emitted when, and that any interleaving of the
//! three input topics (with redeliveries) gives the same events as in-order delivery.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::money::Cents;

const BOUND: u64 = 1_000;

/// A transaction as the tests write it: its rows in LSN order and its END.
#[derive(Debug, Clone)]
struct Tx {
    rows: Vec<SourceChange>,
    end: TransactionEnd,
}

#[derive(Default)]
struct History {
    lsn: i64,
    xid: Xid,
    txs: Vec<Tx>,
    open: Vec<SourceChange>,
}

fn order(id: i64, status: &str, cents: i64) -> Order {
    Order {
        id,
        customer_id: id % 3,
        status: status.into(),
        total: Cents(cents),
        currency: "EUR".into(),
    }
}

fn item(order_id: i64, line_no: i32, quantity: i32) -> Item {
    Item {
        order_id,
        line_no,
        sku: format!("SKU-{line_no}"),
        quantity,
        unit_price: Cents(100),
    }
}

impl History {
    fn row(&mut self, row: RowChange) {
        self.lsn += 10;
        self.open.push(SourceChange {
            xid: Some(self.xid + 1),
            lsn: self.lsn,
            ts_ms: 1_000 + self.xid,
            row,
        });
    }
    fn order(&mut self, op: RowOp, id: i64, after: Option<Order>) {
        self.row(RowChange::Order { id, op, after });
    }
    fn item(&mut self, op: RowOp, order_id: i64, line_no: i32, after: Option<Item>) {
        self.row(RowChange::Item {
            order_id,
            line_no,
            op,
            after,
        });
    }
    fn commit(&mut self) {
        self.xid += 1;
        self.lsn += 10;
        let rows = std::mem::take(&mut self.open);
        let order_rows = rows.iter().filter(|r| r.row.is_order()).count() as u64;
        self.txs.push(Tx {
            end: TransactionEnd {
                xid: self.xid,
                commit_lsn: self.lsn,
                ts_ms: 1_000 + self.xid,
                order_rows,
                item_rows: rows.len() as u64 - order_rows,
            },
            rows,
        });
    }
}

/// One input record of any of the three topics.
#[derive(Debug, Clone)]
enum Input {
    Row(SourceChange),
    End(TransactionEnd),
}

fn feed(join: &mut OrderEventsJoin, inputs: &[Input], now_ms: u64) -> Vec<JoinOutput> {
    let mut out = Vec::new();
    for input in inputs {
        match input {
            Input::Row(change) => join.on_change(change.clone(), now_ms),
            Input::End(end) => join.on_end(end.clone(), now_ms, &mut out),
        }
        join.poll(now_ms, &mut out);
    }
    out
}

fn in_order(txs: &[Tx]) -> Vec<Input> {
    txs.iter()
        .flat_map(|tx| {
            tx.rows
                .iter()
                .cloned()
                .map(Input::Row)
                .chain([Input::End(tx.end.clone())])
        })
        .collect()
}

fn events(outputs: &[JoinOutput]) -> Vec<OrderEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            JoinOutput::Event(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn types(outputs: &[JoinOutput]) -> Vec<(i64, EventType, usize)> {
    events(outputs)
        .iter()
        .map(|e| (e.order_id(), e.event_type, e.items.len()))
        .collect()
}

#[test]
fn one_event_per_order_per_transaction_with_the_documented_types() {
    let mut h = History::default();
    h.order(RowOp::Insert, 1, Some(order(1, "NEW", 300)));
    h.item(RowOp::Insert, 1, 1, Some(item(1, 1, 1)));
    h.item(RowOp::Insert, 1, 2, Some(item(1, 2, 2)));
    h.order(RowOp::Insert, 2, Some(order(2, "NEW", 100)));
    h.commit();
    h.item(RowOp::Delete, 1, 2, None);
    h.order(RowOp::Update, 1, Some(order(1, "PAID", 100)));
    h.commit();
    h.order(RowOp::Update, 2, Some(order(2, "CANCELLED", 100)));
    h.commit();
    h.item(RowOp::Delete, 1, 1, None);
    h.order(RowOp::Delete, 1, None);
    h.commit();
    let mut join = OrderEventsJoin::new(JoinSettings::default());
    let out = feed(&mut join, &in_order(&h.txs), 0);
    assert_eq!(
        types(&out),
        vec![
            (1, EventType::OrderPlaced, 2),
            (2, EventType::OrderPlaced, 0),
            (1, EventType::OrderChanged, 1),
            (2, EventType::OrderCancelled, 0),
            (1, EventType::OrderDeleted, 0),
        ]
    );
    let all = events(&out);
    assert_eq!(all[0].source.tx_id, 1);
    assert_eq!(all[0].event_id, event_id(1, h.txs[0].end.commit_lsn, 1));
    // OrderDeleted carries the row as last seen.
    assert_eq!(
        all[4].order.as_ref().map(|o| o.status.as_str()),
        Some("PAID")
    );
}

#[test]
fn nothing_leaves_before_the_end_counts_are_met_and_order_follows_the_ends() {
    let mut h = History::default();
    h.order(RowOp::Insert, 1, Some(order(1, "NEW", 100)));
    h.item(RowOp::Insert, 1, 1, Some(item(1, 1, 1)));
    h.commit();
    h.order(RowOp::Update, 1, Some(order(1, "PAID", 100)));
    h.commit();
    let (t1, t2) = (h.txs[0].clone(), h.txs[1].clone());
    let mut join = OrderEventsJoin::new(JoinSettings::default());
    let mut out = Vec::new();
    // END before its rows; the second transaction complete before the first.
    join.on_end(t1.end.clone(), 0, &mut out);
    join.on_change(t2.rows[0].clone(), 0);
    join.on_end(t2.end.clone(), 0, &mut out);
    join.on_change(t1.rows[0].clone(), 0);
    join.poll(0, &mut out);
    assert!(events(&out).is_empty(), "t1 misses its item: {out:?}");
    join.on_change(t1.rows[1].clone(), 0);
    join.poll(0, &mut out);
    assert_eq!(
        types(&out),
        vec![
            (1, EventType::OrderPlaced, 1),
            (1, EventType::OrderChanged, 1)
        ]
    );
}

#[test]
fn an_incomplete_transaction_goes_to_the_dead_letter_topic_after_the_bound() {
    let mut h = History::default();
    h.order(RowOp::Insert, 1, Some(order(1, "NEW", 100)));
    h.item(RowOp::Insert, 1, 1, Some(item(1, 1, 1)));
    h.commit();
    h.order(RowOp::Insert, 2, Some(order(2, "NEW", 100)));
    h.commit();
    h.order(RowOp::Insert, 3, Some(order(3, "NEW", 100)));
    h.commit(); // its END never comes
    let mut join = OrderEventsJoin::new(JoinSettings {
        incomplete_after_ms: BOUND,
    });
    let mut out = Vec::new();
    join.on_change(h.txs[0].rows[0].clone(), 0); // the item never comes
    join.on_end(h.txs[0].end.clone(), 0, &mut out);
    join.on_change(h.txs[1].rows[0].clone(), 0);
    join.on_end(h.txs[1].end.clone(), 0, &mut out);
    join.on_change(h.txs[2].rows[0].clone(), 500);
    join.poll(BOUND - 1, &mut out);
    assert!(out.is_empty(), "{out:?}");
    join.poll(BOUND, &mut out);
    let JoinOutput::DeadLetter(dead) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(dead.xid, 1);
    assert!(
        dead.reason.contains("rows still missing"),
        "{}",
        dead.reason
    );
    assert!(dead
        .reason
        .contains("1 orders and 0 order_items rows arrived"));
    assert_eq!(types(&out[1..]), vec![(2, EventType::OrderPlaced, 0)]);
    assert_eq!(out.len(), 2);
    join.poll(BOUND + 500, &mut out);
    let JoinOutput::DeadLetter(dead) = &out[2] else {
        panic!("{out:?}")
    };
    assert!(dead.reason.contains("no END record"), "{}", dead.reason);
    let json: serde_json::Value = serde_json::from_slice(&dead.to_json()).unwrap();
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(1));
    // Order 1 was not joined: the state does not know it.
    assert!(join.store().get(1).is_none_or(|e| e.order.is_none()));
}

#[test]
fn items_of_an_unknown_order_are_held_and_come_with_the_order() {
    let mut h = History::default();
    h.item(RowOp::Insert, 7, 1, Some(item(7, 1, 3)));
    h.commit();
    h.order(RowOp::Update, 7, Some(order(7, "PAID", 300)));
    h.commit();
    // An order inserted and deleted in one transaction, with its item.
    h.order(RowOp::Insert, 8, Some(order(8, "NEW", 100)));
    h.item(RowOp::Insert, 8, 1, Some(item(8, 1, 1)));
    h.item(RowOp::Delete, 8, 1, None);
    h.order(RowOp::Delete, 8, None);
    h.commit();
    let mut join = OrderEventsJoin::new(JoinSettings::default());
    let out = feed(&mut join, &in_order(&h.txs), 0);
    assert_eq!(
        out[0],
        JoinOutput::HeldItems {
            order_id: 7,
            xid: 1
        }
    );
    assert_eq!(
        types(&out),
        vec![
            (7, EventType::OrderPlaced, 1),
            (8, EventType::OrderDeleted, 0)
        ]
    );
    assert_eq!(events(&out)[1].order, None);
}

#[test]
fn the_changelog_restores_waiting_transactions_and_state() {
    let mut h = History::default();
    h.order(RowOp::Insert, 1, Some(order(1, "NEW", 100)));
    h.commit();
    h.order(RowOp::Insert, 2, Some(order(2, "NEW", 100)));
    h.item(RowOp::Insert, 2, 1, Some(item(2, 1, 1)));
    h.commit();
    let mut join = OrderEventsJoin::new(JoinSettings::default());
    let mut changelog = Vec::new();
    let mut out = feed(
        &mut join,
        &[
            Input::Row(h.txs[0].rows[0].clone()),
            Input::End(h.txs[0].end.clone()),
            Input::Row(h.txs[1].rows[0].clone()),
        ],
        0,
    );
    changelog.extend(join.take_changelog());
    // A restart: a new join from the changelog alone gets the rest.
    let mut restored = OrderEventsJoin::new(JoinSettings::default());
    for (key, value) in &changelog {
        restored.restore(key, value.as_deref()).unwrap();
    }
    restored.finish_restore(0);
    out.extend(feed(
        &mut restored,
        &[
            Input::Row(h.txs[1].rows[1].clone()),
            Input::End(h.txs[1].end.clone()),
            // A redelivery of the first transaction changes nothing.
            Input::Row(h.txs[0].rows[0].clone()),
            Input::End(h.txs[0].end.clone()),
        ],
        0,
    ));
    assert_eq!(
        types(&out),
        vec![
            (1, EventType::OrderPlaced, 0),
            (2, EventType::OrderPlaced, 1)
        ]
    );
    changelog.extend(restored.take_changelog());
    assert!(
        changelog.contains(&("tx/2".to_string(), None)),
        "{changelog:?}"
    );
}

/// A random history over four orders.
fn history(actions: &[(u8, u8, u8)], tx_sizes: &[u8]) -> Vec<Tx> {
    let mut h = History::default();
    let mut live: BTreeMap<i64, BTreeSet<i32>> = BTreeMap::new();
    let mut next_id = 1;
    let mut actions = actions.iter();
    for size in tx_sizes {
        for _ in 0..=*size {
            let Some((kind, pick, value)) = actions.next() else {
                break;
            };
            let ids: Vec<i64> = live.keys().copied().collect();
            let target = ids.get(*pick as usize % ids.len().max(1)).copied();
            match (kind % 5, target) {
                (0, _) | (_, None) => {
                    let id = next_id;
                    next_id += 1;
                    h.order(RowOp::Insert, id, Some(order(id, "NEW", i64::from(*value))));
                    h.item(RowOp::Insert, id, 1, Some(item(id, 1, 1)));
                    live.insert(id, BTreeSet::from([1]));
                }
                (1, Some(id)) => {
                    let status = ["NEW", "PAID", "SHIPPED", "CANCELLED"][*value as usize % 4];
                    h.order(
                        RowOp::Update,
                        id,
                        Some(order(id, status, i64::from(*value))),
                    );
                }
                (2, Some(id)) => {
                    let line = live[&id].iter().max().copied().unwrap_or(0) + 1;
                    h.item(RowOp::Insert, id, line, Some(item(id, line, 2)));
                    live.entry(id).or_default().insert(line);
                }
                (3, Some(id)) => {
                    if let Some(line) = live[&id].iter().next().copied() {
                        h.item(RowOp::Delete, id, line, None);
                        live.entry(id).or_default().remove(&line);
                    }
                }
                (_, Some(id)) => {
                    for line in live.remove(&id).unwrap_or_default() {
                        h.item(RowOp::Delete, id, line, None);
                    }
                    h.order(RowOp::Delete, id, None);
                }
            }
        }
        h.commit();
    }
    h.txs
}

/// Merges the three topics (orders rows, items rows, ENDs), each in its own order, as `picks`
/// choose, then appends a redelivery of the last `redeliver` transactions.
fn interleave(txs: &[Tx], picks: &[u8], redeliver: usize) -> Vec<Input> {
    let mut topics: [Vec<Input>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut sent = txs.to_vec();
    sent.extend(txs[txs.len().saturating_sub(redeliver)..].iter().cloned());
    for tx in &sent {
        for row in &tx.rows {
            topics[usize::from(!row.row.is_order())].push(Input::Row(row.clone()));
        }
        topics[2].push(Input::End(tx.end.clone()));
    }
    let mut cursors = [0usize; 3];
    let mut merged = Vec::new();
    let mut picks = picks.iter().cycle();
    while merged.len() < topics.iter().map(Vec::len).sum() {
        let start = usize::from(*picks.next().unwrap_or(&0)) % 3;
        for k in 0..3 {
            let t = (start + k) % 3;
            if let Some(input) = topics[t].get(cursors[t]) {
                merged.push(input.clone());
                cursors[t] += 1;
                break;
            }
        }
    }
    merged
}

proptest! {
    #[test]
    fn any_interleaving_of_the_topics_gives_the_in_order_events(
        actions in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 1..60),
        tx_sizes in proptest::collection::vec(0..4u8, 1..20),
        picks in proptest::collection::vec(any::<u8>(), 1..50),
        redeliver in 0..3usize,
    ) {
        let txs = history(&actions, &tx_sizes);
        let mut expected_join = OrderEventsJoin::new(JoinSettings::default());
        let expected = events(&feed(&mut expected_join, &in_order(&txs), 0));
        let mut join = OrderEventsJoin::new(JoinSettings::default());
        let got = feed(&mut join, &interleave(&txs, &picks, redeliver), 0);
        prop_assert!(got.iter().all(|o| !matches!(o, JoinOutput::DeadLetter(_))));
        prop_assert_eq!(events(&got), expected);
        prop_assert!(join.buffer().is_empty());
        // The event ids are unique, and per order the source LSN only grows.
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for event in events(&got) {
            prop_assert!(ids.insert(event.event_id));
            let previous = last.insert(event.order_id(), event.source.lsn);
            prop_assert!(previous.is_none_or(|p| p < event.source.lsn));
        }
    }
}
