//! The HTTP API against the real PostgreSQL: valid and invalid requests, and that a rejected
//! request writes nothing. The server runs in-process on 127.0.0.1:0; the client is a few lines
//! of HTTP/1.1 over a TCP socket, so the test sees exactly what goes over the wire.

mod support;

use producer::http::{router, AppState};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{count, inconsistent_orders};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Api {
    addr: std::net::SocketAddr,
}

struct Reply {
    status: u16,
    head: String,
    body: Value,
}

impl Api {
    async fn start(pool: PgPool) -> Api {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(AppState {
            pool,
            outbox_mode: Default::default(),
            db_wait: std::time::Duration::from_secs(3),
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Api { addr }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap()
        };
        Reply {
            status,
            head: head.to_string(),
            body,
        }
    }

    async fn json(&self, method: &str, path: &str, body: Value) -> Reply {
        self.send(method, path, Some(&body.to_string())).await
    }
}

fn order_body() -> Value {
    json!({"customer_id": 7, "items": [
        {"sku": "SKU-1", "quantity": 2, "unit_price": "4.10"},
        {"sku": "SKU-2", "quantity": 1, "unit_price": 0.5}]})
}

async fn events(pool: &PgPool) -> i64 {
    count(pool, "SELECT count(*) FROM outbox_events").await
}

#[tokio::test]
async fn an_order_through_its_whole_life() {
    let (_url, pool) = db::testing::fresh_database("producer_http_life")
        .await
        .unwrap();
    let api = Api::start(pool.clone()).await;
    assert_eq!(api.send("GET", "/healthz", None).await.status, 200);

    let created = api.json("POST", "/orders", order_body()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["order_id"].as_i64().unwrap();
    assert!(created
        .head
        .to_ascii_lowercase()
        .contains(&format!("location: /orders/{id}")));
    assert_eq!(created.body["total"], "8.70");
    assert_eq!(created.body["status"], "NEW");

    let fetched = api.send("GET", &format!("/orders/{id}"), None).await;
    assert_eq!((fetched.status, &fetched.body), (200, &created.body));

    let items = json!({"items": [{"sku": "SKU-9", "quantity": 3, "unit_price": "1.00"}]});
    let updated = api.json("PATCH", &format!("/orders/{id}"), items).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["total"], "3.00");
    assert_eq!(updated.body["items"].as_array().unwrap().len(), 1);

    let paid = api
        .json("PATCH", &format!("/orders/{id}"), json!({"status": "PAID"}))
        .await;
    assert_eq!(
        (paid.status, paid.body["status"].as_str()),
        (200, Some("PAID"))
    );
    let cancelled = api
        .json(
            "PATCH",
            &format!("/orders/{id}"),
            json!({"status": "CANCELLED"}),
        )
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].as_str()),
        (200, Some("CANCELLED"))
    );

    assert_eq!(
        api.send("DELETE", &format!("/orders/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.send("GET", &format!("/orders/{id}"), None).await.status,
        404
    );

    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT type FROM outbox_events ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "OrderCreated",
            "OrderUpdated",
            "OrderStatusChanged",
            "OrderCancelled",
            "OrderDeleted"
        ]
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM orders").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM order_items").await, 0);
}

#[tokio::test]
async fn bad_requests_get_a_clear_error_and_write_nothing() {
    let (_url, pool) = db::testing::fresh_database("producer_http_errors")
        .await
        .unwrap();
    let api = Api::start(pool.clone()).await;
    let id = api.json("POST", "/orders", order_body()).await.body["order_id"]
        .as_i64()
        .unwrap();
    let path = format!("/orders/{id}");

    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("POST", "/orders".into(), Some("{\"customer_id\": 7, \"items\": [".into()), 400, "body"),
        ("POST", "/orders".into(), Some("".into()), 400, "body"),
        (
            "POST",
            "/orders".into(),
            Some(json!({"customer_id": 7, "items": [{"sku": "A", "quantity": -3, "unit_price": "1.00"}]}).to_string()),
            422,
            "items[0].quantity",
        ),
        (
            "POST",
            "/orders".into(),
            Some(json!({"customer_id": 7, "items": [{"sku": "A", "quantity": 1, "unit_price": "1.005"}]}).to_string()),
            422,
            "items[0].unit_price",
        ),
        ("POST", "/orders".into(), Some(json!({"customer_id": 7, "items": []}).to_string()), 422, "items"),
        ("POST", "/orders".into(), Some(json!({"items": []}).to_string()), 422, "customer_id"),
        ("GET", "/orders/999999".into(), None, 404, "id"),
        ("GET", "/orders/abc".into(), None, 400, "id"),
        ("DELETE", "/orders/999999".into(), None, 404, "id"),
        ("PATCH", "/orders/999999".into(), Some(json!({"status": "PAID"}).to_string()), 404, "id"),
        ("PATCH", path.clone(), Some(json!({"status": "SHIPPED"}).to_string()), 409, "status"),
        ("PATCH", path.clone(), Some(json!({"status": "NEW"}).to_string()), 409, "status"),
        ("PATCH", path.clone(), Some(json!({"status": "LOST"}).to_string()), 422, "status"),
        ("PATCH", path.clone(), Some(json!({}).to_string()), 422, "body"),
        ("PATCH", path.clone(), Some("not json".into()), 400, "body"),
    ];
    for (method, path, body, status, field) in cases {
        let reply = api.send(method, &path, body.as_deref()).await;
        assert_eq!(
            reply.status, status,
            "{method} {path} {body:?}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["field"], field,
            "{method} {path} {body:?}: {}",
            reply.body
        );
        assert!(
            reply.body["problem"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
            "{}",
            reply.body
        );
    }
    // Only the one good POST wrote anything.
    assert_eq!(events(&pool).await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM orders").await, 1);

    // Items of a paid order are locked; a shipped order cannot be cancelled.
    assert_eq!(
        api.json("PATCH", &path, json!({"status": "PAID"}))
            .await
            .status,
        200
    );
    let items = json!({"items": [{"sku": "A", "quantity": 1, "unit_price": "1"}]});
    let locked = api.json("PATCH", &path, items).await;
    assert_eq!(
        (locked.status, locked.body["field"].as_str()),
        (409, Some("items"))
    );
    assert_eq!(
        api.json("PATCH", &path, json!({"status": "SHIPPED"}))
            .await
            .status,
        200
    );
    let late = api
        .json("PATCH", &path, json!({"status": "CANCELLED"}))
        .await;
    assert_eq!(late.status, 409, "{}", late.body);
    assert_eq!(events(&pool).await, 3);
    assert_eq!(inconsistent_orders(&pool).await, 0);
}
