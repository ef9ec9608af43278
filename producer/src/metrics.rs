//! The producer's `/metrics` (with `--metrics-listen`, see [`db::metrics`]): every API request
//! of `producer serve`, and every committed operation of a workload run, by kind of operation
//! and outcome, and how long its transaction took.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `pgcdc_producer_operations_total` | counter | `kind` (create, read, update, delete; a workload run: create, update, cancel, delete), `outcome` (ok, rejected, unavailable, error) |
//! | `pgcdc_producer_transaction_seconds` | histogram | `kind` |
//!
//! A middleware around the routes ([`record_operation`]) does it, so the handlers stay as
//! they are; `/healthz` and `/metrics` are not operations and are not counted.

use std::time::Instant;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Times and counts one API request.
pub async fn record_operation(request: Request, next: Next) -> Response {
    let kind = operation_kind(request.method(), request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    if let (Some(kind), true) = (kind, db::metrics::enabled()) {
        let status = response.status();
        let outcome = if status.is_success() {
            "ok"
        } else if status.as_u16() == 503 {
            "unavailable"
        } else if status.is_client_error() {
            "rejected"
        } else {
            "error"
        };
        operation(kind, outcome, started.elapsed());
    }
    response
}

/// Counts one operation of `kind` with its `outcome`, and how long its transaction took.
pub fn operation(kind: &'static str, outcome: &'static str, took: std::time::Duration) {
    if !db::metrics::enabled() {
        return;
    }
    metrics::counter!("pgcdc_producer_operations_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("pgcdc_producer_transaction_seconds", "kind" => kind)
        .record(took.as_secs_f64());
}

/// `create`, `read`, `update` or `delete` for a request of the orders API.
pub fn operation_kind(method: &Method, path: &str) -> Option<&'static str> {
    if !path.starts_with("/orders") {
        return None;
    }
    match *method {
        Method::POST => Some("create"),
        Method::GET => Some("read"),
        Method::PATCH => Some("update"),
        Method::DELETE => Some("delete"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_the_api() {
        assert_eq!(operation_kind(&Method::POST, "/orders"), Some("create"));
        assert_eq!(operation_kind(&Method::PATCH, "/orders/7"), Some("update"));
        assert_eq!(operation_kind(&Method::GET, "/healthz"), None);
    }
}
