//! HTTP mode (`producer serve`): the same transactional writes behind a small REST API.
//!
//! ```text
//! POST   /orders        {"customer_id":7,"items":[{"sku":"SKU-1","quantity":2,"unit_price":"4.10"}]}
//!                       -> 201 order (Location: /orders/42)           + outbox OrderCreated
//! GET    /orders/{id}   -> 200 order
//! PATCH  /orders/{id}   {"status":"PAID"} -> 200 order                + OrderStatusChanged / OrderCancelled
//!                       {"items":[...]}   -> 200 order                + OrderUpdated
//! DELETE /orders/{id}   -> 204                                        + OrderDeleted
//! GET    /healthz       -> 200 {"status":"ok"} (503 when the database does not answer within --db-wait)
//!
//! errors: {"error":"invalid_field","field":"items[0].quantity","problem":"must be at least 1 (got -2)"}
//!   400 malformed JSON or id     404 unknown order     409 illegal status change, items of a
//!   paid order     422 well-formed JSON with a wrong value     500 database trouble
//!   503 the database is away (restarting, crashed): {"error":"database_unavailable",...}, with
//!       Retry-After; or the COMMIT got no answer: {"error":"commit_in_doubt","order_id":42,...}
//!       (GET the order once the database is back to see whether it was saved)
//! ```
//!
//! While PostgreSQL is away every request answers 503 within a few seconds (it does not hang),
//! and once it is back the pool opens new connections by itself: nothing to restart.
//!
//! Every write is one transaction with its outbox row ([`crate::orders`]); when a request is
//! rejected nothing is written.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{FieldError, OrderStatus};
use crate::orders::{self, OrderError, OutboxMode};
use crate::requests::{self, OrderPatch};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub outbox_mode: OutboxMode,
    /// How long a request waits for a database connection before it answers 503 (`--db-wait`).
    pub db_wait: Duration,
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/orders", axum::routing::post(create_order))
        .route(
            "/orders/{id}",
            get(get_order).patch(patch_order).delete(delete_order),
        )
        .route_layer(axum::middleware::from_fn(crate::metrics::record_operation))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until the process is stopped (Ctrl-C ends it cleanly).
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// A rejected request: status code, a short machine-readable kind, the field and the problem.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    field: Option<String>,
    problem: String,
    /// The order a COMMIT in doubt was for.
    order_id: Option<i64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        field: Option<String>,
        problem: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            field,
            problem: problem.into(),
            order_id: None,
        }
    }

    /// 503: the database does not answer (yet).
    fn unavailable(problem: impl std::fmt::Display) -> ApiError {
        tracing::warn!(%problem, "database unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            None,
            format!("the database is not available ({problem}); try again in a moment"),
        )
    }

    fn malformed_id(error: FieldError) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            Some(error.field),
            error.problem,
        )
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(error.field),
            error.problem,
        )
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> ApiError {
        let problem = error.to_string();
        match error {
            OrderError::NotFound(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                Some("id".into()),
                problem,
            ),
            OrderError::NoSuchLine { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                Some("line_no".into()),
                problem,
            ),
            OrderError::IllegalTransition { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "illegal_status_change",
                Some("status".into()),
                problem,
            ),
            OrderError::ItemsLocked { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "items_locked",
                Some("items".into()),
                problem,
            ),
            OrderError::Invalid(field_error) => field_error.into(),
            OrderError::CommitInDoubt { ref committed, .. } => {
                tracing::warn!(%problem, "commit in doubt");
                let order_id = committed.order.order_id;
                ApiError {
                    order_id: Some(order_id),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "commit_in_doubt",
                        None,
                        format!(
                            "the database connection failed during COMMIT: the change may or may not be saved; \
                             GET /orders/{order_id} once the database is back"
                        ),
                    )
                }
            }
            ref error @ OrderError::Database(ref source) if error.is_transient() => {
                ApiError::unavailable(source)
            }
            OrderError::Unreadable { .. } | OrderError::Database(_) => {
                tracing::error!(%problem, "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    None,
                    "the database failed; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.kind, "field": self.field, "problem": self.problem});
        if let Some(order_id) = self.order_id {
            body["order_id"] = json!(order_id);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            return (self.status, [(header::RETRY_AFTER, "1")], Json(body)).into_response();
        }
        (self.status, Json(body)).into_response()
    }
}

/// The body as JSON, or 400 naming where it stops being JSON.
fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            Some("body".into()),
            format!("not valid JSON: {e}"),
        )
    })
}

async fn connection(
    state: &AppState,
) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, ApiError> {
    match tokio::time::timeout(state.db_wait, state.pool.acquire()).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(OrderError::Database(error).into()),
        Err(_) => Err(ApiError::unavailable(format!(
            "no connection within {:?}",
            state.db_wait
        ))),
    }
}

async fn create_order(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let order = requests::parse_new_order(&parse_json(&body)?)?;
    let mut conn = connection(&state).await?;
    let committed =
        orders::create_order(&mut conn, Uuid::new_v4(), &order, state.outbox_mode).await?;
    let location = format!("/orders/{}", committed.order.order_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(committed.order),
    )
        .into_response())
}

async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = requests::parse_order_id(&id).map_err(ApiError::malformed_id)?;
    let mut conn = connection(&state).await?;
    let order = orders::fetch_order(&mut conn, id)
        .await?
        .ok_or(OrderError::NotFound(id))?;
    Ok(Json(order).into_response())
}

async fn patch_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = requests::parse_order_id(&id).map_err(ApiError::malformed_id)?;
    let patch = requests::parse_patch(&parse_json(&body)?)?;
    let mut conn = connection(&state).await?;
    let event_id = Uuid::new_v4();
    let committed = match patch {
        OrderPatch::Status(OrderStatus::Cancelled) => {
            orders::cancel_order(&mut conn, event_id, id, state.outbox_mode).await?
        }
        OrderPatch::Status(to) => {
            orders::change_status(&mut conn, event_id, id, to, state.outbox_mode).await?
        }
        OrderPatch::Items(items) => {
            orders::replace_items(&mut conn, event_id, id, &items, state.outbox_mode).await?
        }
    };
    Ok(Json(committed.order).into_response())
}

async fn delete_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = requests::parse_order_id(&id).map_err(ApiError::malformed_id)?;
    let mut conn = connection(&state).await?;
    orders::delete_order(&mut conn, Uuid::new_v4(), id, state.outbox_mode).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn healthz(State(state): State<AppState>) -> Response {
    let answer = tokio::time::timeout(state.db_wait, async {
        sqlx::query("SELECT 1")
            .execute(&state.pool)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {:?}", state.db_wait)));
    match answer {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"status": "unavailable", "problem": problem})),
        )
            .into_response(),
    }
}

/// `producer serve` settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub database_url: String,
    pub listen: SocketAddr,
    pub outbox_mode: OutboxMode,
    pub pool_size: u32,
    pub db_wait: Duration,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Connects, checks the schema, binds `config.listen` and serves until Ctrl-C.
pub async fn run_server(config: ServeConfig) -> Result<(), ServeError> {
    let pool = db::connect(&config.database_url, config.pool_size).await?;
    db::require_schema(&pool, &config.database_url).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(%addr, database = %db::describe(&config.database_url), "serving the orders API");
    serve(
        listener,
        AppState {
            pool,
            outbox_mode: config.outbox_mode,
            db_wait: config.db_wait,
        },
    )
    .await
    .map_err(ServeError::Serve)
}
