//! The projections' tables in PostgreSQL: loading the state a batch needs, writing what the
//! batch changed, emptying everything for a replay.
//!
//! A batch touches a few thousand orders at most, so each step is one statement over arrays
//! (`= ANY($1)`, `UNNEST(...)`), never one statement per event:
//!
//! ```text
//! SELECT ... FROM projection_order_state WHERE order_id = ANY($1)        -- states in
//! INSERT INTO projection_order_state SELECT * FROM UNNEST(...) ON CONFLICT DO UPDATE
//! INSERT INTO order_totals SELECT ... FROM UNNEST(...)                    -- summed deltas
//!     ON CONFLICT (customer_id) DO UPDATE SET order_count = order_count + EXCLUDED...
//! DELETE FROM order_totals WHERE customer_id = ANY($1) AND order_count = 0
//! ```
//!
//! Several consumers of a group (`--group-mode`) add deltas to the same totals rows at once.
//! [`add_to_order_totals`] and [`add_to_status_totals`] sort their deltas by key before the
//! one `INSERT ... ON CONFLICT DO UPDATE`, which takes its row locks in input order, and every
//! batch writes `order_totals` before `order_status_totals`: all transactions lock in one
//! global order, so they queue behind each other instead of deadlocking
//! (`consumer/tests/concurrent_deltas.rs` runs them against each other).
//!
//! Amounts travel as cents (`bigint`) and become `numeric` in SQL (`cents * 0.01`), so no
//! float ever touches money.

use std::collections::HashSet;

use projections::{BatchFold, Cents, GroupTotals, OrderId, OrderRow, OrderState, OrderStates};
use sqlx::{PgConnection, PgPool};

/// The tables this consumer needs beyond the playground's own (migrations 0002 and 0003).
pub const CONSUMER_TABLES: &[&str] = &[
    "consumer_offsets",
    "projection_order_state",
    "projection_outbox_events",
    "order_status_totals",
    "projection_writer",
    "projection_batches",
];

/// Fails with a clear message when migration 0002 or 0003 has not been applied.
pub async fn require_tables(pool: &PgPool) -> anyhow::Result<()> {
    for table in CONSUMER_TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("public.{table}"))
            .fetch_one(pool)
            .await?;
        if !exists {
            anyhow::bail!("table `{table}` is missing: run `cargo run -p db -- migrate`");
        }
    }
    Ok(())
}

/// The stored states of `order_ids` (orders never seen are simply absent).
pub async fn load_states(
    tx: &mut PgConnection,
    order_ids: &[OrderId],
) -> Result<OrderStates, sqlx::Error> {
    type StateRow = (
        i64,
        bool,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<StateRow> = sqlx::query_as(
        "SELECT order_id, present, customer_id, status, total_cents, last_lsn, last_commit_lsn \
         FROM projection_order_state WHERE order_id = ANY($1)",
    )
    .bind(order_ids)
    .fetch_all(tx)
    .await?;
    let mut states = OrderStates::new();
    for (order_id, present, customer_id, status, total_cents, last_lsn, last_commit_lsn) in rows {
        let row = match (present, customer_id, status, total_cents) {
            (true, Some(customer_id), Some(status), Some(cents)) => Some(OrderRow {
                customer_id,
                status,
                total: Cents(cents),
            }),
            _ => None,
        };
        states.insert(
            order_id,
            OrderState {
                row,
                last_lsn,
                last_commit_lsn,
            },
        );
    }
    Ok(states)
}

/// Whether no order state is stored (after a replay, or before the first batch).
pub async fn state_table_is_empty(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM projection_order_state)")
        .fetch_one(pool)
        .await
}

/// Which of `event_ids` were applied before (the outbox route's duplicates).
pub async fn load_seen_event_ids(
    tx: &mut PgConnection,
    event_ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    if event_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let seen: Vec<String> = sqlx::query_scalar(
        "SELECT event_id FROM projection_outbox_events WHERE event_id = ANY($1)",
    )
    .bind(event_ids)
    .fetch_all(tx)
    .await?;
    Ok(seen.into_iter().collect())
}

/// Writes everything a folded batch changed: states, outbox ids, both projections.
pub async fn write_fold(tx: &mut PgConnection, fold: &mut BatchFold) -> Result<(), sqlx::Error> {
    write_states(tx, fold).await?;
    if !fold.new_event_ids().is_empty() {
        sqlx::query(
            "INSERT INTO projection_outbox_events (event_id) SELECT * FROM UNNEST($1::text[])",
        )
        .bind(fold.new_event_ids())
        .execute(&mut *tx)
        .await?;
    }
    add_to_order_totals(tx, std::mem::take(&mut fold.order_totals).into_sorted()).await?;
    add_to_status_totals(tx, std::mem::take(&mut fold.status_totals).into_sorted()).await?;
    Ok(())
}

/// Adds per-customer deltas to `order_totals` (rows locked in customer order) and deletes the
/// rows left with no order.
pub async fn add_to_order_totals(
    tx: &mut PgConnection,
    mut deltas: Vec<(i64, GroupTotals)>,
) -> Result<(), sqlx::Error> {
    deltas.sort_by_key(|(customer, _)| *customer);
    let (customers, counts, cents) = columns(deltas);
    if customers.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_totals (customer_id, order_count, total_amount) \
         SELECT k, n, c::numeric * 0.01 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS d(k, n, c) \
         ON CONFLICT (customer_id) DO UPDATE SET \
           order_count = order_totals.order_count + EXCLUDED.order_count, \
           total_amount = order_totals.total_amount + EXCLUDED.total_amount",
    )
    .bind(&customers)
    .bind(&counts)
    .bind(&cents)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM order_totals WHERE customer_id = ANY($1) AND order_count = 0")
        .bind(&customers)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Adds per-status deltas to `order_status_totals` (rows locked in status order) and deletes
/// the rows left with no order.
pub async fn add_to_status_totals(
    tx: &mut PgConnection,
    mut deltas: Vec<(String, GroupTotals)>,
) -> Result<(), sqlx::Error> {
    deltas.sort_by(|a, b| a.0.cmp(&b.0));
    let (statuses, counts, cents) = columns(deltas);
    if statuses.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_status_totals (status, order_count, total_amount) \
         SELECT k, n, c::numeric * 0.01 FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS d(k, n, c) \
         ON CONFLICT (status) DO UPDATE SET \
           order_count = order_status_totals.order_count + EXCLUDED.order_count, \
           total_amount = order_status_totals.total_amount + EXCLUDED.total_amount",
    )
    .bind(&statuses)
    .bind(&counts)
    .bind(&cents)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM order_status_totals WHERE status = ANY($1) AND order_count = 0")
        .bind(&statuses)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn write_states(tx: &mut PgConnection, fold: &BatchFold) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut present = Vec::new();
    let mut customers: Vec<Option<i64>> = Vec::new();
    let mut statuses: Vec<Option<&str>> = Vec::new();
    let mut totals: Vec<Option<i64>> = Vec::new();
    let mut lsns: Vec<Option<i64>> = Vec::new();
    let mut commit_lsns: Vec<Option<i64>> = Vec::new();
    for (order_id, state) in fold.changed_states() {
        ids.push(order_id);
        present.push(state.row.is_some());
        customers.push(state.row.as_ref().map(|r| r.customer_id));
        statuses.push(state.row.as_ref().map(|r| r.status.as_str()));
        totals.push(state.row.as_ref().map(|r| r.total.0));
        lsns.push(state.last_lsn);
        commit_lsns.push(state.last_commit_lsn);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO projection_order_state (order_id, present, customer_id, status, total_cents, last_lsn, last_commit_lsn) \
         SELECT * FROM UNNEST($1::bigint[], $2::bool[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[]) \
         ON CONFLICT (order_id) DO UPDATE SET present = EXCLUDED.present, customer_id = EXCLUDED.customer_id, \
           status = EXCLUDED.status, total_cents = EXCLUDED.total_cents, last_lsn = EXCLUDED.last_lsn, \
           last_commit_lsn = EXCLUDED.last_commit_lsn",
    )
    .bind(&ids)
    .bind(&present)
    .bind(&customers)
    .bind(&statuses)
    .bind(&totals)
    .bind(&lsns)
    .bind(&commit_lsns)
    .execute(tx)
    .await?;
    Ok(())
}

fn columns<K>(deltas: Vec<(K, GroupTotals)>) -> (Vec<K>, Vec<i64>, Vec<i64>) {
    let mut keys = Vec::with_capacity(deltas.len());
    let mut counts = Vec::with_capacity(deltas.len());
    let mut cents = Vec::with_capacity(deltas.len());
    for (key, delta) in deltas {
        keys.push(key);
        counts.push(delta.order_count);
        cents.push(delta.amount.0);
    }
    (keys, counts, cents)
}

/// Empties the projections, their state and the remembered outbox ids (inside the replay's
/// transaction, with the offsets).
pub async fn empty_projections(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE order_totals, order_status_totals, projection_order_state, projection_outbox_events")
        .execute(tx)
        .await?;
    Ok(())
}

/// Row counts of the projection tables, for `status` and the end-of-run summary.
pub async fn row_counts(pool: &PgPool) -> Result<Vec<(&'static str, i64)>, sqlx::Error> {
    let mut counts = Vec::new();
    for table in [
        "order_totals",
        "order_status_totals",
        "projection_order_state",
        "projection_outbox_events",
    ] {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(pool)
                .await?;
        counts.push((table, count));
    }
    Ok(counts)
}
