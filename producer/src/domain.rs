//! The order as the business sees it: its status lifecycle, its lines, and the rules a write
//! must follow before it reaches the database.
//!
//! Pure values, no I/O: both the CLI workload and the HTTP API build these, and
//! [`crate::orders`] writes them. The status lifecycle:
//!
//! ```text
//! NEW ──pay──> PAID ──ship──> SHIPPED
//!  │            │
//!  └──cancel────┴──> CANCELLED
//! ```

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// The currency every order of the playground uses (the column's default).
pub const CURRENCY: &str = "EUR";
/// An order has at least one line and at most this many.
pub const MAX_ITEMS: usize = 100;
/// The largest quantity a line may have.
pub const MAX_QUANTITY: i32 = 10_000;

/// Where an order is in its lifecycle (the `orders.status` CHECK constraint lists the same four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    New,
    Paid,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    /// The text stored in `orders.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::Paid => "PAID",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored text (`NEW`, `PAID`, `SHIPPED`, `CANCELLED`).
    pub fn parse(text: &str) -> Option<OrderStatus> {
        match text {
            "NEW" => Some(OrderStatus::New),
            "PAID" => Some(OrderStatus::Paid),
            "SHIPPED" => Some(OrderStatus::Shipped),
            "CANCELLED" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }

    /// The next step forward (pay, then ship), if there is one.
    pub fn next(self) -> Option<OrderStatus> {
        match self {
            OrderStatus::New => Some(OrderStatus::Paid),
            OrderStatus::Paid => Some(OrderStatus::Shipped),
            OrderStatus::Shipped | OrderStatus::Cancelled => None,
        }
    }

    /// Whether an order in this status may move to `to`: one step forward, or cancel before shipping.
    pub fn can_become(self, to: OrderStatus) -> bool {
        self.next() == Some(to) || (to == OrderStatus::Cancelled && self.can_be_cancelled())
    }

    /// Only orders not yet shipped (and not already cancelled) can be cancelled.
    pub fn can_be_cancelled(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::Paid)
    }

    /// Lines can change only before payment.
    pub fn items_can_change(self) -> bool {
        self == OrderStatus::New
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order before it is stored (line numbers are its position, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Money,
}

/// An order before it is stored: the database assigns its id and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub customer_id: i64,
    pub items: Vec<NewItem>,
}

/// A stored order line, as `order_items` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Money,
}

/// A stored order with its lines: what `GET /orders/{id}` returns and what every outbox
/// payload carries (see [`crate::outbox`]).
///
/// ```text
/// {"order_id":42,"customer_id":7,"status":"NEW","total":"12.30","currency":"EUR",
///  "items":[{"line_no":1,"sku":"SKU-0042","quantity":3,"unit_price":"4.10"}],
///  "created_at":"2026-11-23T15:40:00.123456Z","updated_at":"2026-11-23T15:40:00.123456Z"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub order_id: i64,
    pub customer_id: i64,
    pub status: OrderStatus,
    pub total: Money,
    pub currency: String,
    pub items: Vec<OrderItem>,
    /// RFC 3339 in UTC with microseconds, as PostgreSQL's `timestamptz` holds it.
    pub created_at: String,
    pub updated_at: String,
}

/// A rule an order write breaks, naming the field (`items[2].quantity`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The order total: the sum of `quantity * unit_price` over the lines, checked to fit
/// `numeric(12,2)`.
pub fn total_of(lines: impl IntoIterator<Item = (i32, Money)>) -> Result<Money, FieldError> {
    let too_large = || FieldError::new("items", "the order total is larger than 9999999999.99");
    let mut total = Money::ZERO;
    for (quantity, unit_price) in lines {
        let line = unit_price
            .checked_mul(i64::from(quantity))
            .ok_or_else(too_large)?;
        total = total.checked_add(line).ok_or_else(too_large)?;
    }
    if !total.fits_numeric_12_2() {
        return Err(too_large());
    }
    Ok(total)
}

/// Checks the lines of a new or replaced order; returns their total.
pub fn validate_items(items: &[NewItem]) -> Result<Money, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new("items", "an order needs at least one item"));
    }
    if items.len() > MAX_ITEMS {
        return Err(FieldError::new(
            "items",
            format!("at most {MAX_ITEMS} items per order"),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("items[{index}].{name}");
        if item.sku.trim().is_empty() || item.sku.len() > 64 {
            return Err(FieldError::new(field("sku"), "must be 1 to 64 characters"));
        }
        validate_quantity(item.quantity)
            .map_err(|problem| FieldError::new(field("quantity"), problem))?;
    }
    total_of(items.iter().map(|item| (item.quantity, item.unit_price)))
}

/// A quantity is a whole number from 1 to [`MAX_QUANTITY`].
pub fn validate_quantity(quantity: i32) -> Result<(), String> {
    if quantity < 1 {
        return Err(format!("must be at least 1 (got {quantity})"));
    }
    if quantity > MAX_QUANTITY {
        return Err(format!("must be at most {MAX_QUANTITY} (got {quantity})"));
    }
    Ok(())
}

/// Checks a new order (customer and lines); returns its total.
pub fn validate_new_order(order: &NewOrder) -> Result<Money, FieldError> {
    if order.customer_id < 1 {
        return Err(FieldError::new("customer_id", "must be a positive integer"));
    }
    validate_items(&order.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(quantity: i32, price: &str) -> NewItem {
        NewItem {
            sku: "SKU-1".into(),
            quantity,
            unit_price: Money::parse(price).unwrap(),
        }
    }

    #[test]
    fn lifecycle_moves_forward_or_cancels_before_shipping() {
        use OrderStatus::*;
        assert!(New.can_become(Paid));
        assert!(Paid.can_become(Shipped));
        assert!(New.can_become(Cancelled));
        assert!(Paid.can_become(Cancelled));
        assert!(!New.can_become(Shipped));
        assert!(!Shipped.can_become(Cancelled));
        assert!(!Paid.can_become(New));
        assert!(!Cancelled.can_become(Paid));
        assert!(!New.can_become(New));
        for status in [New, Paid, Shipped, Cancelled] {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn total_is_the_sum_of_the_lines() {
        let order = NewOrder {
            customer_id: 7,
            items: vec![item(3, "0.10"), item(1, "12.00")],
        };
        assert_eq!(validate_new_order(&order).unwrap().to_string(), "12.30");
    }

    #[test]
    fn bad_orders_name_the_field() {
        let no_customer = NewOrder {
            customer_id: 0,
            items: vec![item(1, "1")],
        };
        assert_eq!(
            validate_new_order(&no_customer).unwrap_err().field,
            "customer_id"
        );
        let negative = NewOrder {
            customer_id: 1,
            items: vec![item(1, "1"), item(-2, "1")],
        };
        assert_eq!(
            validate_new_order(&negative).unwrap_err().field,
            "items[1].quantity"
        );
        let empty = NewOrder {
            customer_id: 1,
            items: vec![],
        };
        assert_eq!(validate_new_order(&empty).unwrap_err().field, "items");
        let huge = NewOrder {
            customer_id: 1,
            items: vec![item(10_000, "9999999999.99")],
        };
        assert_eq!(validate_new_order(&huge).unwrap_err().field, "items");
    }
}
