//! The transactional writes: each business change and the outbox event describing it commit
//! together, or not at all.
//!
//! This is the transactional outbox. Every function here opens one transaction, changes
//! `orders` / `order_items`, inserts one `outbox_events` row, and commits:
//!
//! ```text
//! BEGIN
//!   INSERT INTO orders ... ; INSERT INTO order_items ...     (the business change)
//!   INSERT INTO outbox_events (id, aggregatetype, aggregateid, type, payload) ...
//!   [DELETE FROM outbox_events WHERE id = ...]               (--outbox-delete-after-insert)
//! COMMIT
//! ```
//!
//! If anything fails before COMMIT, the transaction is dropped and PostgreSQL rolls it back:
//! no order without its event, no event without its order. CDC reads the WAL, which holds only
//! committed transactions, so a consumer sees both or neither. If the connection dies while
//! COMMIT is on its way, nobody knows whether it happened: [`OrderError::CommitInDoubt`] carries
//! what would have been committed, and [`was_committed`] looks it up once the server is back.
//!
//! Both the CLI workload ([`crate::workload`] via [`crate::run`]) and the HTTP API
//! ([`crate::http`]) call these functions. Changes to an existing order first lock its row
//! (`SELECT ... FOR UPDATE`) so the status check and the write cannot race another writer.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::domain::{self, FieldError, NewItem, NewOrder, Order, OrderItem, OrderStatus, CURRENCY};
use crate::money::Money;
use crate::outbox::{EventType, OutboxEvent};

/// Expands to SQL that prints a `timestamptz` column as RFC 3339 in UTC with microseconds
/// (`2026-11-23T15:40:00.123456Z`), whatever the session's TimeZone is.
macro_rules! utc_text {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
    };
}

/// How the outbox row is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxMode {
    /// Delete the outbox row again in the same transaction: the table stays empty, and CDC still
    /// sees the insert in the WAL (Debezium's recommended way to run an outbox).
    pub delete_after_insert: bool,
}

/// A committed change: the order as it is now (or was, for a delete) and its outbox event.
#[derive(Debug, Clone)]
pub struct Committed {
    pub order: Order,
    pub event: OutboxEvent,
}

/// Why a write did not happen. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("order {0} does not exist")]
    NotFound(i64),
    #[error("order {order_id} is {from}; it cannot become {to} (NEW -> PAID -> SHIPPED, cancel before shipping)")]
    IllegalTransition {
        order_id: i64,
        from: OrderStatus,
        to: OrderStatus,
    },
    #[error("order {order_id} is {status}: its items can change only while it is NEW")]
    ItemsLocked { order_id: i64, status: OrderStatus },
    #[error("order {order_id} has no line {line_no}")]
    NoSuchLine { order_id: i64, line_no: i32 },
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("order {order_id} in the database is not readable: {problem}")]
    Unreadable { order_id: i64, problem: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The connection failed while COMMIT was on its way: the change may or may not be
    /// committed. [`was_committed`] tells, once the server answers again.
    #[error("the connection failed during COMMIT ({source}): {} of order {} may or may not be committed", .committed.event.event_type.as_str(), .committed.order.order_id)]
    CommitInDoubt {
        committed: Box<Committed>,
        source: sqlx::Error,
    },
}

impl OrderError {
    /// Whether running the same operation again may succeed (the database was away).
    pub fn is_transient(&self) -> bool {
        match self {
            OrderError::Database(error) => db::is_transient(error),
            _ => false,
        }
    }
}

/// Commits `tx`; a COMMIT the server never answered is [`OrderError::CommitInDoubt`] (with
/// what would have been committed), an error the server answered is a plain database error.
async fn commit(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    committed: Committed,
) -> Result<Committed, OrderError> {
    match tx.commit().await {
        Ok(()) => Ok(committed),
        Err(source) if crate::retry::is_unanswered(&source) => Err(OrderError::CommitInDoubt {
            committed: Box::new(committed),
            source,
        }),
        Err(error) => Err(OrderError::Database(error)),
    }
}

/// Whether the change of an in-doubt COMMIT is in the database (ask once the server is back).
///
/// The outbox row says it exactly (its id is the event's); with `--outbox-delete-after-insert`
/// there is none, so the order tells: a create committed if the order exists, a delete if it
/// does not, any other change if the order's `updated_at` is the one that transaction set.
pub async fn was_committed(
    conn: &mut PgConnection,
    committed: &Committed,
    mode: OutboxMode,
) -> Result<bool, sqlx::Error> {
    if !mode.delete_after_insert {
        return sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox_events WHERE id = $1::uuid)",
        )
        .bind(committed.event.id.to_string())
        .fetch_one(conn)
        .await;
    }
    let updated_at: Option<String> = sqlx::query_scalar(concat!(
        "SELECT ",
        utc_text!("updated_at"),
        " FROM orders WHERE id = $1"
    ))
    .bind(committed.order.order_id)
    .fetch_optional(conn)
    .await?;
    Ok(match committed.event.event_type {
        EventType::OrderCreated => updated_at.is_some(),
        EventType::OrderDeleted => updated_at.is_none(),
        _ => updated_at.as_deref() == Some(committed.order.updated_at.as_str()),
    })
}

/// Inserts `order` with its lines and an `OrderCreated` event, in one transaction.
pub async fn create_order(
    conn: &mut PgConnection,
    event_id: Uuid,
    order: &NewOrder,
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    let total = domain::validate_new_order(order)?;
    let (skus, quantities, unit_prices) = item_columns(&order.items);
    let mut tx = conn.begin().await?;
    // One statement writes the order and its lines: the lines need the id the database assigns,
    // and a data-modifying CTE hands it over without another round trip.
    let (order_id, created_at, updated_at): (i64, String, String) = sqlx::query_as(concat!(
        "WITH new_order AS ( \
             INSERT INTO orders (customer_id, total, currency) VALUES ($1, $2::numeric, $3) \
             RETURNING id, created_at, updated_at \
         ), new_items AS ( \
             INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price) \
             SELECT new_order.id, line.line_no, line.sku, line.quantity, line.unit_price::numeric \
             FROM new_order, unnest($4::text[], $5::int4[], $6::text[]) \
                  WITH ORDINALITY AS line (sku, quantity, unit_price, line_no) \
         ) \
         SELECT id, ",
        utc_text!("created_at"),
        ", ",
        utc_text!("updated_at"),
        " FROM new_order"
    ))
    .bind(order.customer_id)
    .bind(total.to_string())
    .bind(CURRENCY)
    .bind(skus)
    .bind(quantities)
    .bind(unit_prices)
    .fetch_one(&mut *tx)
    .await?;
    let stored = Order {
        order_id,
        customer_id: order.customer_id,
        status: OrderStatus::New,
        total,
        currency: CURRENCY.to_string(),
        items: numbered(&order.items),
        created_at,
        updated_at,
    };
    let event = OutboxEvent::for_order(event_id, EventType::OrderCreated, &stored, None);
    insert_outbox_event(&mut tx, &event, mode).await?;
    commit(
        tx,
        Committed {
            order: stored,
            event,
        },
    )
    .await
}

/// Moves an order to status `to` (pay, ship or cancel), with an `OrderStatusChanged` event
/// (`OrderCancelled` when `to` is CANCELLED).
pub async fn change_status(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: i64,
    to: OrderStatus,
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    let mut tx = conn.begin().await?;
    let mut order = lock_order(&mut tx, order_id).await?;
    let from = order.status;
    if !from.can_become(to) {
        return Err(OrderError::IllegalTransition { order_id, from, to });
    }
    order.updated_at = sqlx::query_scalar(concat!(
        "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1 RETURNING ",
        utc_text!("updated_at")
    ))
    .bind(order_id)
    .bind(to.as_str())
    .fetch_one(&mut *tx)
    .await?;
    order.status = to;
    let event_type = match to {
        OrderStatus::Cancelled => EventType::OrderCancelled,
        _ => EventType::OrderStatusChanged,
    };
    let event = OutboxEvent::for_order(event_id, event_type, &order, Some(from));
    insert_outbox_event(&mut tx, &event, mode).await?;
    commit(tx, Committed { order, event }).await
}

/// Cancels an order that has not shipped yet, with an `OrderCancelled` event.
pub async fn cancel_order(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: i64,
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    change_status(conn, event_id, order_id, OrderStatus::Cancelled, mode).await
}

/// Sets the quantity of one line of a NEW order and recomputes its total, with an
/// `OrderUpdated` event.
pub async fn change_item_quantity(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: i64,
    line_no: i32,
    quantity: i32,
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    domain::validate_quantity(quantity).map_err(|problem| FieldError::new("quantity", problem))?;
    let mut tx = conn.begin().await?;
    let mut order = lock_order(&mut tx, order_id).await?;
    if !order.status.items_can_change() {
        return Err(OrderError::ItemsLocked {
            order_id,
            status: order.status,
        });
    }
    let Some(line) = order.items.iter_mut().find(|item| item.line_no == line_no) else {
        return Err(OrderError::NoSuchLine { order_id, line_no });
    };
    line.quantity = quantity;
    order.total = domain::total_of(
        order
            .items
            .iter()
            .map(|item| (item.quantity, item.unit_price)),
    )?;
    sqlx::query("UPDATE order_items SET quantity = $3 WHERE order_id = $1 AND line_no = $2")
        .bind(order_id)
        .bind(line_no)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
    order.updated_at = update_total(&mut tx, order_id, order.total).await?;
    let event = OutboxEvent::for_order(event_id, EventType::OrderUpdated, &order, None);
    insert_outbox_event(&mut tx, &event, mode).await?;
    commit(tx, Committed { order, event }).await
}

/// Replaces all lines of a NEW order and recomputes its total, with an `OrderUpdated` event.
pub async fn replace_items(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: i64,
    items: &[NewItem],
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    let total = domain::validate_items(items)?;
    let mut tx = conn.begin().await?;
    let mut order = lock_order(&mut tx, order_id).await?;
    if !order.status.items_can_change() {
        return Err(OrderError::ItemsLocked {
            order_id,
            status: order.status,
        });
    }
    sqlx::query("DELETE FROM order_items WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    let (skus, quantities, unit_prices) = item_columns(items);
    sqlx::query(
        "INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price) \
         SELECT $1, line.line_no, line.sku, line.quantity, line.unit_price::numeric \
         FROM unnest($2::text[], $3::int4[], $4::text[]) \
              WITH ORDINALITY AS line (sku, quantity, unit_price, line_no)",
    )
    .bind(order_id)
    .bind(skus)
    .bind(quantities)
    .bind(unit_prices)
    .execute(&mut *tx)
    .await?;
    order.items = numbered(items);
    order.total = total;
    order.updated_at = update_total(&mut tx, order_id, total).await?;
    let event = OutboxEvent::for_order(event_id, EventType::OrderUpdated, &order, None);
    insert_outbox_event(&mut tx, &event, mode).await?;
    commit(tx, Committed { order, event }).await
}

/// Deletes an order and its lines, with an `OrderDeleted` event carrying the order as it was.
///
/// The lines are deleted explicitly (not left to `ON DELETE CASCADE`) so that CDC shows one
/// delete event per line, in the order a learner expects: lines first, then the order.
pub async fn delete_order(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: i64,
    mode: OutboxMode,
) -> Result<Committed, OrderError> {
    let mut tx = conn.begin().await?;
    let order = lock_order(&mut tx, order_id).await?;
    sqlx::query("DELETE FROM order_items WHERE order_id = $1")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM orders WHERE id = $1")
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    let event = OutboxEvent::for_order(event_id, EventType::OrderDeleted, &order, None);
    insert_outbox_event(&mut tx, &event, mode).await?;
    commit(tx, Committed { order, event }).await
}

/// Reads an order with its lines (no lock), or `None` when there is no such order.
pub async fn fetch_order(
    conn: &mut PgConnection,
    order_id: i64,
) -> Result<Option<Order>, OrderError> {
    let row: Option<OrderRow> = sqlx::query_as(SELECT_ORDER)
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    row.map(order_from_row).transpose()
}

/// Reads and locks an order with its lines for the rest of the transaction.
async fn lock_order(conn: &mut PgConnection, order_id: i64) -> Result<Order, OrderError> {
    let row: Option<OrderRow> = sqlx::query_as(SELECT_ORDER_FOR_UPDATE)
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    order_from_row(row.ok_or(OrderError::NotFound(order_id))?)
}

/// An order with its lines in one row; the lines as a JSON array (line_no order).
macro_rules! select_order {
    ($suffix:literal) => {
        concat!(
            "SELECT o.id, o.customer_id, o.status, o.total::text, o.currency, ",
            utc_text!("o.created_at"),
            ", ",
            utc_text!("o.updated_at"),
            ", (SELECT coalesce(jsonb_agg(jsonb_build_object( \
                     'line_no', i.line_no, 'sku', i.sku, 'quantity', i.quantity, \
                     'unit_price', i.unit_price::text) ORDER BY i.line_no), '[]')::text \
                 FROM order_items i WHERE i.order_id = o.id) \
             FROM orders o WHERE o.id = $1",
            $suffix
        )
    };
}
const SELECT_ORDER: &str = select_order!("");
const SELECT_ORDER_FOR_UPDATE: &str = select_order!(" FOR UPDATE OF o");

/// The columns of [`SELECT_ORDER`], before they are checked and turned into an [`Order`].
type OrderRow = (i64, i64, String, String, String, String, String, String);

/// Checks a row of [`SELECT_ORDER`] and turns it into an [`Order`].
fn order_from_row(row: OrderRow) -> Result<Order, OrderError> {
    let (order_id, customer_id, status, total, currency, created_at, updated_at, items) = row;
    let unreadable = |problem: String| OrderError::Unreadable { order_id, problem };
    Ok(Order {
        order_id,
        customer_id,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| unreadable(format!("unknown status {status}")))?,
        total: Money::parse(&total).map_err(|e| unreadable(e.to_string()))?,
        currency,
        items: serde_json::from_str(&items).map_err(|e| unreadable(e.to_string()))?,
        created_at,
        updated_at,
    })
}

/// Sets an order's total and `updated_at`; returns the new `updated_at`.
async fn update_total(
    conn: &mut PgConnection,
    order_id: i64,
    total: Money,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "UPDATE orders SET total = $2::numeric, updated_at = now() WHERE id = $1 RETURNING ",
        utc_text!("updated_at")
    ))
    .bind(order_id)
    .bind(total.to_string())
    .fetch_one(conn)
    .await
}

/// Inserts the event's outbox row (and deletes it again in [`OutboxMode::delete_after_insert`]).
async fn insert_outbox_event(
    conn: &mut PgConnection,
    event: &OutboxEvent,
    mode: OutboxMode,
) -> Result<(), sqlx::Error> {
    let id = event.id.to_string();
    sqlx::query(
        "INSERT INTO outbox_events (id, aggregatetype, aggregateid, type, payload) \
         VALUES ($1::uuid, $2, $3, $4, $5::jsonb)",
    )
    .bind(&id)
    .bind(event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.event_type.as_str())
    .bind(&event.payload)
    .execute(&mut *conn)
    .await?;
    if mode.delete_after_insert {
        sqlx::query("DELETE FROM outbox_events WHERE id = $1::uuid")
            .bind(&id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The lines as three parallel arrays, for `unnest($skus, $quantities, $unit_prices)`: one
/// multi-row INSERT instead of one statement per line.
fn item_columns(items: &[NewItem]) -> (Vec<String>, Vec<i32>, Vec<String>) {
    let skus = items.iter().map(|item| item.sku.clone()).collect();
    let quantities = items.iter().map(|item| item.quantity).collect();
    let unit_prices = items
        .iter()
        .map(|item| item.unit_price.to_string())
        .collect();
    (skus, quantities, unit_prices)
}

/// New lines as stored lines: `line_no` is the position, from 1 (as `WITH ORDINALITY` numbers them).
fn numbered(items: &[NewItem]) -> Vec<OrderItem> {
    items
        .iter()
        .zip(1..)
        .map(|(item, line_no)| OrderItem {
            line_no,
            sku: item.sku.clone(),
            quantity: item.quantity,
            unit_price: item.unit_price,
        })
        .collect()
}
