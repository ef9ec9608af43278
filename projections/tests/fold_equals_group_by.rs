//! Property: for any history of orders and any interleaving of duplicates and redeliveries,
//! folding the delivered records (decoded from their JSON, in batches, with consumer crashes
//! between batches) gives exactly
//! `SELECT customer_id, count(*), sum(total) FROM orders GROUP BY customer_id` of the final
//! rows (and the same per status), from the CDC topic and from the outbox topic alike.

use std::collections::HashSet;

use proptest::prelude::*;

use projections::synthetic::{
    debezium_records, outbox_record, with_redeliveries, with_stale_duplicates, HistoryBuilder,
    Record, STATUSES,
};
use projections::{
    decode_change, decode_outbox, BatchFold, Cents, ChangeDecoder, Decoded, OrderRow, OrderStates,
    OrderTotals, StatusTotals, Totals,
};

#[derive(Debug, Clone)]
enum Action {
    Create { customer: i64, cents: i64 },
    SetTotal { pick: usize, cents: i64 },
    SetCustomer { pick: usize, customer: i64 },
    SetStatus { pick: usize, status: usize },
    Delete { pick: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (1..6i64, 0..50_000i64).prop_map(|(customer, cents)| Action::Create { customer, cents }),
        2 => (any::<usize>(), 0..50_000i64).prop_map(|(pick, cents)| Action::SetTotal { pick, cents }),
        1 => (any::<usize>(), 1..6i64).prop_map(|(pick, customer)| Action::SetCustomer { pick, customer }),
        2 => (any::<usize>(), 0..4usize).prop_map(|(pick, status)| Action::SetStatus { pick, status }),
        1 => any::<usize>().prop_map(|pick| Action::Delete { pick }),
    ]
}

fn build(preexisting: &[(i64, i64)], actions: &[Action]) -> HistoryBuilder {
    let mut history = HistoryBuilder::new();
    for (customer, cents) in preexisting {
        history.preexisting(OrderRow {
            customer_id: *customer,
            status: "NEW".into(),
            total: Cents(*cents),
        });
    }
    history.snapshot();
    for action in actions {
        let live = history.live_ids();
        let pick = |i: usize| live.get(i % live.len().max(1)).copied();
        match action.clone() {
            Action::Create { customer, cents } => {
                history.create(OrderRow {
                    customer_id: customer,
                    status: "NEW".into(),
                    total: Cents(cents),
                });
            }
            Action::SetTotal { pick: i, cents } => {
                if let Some(id) = pick(i) {
                    history.update(id, |row| row.total = Cents(cents));
                }
            }
            Action::SetCustomer { pick: i, customer } => {
                if let Some(id) = pick(i) {
                    history.update(id, |row| row.customer_id = customer);
                }
            }
            Action::SetStatus { pick: i, status } => {
                if let Some(id) = pick(i) {
                    history.update(id, |row| row.status = STATUSES[status].to_string());
                }
            }
            Action::Delete { pick: i } => {
                if let Some(id) = pick(i) {
                    history.delete(id);
                }
            }
        }
    }
    history
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    CdcWithSchema,
    CdcWithoutSchema,
    Outbox,
}

fn decode(decoder: &mut ChangeDecoder, record: &Record, route: Route) -> Decoded {
    let decoded = match route {
        Route::CdcWithSchema => decoder.decode(record.value.as_deref()),
        Route::CdcWithoutSchema => decode_change(record.value.as_deref()),
        Route::Outbox => {
            let headers: Vec<(&str, Option<&[u8]>)> = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice())))
                .collect();
            decode_outbox(Some(&record.key), record.value.as_deref(), &headers)
        }
    };
    decoded.expect("generated records decode")
}

/// Plays the consumer: batches of `batch_sizes` records; a batch whose `crashes` flag is set
/// is folded and then lost (a kill before commit), and read again from the committed offset.
fn consume(
    records: &[Record],
    route: Route,
    batch_sizes: &[usize],
    crashes: &[bool],
) -> (Totals<i64>, Totals<String>) {
    let mut states = OrderStates::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut order_totals = Totals::default();
    let mut status_totals = Totals::default();
    let mut offset = 0;
    let mut round = 0;
    let mut decoder = ChangeDecoder::new();
    while offset < records.len() {
        let size = batch_sizes[round % batch_sizes.len()];
        let crash = crashes[round % crashes.len()];
        round += 1;
        let end = (offset + size).min(records.len());
        let mut fold = BatchFold::new(states.clone(), seen.clone());
        for record in &records[offset..end] {
            if let Decoded::Change(event) = decode(&mut decoder, record, route) {
                fold.apply(&event).expect("no overflow");
            }
        }
        if crash {
            continue;
        }
        seen.extend(fold.new_event_ids().iter().cloned());
        order_totals
            .apply(std::mem::take(&mut fold.order_totals))
            .expect("no overflow");
        status_totals
            .apply(std::mem::take(&mut fold.status_totals))
            .expect("no overflow");
        states = fold.into_states();
        offset = end;
    }
    (order_totals, status_totals)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn folding_equals_group_by_of_the_final_rows(
        preexisting in prop::collection::vec((1..6i64, 0..50_000i64), 0..6),
        actions in prop::collection::vec(action(), 0..60),
        redelivery_seed in any::<u64>(),
        restarts in 0..6usize,
        stale_duplicates in 0..8usize,
        batch_sizes in prop::collection::vec(1..12usize, 1..5),
        crashes in prop::collection::vec(prop::bool::weighted(0.2), 1..6),
        route in prop_oneof![Just(Route::CdcWithSchema), Just(Route::CdcWithoutSchema), Just(Route::Outbox)],
    ) {
        // At least one batch in the cycle commits, or the consumer would never progress.
        let mut crashes = crashes;
        crashes.push(false);
        let (events, final_rows) = build(&preexisting, &actions).finish();
        let delivered = with_redeliveries(&events, redelivery_seed, restarts, 8);
        let delivered = with_stale_duplicates(&delivered, redelivery_seed ^ 1, stale_duplicates);
        let records: Vec<Record> = delivered
            .iter()
            .flat_map(|event| match route {
                Route::CdcWithSchema => debezium_records(event, true),
                Route::CdcWithoutSchema => debezium_records(event, false),
                Route::Outbox => vec![outbox_record(event)],
            })
            .collect();

        let (order_totals, status_totals) = consume(&records, route, &batch_sizes, &crashes);
        prop_assert_eq!(order_totals, Totals::of_rows(&OrderTotals, final_rows.values()));
        prop_assert_eq!(status_totals, Totals::of_rows(&StatusTotals, final_rows.values()));
    }
}

#[test]
fn a_random_history_with_many_redeliveries() {
    let (events, final_rows) = projections::synthetic::random_history(7, 50, 5_000, 40).finish();
    let delivered = with_stale_duplicates(&with_redeliveries(&events, 11, 30, 200), 12, 300);
    assert!(delivered.len() > events.len());
    let records: Vec<Record> = delivered
        .iter()
        .flat_map(|e| debezium_records(e, false))
        .collect();
    let (order_totals, _) = consume(
        &records,
        Route::CdcWithoutSchema,
        &[500, 37],
        &[false, true, false],
    );
    assert_eq!(
        order_totals,
        Totals::of_rows(&OrderTotals, final_rows.values())
    );
}
