//! The CLI workload: which operations to run, generated from a seed.
//!
//! Pure: no database, no clock. A [`Workload`] is a random number generator seeded from
//! `--seed` plus a small model of the orders it has created so far, so that every update,
//! cancel or delete it plans refers to an order that exists and is in a status that allows it.
//! The same seed therefore gives the same operations, every run:
//!
//! ```text
//! --seed 42 --mix create=70,update=20,cancel=5,delete=5
//!   #0 create   customer 17, 3 lines
//!   #1 create   customer 80, 1 line
//!   #2 update   order #0 (the first order this run created): NEW -> PAID
//!   #3 delete   order #1
//!   ...
//! ```
//!
//! Orders are named by their creation ordinal in this run ([`OrderRef`]): the database assigns
//! the real ids, and the runner maps one to the other. When an operation has no eligible order
//! (an update before anything was created), the workload creates an order instead.
//!
//! With `--concurrency K`, worker `k` runs its own workload seeded from `(seed, k)` on its own
//! orders: each worker's sequence is deterministic, their interleaving in the database is not.
//!
//! What is deterministic for a seed (and `--concurrency`, `--mix`, `--customers`, `--items`):
//! each worker's operations, their kinds, customers, lines, quantities and prices, and the outbox
//! event ids. On a fresh database (`cargo run -p db -- reset --yes`) with one worker, the order
//! ids, and so the outbox rows, are identical too (only timestamps differ). On a database with
//! earlier orders, event ids are salted ([`salted_event_id`]) so a re-run never collides.

use std::collections::HashMap;
use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::domain::{NewItem, NewOrder, OrderStatus};
use crate::money::Money;

/// The kinds of operation `--mix` weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationKind {
    Create,
    Update,
    Cancel,
    Delete,
}

impl OperationKind {
    pub const ALL: [OperationKind; 4] = [
        OperationKind::Create,
        OperationKind::Update,
        OperationKind::Cancel,
        OperationKind::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Create => "create",
            OperationKind::Update => "update",
            OperationKind::Cancel => "cancel",
            OperationKind::Delete => "delete",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--mix create=70,update=20,cancel=5,delete=5`: relative weights (they need not sum to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub create: u32,
    pub update: u32,
    pub cancel: u32,
    pub delete: u32,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            create: 70,
            update: 20,
            cancel: 5,
            delete: 5,
        }
    }
}

/// Why a `--mix` value is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("`{0}` is not kind=weight (e.g. create=70)")]
    NotAPair(String),
    #[error("unknown operation `{0}`: use create, update, cancel or delete")]
    UnknownKind(String),
    #[error("weight `{0}` is not a whole number from 0 to 1000000")]
    BadWeight(String),
    #[error("`{0}` appears twice")]
    Duplicate(String),
    #[error("all weights are 0: at least one operation needs a weight")]
    AllZero,
}

impl Mix {
    /// Parses `create=70,update=20,...`; kinds left out get weight 0.
    pub fn parse(text: &str) -> Result<Mix, MixError> {
        let mut mix = Mix {
            create: 0,
            update: 0,
            cancel: 0,
            delete: 0,
        };
        let mut seen = Vec::new();
        for pair in text
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (kind, weight) = pair
                .split_once('=')
                .ok_or_else(|| MixError::NotAPair(pair.to_string()))?;
            let (kind, weight) = (kind.trim(), weight.trim());
            let weight: u32 = weight
                .parse()
                .ok()
                .filter(|w| *w <= 1_000_000)
                .ok_or_else(|| MixError::BadWeight(weight.to_string()))?;
            if seen.contains(&kind) {
                return Err(MixError::Duplicate(kind.to_string()));
            }
            seen.push(kind);
            match kind {
                "create" => mix.create = weight,
                "update" => mix.update = weight,
                "cancel" => mix.cancel = weight,
                "delete" => mix.delete = weight,
                other => return Err(MixError::UnknownKind(other.to_string())),
            }
        }
        if mix.total() == 0 {
            return Err(MixError::AllZero);
        }
        Ok(mix)
    }

    fn weight(&self, kind: OperationKind) -> u32 {
        match kind {
            OperationKind::Create => self.create,
            OperationKind::Update => self.update,
            OperationKind::Cancel => self.cancel,
            OperationKind::Delete => self.delete,
        }
    }

    fn total(&self) -> u32 {
        OperationKind::ALL
            .iter()
            .map(|kind| self.weight(*kind))
            .sum()
    }

    /// The kind whose weight range contains `ticket` (`0 <= ticket < total`).
    fn pick(&self, ticket: u32) -> OperationKind {
        let mut rest = ticket;
        for kind in OperationKind::ALL {
            let weight = self.weight(kind);
            if rest < weight {
                return kind;
            }
            rest -= weight;
        }
        OperationKind::Create
    }
}

impl std::str::FromStr for Mix {
    type Err = MixError;
    fn from_str(text: &str) -> Result<Mix, MixError> {
        Mix::parse(text)
    }
}

/// An order this run created, by creation ordinal (0 for the first). The runner maps it to the
/// database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderRef(pub usize);

/// What to do to the database; each one is one transaction with one outbox event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Create(NewOrder),
    /// Pay or ship (one step along NEW -> PAID -> SHIPPED).
    AdvanceStatus {
        order: OrderRef,
        to: OrderStatus,
    },
    ChangeQuantity {
        order: OrderRef,
        line_no: i32,
        quantity: i32,
    },
    Cancel {
        order: OrderRef,
    },
    Delete {
        order: OrderRef,
    },
}

impl Operation {
    /// The existing order this operation changes (`None` for a create).
    pub fn order(&self) -> Option<OrderRef> {
        match self {
            Operation::Create(_) => None,
            Operation::AdvanceStatus { order, .. }
            | Operation::ChangeQuantity { order, .. }
            | Operation::Cancel { order }
            | Operation::Delete { order } => Some(*order),
        }
    }

    pub fn kind(&self) -> OperationKind {
        match self {
            Operation::Create(_) => OperationKind::Create,
            Operation::AdvanceStatus { .. } | Operation::ChangeQuantity { .. } => {
                OperationKind::Update
            }
            Operation::Cancel { .. } => OperationKind::Cancel,
            Operation::Delete { .. } => OperationKind::Delete,
        }
    }
}

/// One planned operation and the id its outbox event will have (drawn from the same seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOperation {
    pub event_id: Uuid,
    pub operation: Operation,
}

/// `event_id` salted for a run on a database that already has orders.
///
/// Event ids come from the seed so that a run is reproducible, but a second run with the same
/// seed on the same database would reuse them (the outbox's primary key). The runner therefore
/// salts them with the orders sequence's position when it starts: 0 on a fresh database (the
/// ids are exactly the seed's), a new value after every run that created orders.
pub fn salted_event_id(event_id: Uuid, salt: u64) -> Uuid {
    if salt == 0 {
        return event_id;
    }
    let mut bytes = *event_id.as_bytes();
    for (byte, salt_byte) in bytes.iter_mut().zip(salt.to_be_bytes()) {
        *byte ^= salt_byte;
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The shape of the generated orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadShape {
    pub mix: Mix,
    /// Customer ids are drawn from `1..=customers`.
    pub customers: u32,
    /// Lines per order: `None` draws 1 to 5, `Some(n)` always `n` (the benchmark uses 3).
    pub items_per_order: Option<u8>,
}

/// How the workload remembers an order it created: its status and number of lines.
#[derive(Debug, Clone, Copy)]
struct ModelOrder {
    status: OrderStatus,
    lines: i32,
}

/// A seeded operation generator. Deterministic: the same seed and shape give the same sequence.
#[derive(Debug, Clone)]
pub struct Workload {
    rng: ChaCha8Rng,
    shape: WorkloadShape,
    created: usize,
    orders: HashMap<OrderRef, ModelOrder>,
    /// Live orders by status, each a [`RefSet`] so a uniform pick is O(1) and deterministic.
    by_status: [RefSet; 4],
}

impl Workload {
    /// The workload of worker `worker` of a run with `seed`.
    pub fn new(seed: u64, worker: u32, shape: WorkloadShape) -> Workload {
        // Each worker gets its own stream: the seed and the worker index, mixed into 32 bytes.
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..12].copy_from_slice(&worker.to_le_bytes());
        Workload {
            rng: ChaCha8Rng::from_seed(key),
            shape,
            created: 0,
            orders: HashMap::new(),
            by_status: Default::default(),
        }
    }

    /// How many orders this workload has planned to create so far.
    pub fn orders_created(&self) -> usize {
        self.created
    }

    /// Plans the next operation, assuming every earlier one was applied.
    pub fn next_operation(&mut self) -> PlannedOperation {
        let ticket = self.rng.random_range(0..self.shape.mix.total());
        let operation = match self.shape.mix.pick(ticket) {
            OperationKind::Create => None,
            OperationKind::Update => self.plan_update(),
            OperationKind::Cancel => self.plan_cancel(),
            OperationKind::Delete => self.plan_delete(),
        };
        let operation = operation.unwrap_or_else(|| self.plan_create());
        let event_id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        PlannedOperation {
            event_id,
            operation,
        }
    }

    /// Forgets an order: no later operation refers to it. For an order the database lost
    /// (a commit acknowledged just before a crash, with `synchronous_commit=off`).
    pub fn forget(&mut self, order: OrderRef) {
        if let Some(model) = self.orders.remove(&order) {
            self.by_status[slot(model.status)].remove(order);
        }
    }

    fn plan_create(&mut self) -> Operation {
        let customer_id = i64::from(self.rng.random_range(1..=self.shape.customers.max(1)));
        let lines = match self.shape.items_per_order {
            Some(n) => n.max(1),
            None => self.rng.random_range(1..=5),
        };
        let items = (0..lines)
            .map(|_| NewItem {
                sku: format!("SKU-{:04}", self.rng.random_range(1..=500)),
                quantity: self.rng.random_range(1..=5),
                unit_price: Money::from_cents(self.rng.random_range(99..=19_999)),
            })
            .collect();
        let order = OrderRef(self.created);
        self.created += 1;
        self.insert(
            order,
            ModelOrder {
                status: OrderStatus::New,
                lines: i32::from(lines),
            },
        );
        Operation::Create(NewOrder { customer_id, items })
    }

    /// Pay or ship a NEW or PAID order; a NEW order may instead change a line's quantity.
    fn plan_update(&mut self) -> Option<Operation> {
        let order = self.pick(&[OrderStatus::New, OrderStatus::Paid])?;
        let model = *self.orders.get(&order)?;
        if model.status == OrderStatus::New && self.rng.random_bool(0.5) {
            let line_no = self.rng.random_range(1..=model.lines);
            let quantity = self.rng.random_range(1..=9);
            return Some(Operation::ChangeQuantity {
                order,
                line_no,
                quantity,
            });
        }
        let to = model.status.next()?;
        self.set_status(order, to);
        Some(Operation::AdvanceStatus { order, to })
    }

    fn plan_cancel(&mut self) -> Option<Operation> {
        let order = self.pick(&[OrderStatus::New, OrderStatus::Paid])?;
        self.set_status(order, OrderStatus::Cancelled);
        Some(Operation::Cancel { order })
    }

    fn plan_delete(&mut self) -> Option<Operation> {
        let order = self.pick(&[
            OrderStatus::New,
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Cancelled,
        ])?;
        let model = self.orders.remove(&order)?;
        self.by_status[slot(model.status)].remove(order);
        Some(Operation::Delete { order })
    }

    /// A uniformly chosen live order whose status is one of `statuses`.
    fn pick(&mut self, statuses: &[OrderStatus]) -> Option<OrderRef> {
        let count: usize = statuses
            .iter()
            .map(|s| self.by_status[slot(*s)].len())
            .sum();
        if count == 0 {
            return None;
        }
        let mut index = self.rng.random_range(0..count);
        for status in statuses {
            let set = &self.by_status[slot(*status)];
            if index < set.len() {
                return set.get(index);
            }
            index -= set.len();
        }
        None
    }

    fn insert(&mut self, order: OrderRef, model: ModelOrder) {
        self.by_status[slot(model.status)].insert(order);
        self.orders.insert(order, model);
    }

    fn set_status(&mut self, order: OrderRef, to: OrderStatus) {
        if let Some(model) = self.orders.get_mut(&order) {
            self.by_status[slot(model.status)].remove(order);
            model.status = to;
            self.by_status[slot(to)].insert(order);
        }
    }
}

fn slot(status: OrderStatus) -> usize {
    match status {
        OrderStatus::New => 0,
        OrderStatus::Paid => 1,
        OrderStatus::Shipped => 2,
        OrderStatus::Cancelled => 3,
    }
}

/// A set of orders with O(1) insert, remove and pick-by-index (a vector plus positions).
/// Removal swaps the last element into the hole, which is deterministic.
#[derive(Debug, Clone, Default)]
struct RefSet {
    items: Vec<OrderRef>,
    positions: HashMap<OrderRef, usize>,
}

impl RefSet {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Option<OrderRef> {
        self.items.get(index).copied()
    }

    fn insert(&mut self, order: OrderRef) {
        self.positions.insert(order, self.items.len());
        self.items.push(order);
    }

    fn remove(&mut self, order: OrderRef) {
        let Some(position) = self.positions.remove(&order) else {
            return;
        };
        self.items.swap_remove(position);
        if let Some(moved) = self.items.get(position) {
            self.positions.insert(*moved, position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(mix: &str) -> WorkloadShape {
        WorkloadShape {
            mix: Mix::parse(mix).unwrap(),
            customers: 100,
            items_per_order: None,
        }
    }

    fn plan(seed: u64, worker: u32, mix: &str, n: usize) -> Vec<PlannedOperation> {
        let mut workload = Workload::new(seed, worker, shape(mix));
        (0..n).map(|_| workload.next_operation()).collect()
    }

    #[test]
    fn parses_a_mix() {
        assert_eq!(
            Mix::parse("create=70,update=20,cancel=5,delete=5").unwrap(),
            Mix::default()
        );
        assert_eq!(
            Mix::parse(" create = 1 , delete=2").unwrap(),
            Mix {
                create: 1,
                update: 0,
                cancel: 0,
                delete: 2
            }
        );
    }

    #[test]
    fn rejects_bad_mixes() {
        assert_eq!(
            Mix::parse("create"),
            Err(MixError::NotAPair("create".into()))
        );
        assert_eq!(
            Mix::parse("refund=3"),
            Err(MixError::UnknownKind("refund".into()))
        );
        assert_eq!(
            Mix::parse("create=-1"),
            Err(MixError::BadWeight("-1".into()))
        );
        assert_eq!(
            Mix::parse("create=1,create=2"),
            Err(MixError::Duplicate("create".into()))
        );
        assert_eq!(Mix::parse("create=0"), Err(MixError::AllZero));
        assert_eq!(Mix::parse(""), Err(MixError::AllZero));
    }

    #[test]
    fn the_same_seed_gives_the_same_operations() {
        let mix = "create=40,update=30,cancel=15,delete=15";
        assert_eq!(plan(42, 0, mix, 2_000), plan(42, 0, mix, 2_000));
        assert_ne!(plan(42, 0, mix, 50), plan(43, 0, mix, 50));
        assert_ne!(plan(42, 0, mix, 50), plan(42, 1, mix, 50));
    }

    #[test]
    fn every_operation_refers_to_a_live_order_in_an_allowed_status() {
        let mut statuses: Vec<Option<OrderStatus>> = Vec::new();
        let mut lines: Vec<i32> = Vec::new();
        for planned in plan(7, 0, "create=30,update=40,cancel=15,delete=15", 5_000) {
            match planned.operation {
                Operation::Create(order) => {
                    assert!((1..=5).contains(&order.items.len()));
                    assert!((1..=100).contains(&order.customer_id));
                    statuses.push(Some(OrderStatus::New));
                    lines.push(order.items.len() as i32);
                }
                Operation::AdvanceStatus { order, to } => {
                    let from = statuses[order.0].expect("live order");
                    assert!(from.can_become(to) && to != OrderStatus::Cancelled);
                    statuses[order.0] = Some(to);
                }
                Operation::ChangeQuantity {
                    order,
                    line_no,
                    quantity,
                } => {
                    assert_eq!(statuses[order.0], Some(OrderStatus::New));
                    assert!((1..=lines[order.0]).contains(&line_no) && quantity >= 1);
                }
                Operation::Cancel { order } => {
                    assert!(statuses[order.0].expect("live order").can_be_cancelled());
                    statuses[order.0] = Some(OrderStatus::Cancelled);
                }
                Operation::Delete { order } => {
                    assert!(statuses[order.0].is_some());
                    statuses[order.0] = None;
                }
            }
        }
    }

    #[test]
    fn salting_keeps_fresh_runs_reproducible_and_separates_later_runs() {
        let id = plan(1, 0, "create=1", 1)[0].event_id;
        assert_eq!(salted_event_id(id, 0), id);
        assert_ne!(salted_event_id(id, 300), id);
        assert_ne!(salted_event_id(id, 300), salted_event_id(id, 301));
        assert_eq!(salted_event_id(id, 300).get_version_num(), 4);
    }

    #[test]
    fn without_orders_everything_falls_back_to_create() {
        let first = plan(1, 0, "update=1,cancel=1,delete=1", 1);
        assert_eq!(first[0].operation.kind(), OperationKind::Create);
    }

    #[test]
    fn mix_weights_shape_the_sequence() {
        let ops = plan(3, 0, "create=70,update=20,cancel=5,delete=5", 10_000);
        let creates = ops
            .iter()
            .filter(|p| p.operation.kind() == OperationKind::Create)
            .count();
        assert!((6_800..7_600).contains(&creates), "{creates} creates");
        let fixed = WorkloadShape {
            items_per_order: Some(3),
            ..shape("create=1")
        };
        let mut workload = Workload::new(3, 0, fixed);
        for _ in 0..100 {
            match workload.next_operation().operation {
                Operation::Create(order) => assert_eq!(order.items.len(), 3),
                other => panic!("expected a create, got {other:?}"),
            }
        }
    }
}
