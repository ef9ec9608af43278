//! The HTTP API's request bodies: JSON in, checked domain values out (or the field that is wrong).
//!
//! Pure: [`crate::http`] reads the body, this module decides what it means. Parsing goes
//! through `serde_json::Value` by hand instead of `#[derive(Deserialize)]` so every error names
//! the field and the problem, the way a learner (or a client) can act on:
//!
//! ```text
//! POST /orders   {"customer_id": 7, "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "4.10"}]}
//! PATCH /orders/42  {"status": "PAID"}      or   {"items": [{"sku": ..., "quantity": ..., "unit_price": ...}]}
//!
//! {"customer_id": 7, "items": [{"sku": "SKU-1", "quantity": -2, "unit_price": "4.10"}]}
//!   -> items[0].quantity: must be at least 1 (got -2)
//! ```
//!
//! `unit_price` may be a string (`"4.10"`, exact) or a JSON number (`4.1`), at most 2 decimals.

use serde_json::{Map, Value};

use crate::domain::{self, FieldError, NewItem, NewOrder, OrderStatus};
use crate::money::Money;

/// What `PATCH /orders/{id}` asks for: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderPatch {
    Status(OrderStatus),
    Items(Vec<NewItem>),
}

/// The body of `POST /orders`.
pub fn parse_new_order(body: &Value) -> Result<NewOrder, FieldError> {
    let object = as_object(body, &["customer_id", "items"])?;
    let customer_id = match object.get("customer_id") {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| FieldError::new("customer_id", "must be a positive integer"))?,
        Some(_) => return Err(FieldError::new("customer_id", "must be a positive integer")),
        None => return Err(FieldError::new("customer_id", "is required")),
    };
    let items = parse_items(object.get("items"))?;
    let order = NewOrder { customer_id, items };
    domain::validate_new_order(&order)?;
    Ok(order)
}

/// The body of `PATCH /orders/{id}`.
pub fn parse_patch(body: &Value) -> Result<OrderPatch, FieldError> {
    let object = as_object(body, &["status", "items"])?;
    match (object.get("status"), object.get("items")) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "body",
            "give either status or items, not both",
        )),
        (None, None) => Err(FieldError::new(
            "body",
            "give status (e.g. \"PAID\") or items",
        )),
        (Some(status), None) => {
            let status = status
                .as_str()
                .and_then(OrderStatus::parse)
                .ok_or_else(|| {
                    FieldError::new("status", "must be one of NEW, PAID, SHIPPED, CANCELLED")
                })?;
            Ok(OrderPatch::Status(status))
        }
        (None, Some(items)) => {
            let items = parse_items(Some(items))?;
            domain::validate_items(&items)?;
            Ok(OrderPatch::Items(items))
        }
    }
}

/// `/orders/{id}`: the id must be a positive integer.
pub fn parse_order_id(text: &str) -> Result<i64, FieldError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            FieldError::new(
                "id",
                format!("`{text}` is not an order id (a positive integer)"),
            )
        })
}

fn as_object<'a>(body: &'a Value, known: &[&str]) -> Result<&'a Map<String, Value>, FieldError> {
    let object = body
        .as_object()
        .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(FieldError::new(
            unknown.as_str(),
            format!("unknown field (expected {})", known.join(", ")),
        ));
    }
    Ok(object)
}

fn parse_items(value: Option<&Value>) -> Result<Vec<NewItem>, FieldError> {
    let items = match value {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FieldError::new(
                "items",
                "must be an array of {sku, quantity, unit_price}",
            ))
        }
        None => return Err(FieldError::new("items", "is required")),
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_item(index, item))
        .collect()
}

fn parse_item(index: usize, value: &Value) -> Result<NewItem, FieldError> {
    let field = |name: &str| format!("items[{index}].{name}");
    let object = value.as_object().ok_or_else(|| {
        FieldError::new(
            format!("items[{index}]"),
            "must be an object {sku, quantity, unit_price}",
        )
    })?;
    if let Some(unknown) = object
        .keys()
        .find(|key| !["sku", "quantity", "unit_price"].contains(&key.as_str()))
    {
        return Err(FieldError::new(
            field(unknown),
            "unknown field (expected sku, quantity, unit_price)",
        ));
    }
    let sku = match object.get("sku") {
        Some(Value::String(sku)) => sku.clone(),
        Some(_) => return Err(FieldError::new(field("sku"), "must be a string")),
        None => return Err(FieldError::new(field("sku"), "is required")),
    };
    let quantity = match object.get("quantity") {
        Some(Value::Number(n)) => {
            let n = n
                .as_i64()
                .ok_or_else(|| FieldError::new(field("quantity"), "must be a whole number"))?;
            let n = i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX });
            domain::validate_quantity(n)
                .map_err(|problem| FieldError::new(field("quantity"), problem))?;
            n
        }
        Some(_) => return Err(FieldError::new(field("quantity"), "must be a whole number")),
        None => return Err(FieldError::new(field("quantity"), "is required")),
    };
    let price_text = match object.get("unit_price") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(FieldError::new(
                field("unit_price"),
                "must be a decimal string like \"4.10\"",
            ))
        }
        None => return Err(FieldError::new(field("unit_price"), "is required")),
    };
    let unit_price = Money::parse(&price_text)
        .map_err(|e| FieldError::new(field("unit_price"), e.to_string()))?;
    Ok(NewItem {
        sku,
        quantity,
        unit_price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_new_order() {
        let body = json!({"customer_id": 7, "items": [
            {"sku": "SKU-1", "quantity": 2, "unit_price": "4.10"},
            {"sku": "SKU-2", "quantity": 1, "unit_price": 0.5}]});
        let order = parse_new_order(&body).unwrap();
        assert_eq!(order.customer_id, 7);
        assert_eq!(order.items[1].unit_price, Money::from_cents(50));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!([1]), "body"),
            (json!({"items": []}), "customer_id"),
            (json!({"customer_id": "7", "items": []}), "customer_id"),
            (json!({"customer_id": 7}), "items"),
            (json!({"customer_id": 7, "items": []}), "items"),
            (
                json!({"customer_id": 7, "items": [{"sku": "A", "quantity": -1, "unit_price": "1"}]}),
                "items[0].quantity",
            ),
            (
                json!({"customer_id": 7, "items": [{"sku": "A", "quantity": 1.5, "unit_price": "1"}]}),
                "items[0].quantity",
            ),
            (
                json!({"customer_id": 7, "items": [{"sku": "A", "quantity": 1, "unit_price": "1.001"}]}),
                "items[0].unit_price",
            ),
            (
                json!({"customer_id": 7, "items": [{"sku": "A", "quantity": 1, "unit_price": -3}]}),
                "items[0].unit_price",
            ),
            (
                json!({"customer_id": 7, "items": [{"quantity": 1, "unit_price": "1"}]}),
                "items[0].sku",
            ),
            (
                json!({"customer_id": 7, "items": [], "coupon": "X"}),
                "coupon",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(parse_new_order(&body).unwrap_err().field, field, "{body}");
        }
    }

    #[test]
    fn parses_patches() {
        assert_eq!(
            parse_patch(&json!({"status": "PAID"})),
            Ok(OrderPatch::Status(OrderStatus::Paid))
        );
        assert_eq!(
            parse_patch(&json!({"status": "LOST"})).unwrap_err().field,
            "status"
        );
        assert_eq!(parse_patch(&json!({})).unwrap_err().field, "body");
        let both = json!({"status": "PAID", "items": []});
        assert_eq!(parse_patch(&both).unwrap_err().field, "body");
        let items = json!({"items": [{"sku": "A", "quantity": 3, "unit_price": "2"}]});
        assert!(matches!(parse_patch(&items), Ok(OrderPatch::Items(items)) if items.len() == 1));
    }

    #[test]
    fn order_ids_are_positive_integers() {
        assert_eq!(parse_order_id("42"), Ok(42));
        assert_eq!(parse_order_id("0").unwrap_err().field, "id");
        assert_eq!(parse_order_id("abc").unwrap_err().field, "id");
    }
}
