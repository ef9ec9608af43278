//! The processor's input, typed: row changes of `public.orders` and `public.order_items`, and
//! the END records of the transaction topic, decoded from the JSON cdc-reader writes.
//!
//! ```text
//! dbserver1.public.orders       {"payload":{"before":null,"after":{"id":42,"customer_id":7,
//!                                 "status":"NEW","total":"BM4=","currency":"EUR",..},
//!                                 "source":{"txId":771,"lsn":22910504,"ts_ms":1732370000000,..},
//!                                 "op":"c","transaction":{"id":"771:22910504",..}}}
//! dbserver1.public.order_items  the same envelope around {"order_id":42,"line_no":1,"sku":"A-1",
//!                                 "quantity":2,"unit_price":"AfQ="}
//! dbserver1.transaction         {"status":"END","id":"771:22911032","event_count":4,
//!                                 "data_collections":[{"data_collection":"public.orders","event_count":1},
//!                                                     {"data_collection":"public.order_items","event_count":3}],
//!                                 "ts_ms":1732370000000}
//! ```
//!
//! Debezium's transaction ids are `<xid>:<LSN of the message>`, different for BEGIN, each event
//! and END of one transaction, so the join groups by the xid (the part before `:`). The number
//! after the `:` of the END id is the LSN of the COMMIT: per order, commits only grow, which is
//! what makes it the event's source position. Records are accepted with a schema
//! (`{"schema":..,"payload":..}`) or without (`--no-schemas`). Decimals (`total`, `unit_price`)
//! may be a Kafka Connect `Decimal` (base64 at the column's scale 2), a decimal string or a
//! double ([`crate::debezium`] explains the modes); the schema itself is skipped, unread.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::debezium::{decode_connect_decimal, DecodeError};
use crate::event::OrderId;
use crate::money::{Cents, TOTAL_SCALE};

/// A PostgreSQL transaction id (`source.txId`, the xid of `<xid>:<lsn>`).
pub type Xid = i64;

/// The `orders` columns an event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: i64,
    pub status: String,
    #[serde(with = "cents_text")]
    pub total: Cents,
    pub currency: String,
}

/// The `order_items` columns an event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub order_id: OrderId,
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    #[serde(with = "cents_text")]
    pub unit_price: Cents,
}

/// Debezium's `op`, for the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowOp {
    Insert,
    Update,
    Delete,
    /// A snapshot read (`r`): it carries no transaction.
    Read,
}

/// What one row change did. `after` is `None` for a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowChange {
    Order {
        id: OrderId,
        op: RowOp,
        after: Option<Order>,
    },
    Item {
        order_id: OrderId,
        line_no: i32,
        op: RowOp,
        after: Option<Item>,
    },
}

impl RowChange {
    /// The order this row belongs to: the key of the join.
    pub fn order_id(&self) -> OrderId {
        match self {
            RowChange::Order { id, .. } => *id,
            RowChange::Item { order_id, .. } => *order_id,
        }
    }

    /// Whether this is an `orders` row (else an `order_items` row).
    pub fn is_order(&self) -> bool {
        matches!(self, RowChange::Order { .. })
    }
}

/// One decoded change event of either table, with where it sits in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceChange {
    /// The transaction it belongs to; `None` without a `transaction` block (snapshot reads,
    /// or a reader run without `--provide-transaction-metadata`).
    pub xid: Option<Xid>,
    /// `source.lsn`: the WAL position of this change (per row, it only grows).
    pub lsn: i64,
    /// `source.ts_ms`: the commit time.
    pub ts_ms: i64,
    pub row: RowChange,
}

/// An END record: the transaction `xid` committed at `commit_lsn` with this many changes of
/// each joined table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionEnd {
    pub xid: Xid,
    pub commit_lsn: i64,
    pub ts_ms: i64,
    pub order_rows: u64,
    pub item_rows: u64,
}

/// The data collections (Debezium's name for captured tables) that are joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedTables {
    pub orders: String,
    pub items: String,
}

impl Default for JoinedTables {
    fn default() -> Self {
        JoinedTables {
            orders: "public.orders".into(),
            items: "public.order_items".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(f64),
}

#[derive(Deserialize)]
struct SourceBlock {
    lsn: Option<i64>,
    ts_ms: Option<i64>,
}

#[derive(Deserialize)]
struct TransactionBlock {
    id: String,
}

#[derive(Deserialize)]
struct Payload<Row> {
    before: Option<Row>,
    after: Option<Row>,
    source: Option<SourceBlock>,
    op: Option<String>,
    transaction: Option<TransactionBlock>,
}

/// Both shapes at once: `{"schema":..,"payload":{..}}` and the payload alone.
#[derive(Deserialize)]
struct Envelope<Row> {
    #[allow(dead_code)]
    schema: Option<IgnoredAny>,
    payload: Option<Payload<Row>>,
    before: Option<Row>,
    after: Option<Row>,
    source: Option<SourceBlock>,
    op: Option<String>,
    transaction: Option<TransactionBlock>,
}

impl<Row> Envelope<Row> {
    fn into_payload(self) -> Option<Payload<Row>> {
        if self.payload.is_some() {
            return self.payload;
        }
        // No op and no payload: {"schema":..,"payload":null}, a tombstone with a schema.
        self.op.as_ref()?;
        Some(Payload {
            before: self.before,
            after: self.after,
            source: self.source,
            op: self.op,
            transaction: self.transaction,
        })
    }
}

#[derive(Deserialize)]
struct OrderColumns {
    id: Option<i64>,
    customer_id: Option<i64>,
    status: Option<String>,
    total: Option<Amount>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct ItemColumns {
    order_id: Option<i64>,
    line_no: Option<i32>,
    sku: Option<String>,
    quantity: Option<i32>,
    unit_price: Option<Amount>,
}

fn row_op(code: &str) -> Result<RowOp, DecodeError> {
    match code {
        "c" => Ok(RowOp::Insert),
        "u" => Ok(RowOp::Update),
        "d" => Ok(RowOp::Delete),
        "r" => Ok(RowOp::Read),
        other => Err(DecodeError::UnknownOp(other.to_string())),
    }
}

/// `"771:22910504"` -> 771.
pub fn xid_of(transaction_id: &str) -> Result<Xid, DecodeError> {
    transaction_id
        .split(':')
        .next()
        .and_then(|xid| xid.parse().ok())
        .ok_or_else(|| {
            DecodeError::Invalid(format!(
                "transaction id `{transaction_id}` is not `<xid>:<lsn>`"
            ))
        })
}

/// `"771:22911032"` -> 22911032.
fn lsn_of(transaction_id: &str) -> Result<i64, DecodeError> {
    transaction_id
        .split_once(':')
        .and_then(|(_, lsn)| lsn.parse().ok())
        .ok_or_else(|| {
            DecodeError::Invalid(format!(
                "transaction id `{transaction_id}` is not `<xid>:<lsn>`"
            ))
        })
}

fn amount(field: &'static str, raw: Option<Amount>) -> Result<Cents, DecodeError> {
    let money = |source| DecodeError::Money { field, source };
    match raw.ok_or(DecodeError::Missing(field))? {
        Amount::Number(n) => Cents::from_f64(n).map_err(money),
        Amount::Text(text) if text.contains('.') => Cents::parse(&text).map_err(money),
        Amount::Text(text) => decode_connect_decimal(&text, TOTAL_SCALE)
            .or_else(|_| Cents::parse(&text).map_err(money)),
    }
}

fn position<Row>(payload: &Payload<Row>) -> Result<(Option<Xid>, i64, i64), DecodeError> {
    let source = payload
        .source
        .as_ref()
        .ok_or(DecodeError::Missing("source"))?;
    let lsn = source.lsn.ok_or(DecodeError::Missing("source.lsn"))?;
    let ts_ms = source.ts_ms.ok_or(DecodeError::Missing("source.ts_ms"))?;
    let xid = match &payload.transaction {
        Some(block) => Some(xid_of(&block.id)?),
        None => None,
    };
    Ok((xid, lsn, ts_ms))
}

fn parse<Row: for<'de> Deserialize<'de>>(
    value: Option<&[u8]>,
) -> Result<Option<Payload<Row>>, DecodeError> {
    let Some(bytes) = value.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let envelope: Option<Envelope<Row>> = serde_json::from_slice(bytes)?;
    Ok(envelope.and_then(Envelope::into_payload))
}

/// Decodes a record of the orders topic; `Ok(None)` for a tombstone.
pub fn decode_order_change(value: Option<&[u8]>) -> Result<Option<SourceChange>, DecodeError> {
    let Some(payload) = parse::<OrderColumns>(value)? else {
        return Ok(None);
    };
    let (xid, lsn, ts_ms) = position(&payload)?;
    let op = row_op(payload.op.as_deref().ok_or(DecodeError::Missing("op"))?)?;
    let row = if op == RowOp::Delete {
        let before = payload.before.ok_or(DecodeError::Missing("before"))?;
        RowChange::Order {
            id: before.id.ok_or(DecodeError::Missing("before.id"))?,
            op,
            after: None,
        }
    } else {
        let after = payload.after.ok_or(DecodeError::Missing("after"))?;
        let id = after.id.ok_or(DecodeError::Missing("after.id"))?;
        let order = Order {
            id,
            customer_id: after
                .customer_id
                .ok_or(DecodeError::Missing("after.customer_id"))?,
            status: after.status.ok_or(DecodeError::Missing("after.status"))?,
            total: amount("total", after.total)?,
            currency: after.currency.unwrap_or_default(),
        };
        RowChange::Order {
            id,
            op,
            after: Some(order),
        }
    };
    Ok(Some(SourceChange {
        xid,
        lsn,
        ts_ms,
        row,
    }))
}

/// Decodes a record of the order items topic; `Ok(None)` for a tombstone.
pub fn decode_item_change(value: Option<&[u8]>) -> Result<Option<SourceChange>, DecodeError> {
    let Some(payload) = parse::<ItemColumns>(value)? else {
        return Ok(None);
    };
    let (xid, lsn, ts_ms) = position(&payload)?;
    let op = row_op(payload.op.as_deref().ok_or(DecodeError::Missing("op"))?)?;
    let row = if op == RowOp::Delete {
        let before = payload.before.ok_or(DecodeError::Missing("before"))?;
        RowChange::Item {
            order_id: before
                .order_id
                .ok_or(DecodeError::Missing("before.order_id"))?,
            line_no: before
                .line_no
                .ok_or(DecodeError::Missing("before.line_no"))?,
            op,
            after: None,
        }
    } else {
        let after = payload.after.ok_or(DecodeError::Missing("after"))?;
        let item = Item {
            order_id: after
                .order_id
                .ok_or(DecodeError::Missing("after.order_id"))?,
            line_no: after.line_no.ok_or(DecodeError::Missing("after.line_no"))?,
            sku: after.sku.ok_or(DecodeError::Missing("after.sku"))?,
            quantity: after
                .quantity
                .ok_or(DecodeError::Missing("after.quantity"))?,
            unit_price: amount("unit_price", after.unit_price)?,
        };
        RowChange::Item {
            order_id: item.order_id,
            line_no: item.line_no,
            op,
            after: Some(item),
        }
    };
    Ok(Some(SourceChange {
        xid,
        lsn,
        ts_ms,
        row,
    }))
}

#[derive(Deserialize)]
struct DataCollection {
    data_collection: String,
    event_count: u64,
}

#[derive(Deserialize)]
struct BoundaryPayload {
    status: String,
    id: String,
    ts_ms: Option<i64>,
    data_collections: Option<Vec<DataCollection>>,
}

#[derive(Deserialize)]
struct BoundaryEnvelope {
    #[allow(dead_code)]
    schema: Option<IgnoredAny>,
    payload: Option<BoundaryPayload>,
    status: Option<String>,
    id: Option<String>,
    ts_ms: Option<i64>,
    data_collections: Option<Vec<DataCollection>>,
}

/// Decodes a record of the transaction topic: `Ok(Some(end))` for an END, `Ok(None)` for a
/// BEGIN (the join needs no BEGIN: rows are grouped by xid, and END says when they are all in).
pub fn decode_transaction_end(
    value: Option<&[u8]>,
    tables: &JoinedTables,
) -> Result<Option<TransactionEnd>, DecodeError> {
    let Some(bytes) = value.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let envelope: BoundaryEnvelope = serde_json::from_slice(bytes)?;
    let payload = match envelope.payload {
        Some(payload) => payload,
        None => BoundaryPayload {
            status: envelope.status.ok_or(DecodeError::Missing("status"))?,
            id: envelope.id.ok_or(DecodeError::Missing("id"))?,
            ts_ms: envelope.ts_ms,
            data_collections: envelope.data_collections,
        },
    };
    match payload.status.as_str() {
        "BEGIN" => return Ok(None),
        "END" => {}
        other => {
            return Err(DecodeError::Invalid(format!(
                "transaction status `{other}` (expected BEGIN or END)"
            )))
        }
    }
    let collections = payload
        .data_collections
        .ok_or(DecodeError::Missing("data_collections (of an END)"))?;
    let count = |table: &str| {
        collections
            .iter()
            .filter(|c| c.data_collection == table)
            .map(|c| c.event_count)
            .sum()
    };
    Ok(Some(TransactionEnd {
        xid: xid_of(&payload.id)?,
        commit_lsn: lsn_of(&payload.id)?,
        ts_ms: payload.ts_ms.ok_or(DecodeError::Missing("ts_ms"))?,
        order_rows: count(&tables.orders),
        item_rows: count(&tables.items),
    }))
}

/// Serde for [`Cents`] as the decimal text PostgreSQL prints (`"12.30"`): exact, readable.
pub mod cents_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::money::Cents;

    pub fn serialize<S: Serializer>(cents: &Cents, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(cents)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cents, D::Error> {
        let text = String::deserialize(deserializer)?;
        Cents::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"{"version":"3.6.1","connector":"postgresql","name":"dbserver1","ts_ms":1732370000000,"snapshot":"false","db":"playground","schema":"public","table":"orders","txId":771,"lsn":22910504}"#;

    #[test]
    fn decodes_an_order_insert_with_schema() {
        let json = format!(
            r#"{{"schema":{{"type":"struct","fields":[]}},"payload":{{"before":null,"after":{{"id":42,"customer_id":7,"status":"NEW","total":"BM4=","currency":"EUR","created_at":"x"}},"source":{SOURCE},"op":"c","ts_ms":1,"transaction":{{"id":"771:22910504","total_order":1,"data_collection_order":1}}}}}}"#
        );
        let change = decode_order_change(Some(json.as_bytes())).unwrap().unwrap();
        assert_eq!(change.xid, Some(771));
        assert_eq!(change.lsn, 22910504);
        assert_eq!(change.ts_ms, 1732370000000);
        let RowChange::Order { id, op, after } = change.row else {
            panic!("not an order")
        };
        assert_eq!((id, op), (42, RowOp::Insert));
        let after = after.unwrap();
        assert_eq!(after.total, Cents(1230));
        assert_eq!(after.currency, "EUR");
    }

    #[test]
    fn decodes_item_changes_without_schema_and_deletes() {
        let insert = format!(
            r#"{{"before":null,"after":{{"order_id":42,"line_no":2,"sku":"A-1","quantity":3,"unit_price":"1.50"}},"source":{SOURCE},"op":"c","transaction":{{"id":"771:22910600"}}}}"#
        );
        let change = decode_item_change(Some(insert.as_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(change.row.order_id(), 42);
        let RowChange::Item { after, .. } = &change.row else {
            panic!("not an item")
        };
        assert_eq!(after.as_ref().map(|i| i.unit_price), Some(Cents(150)));
        let delete = format!(
            r#"{{"before":{{"order_id":42,"line_no":2,"sku":null,"quantity":null,"unit_price":null}},"after":null,"source":{SOURCE},"op":"d","transaction":null}}"#
        );
        let change = decode_item_change(Some(delete.as_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(change.xid, None);
        assert!(matches!(
            change.row,
            RowChange::Item {
                order_id: 42,
                line_no: 2,
                op: RowOp::Delete,
                after: None
            }
        ));
        assert_eq!(decode_item_change(None).unwrap(), None);
        assert_eq!(
            decode_item_change(Some(br#"{"schema":{},"payload":null}"#)).unwrap(),
            None
        );
    }

    #[test]
    fn decodes_end_records_and_skips_begin() {
        let tables = JoinedTables::default();
        let end = br#"{"schema":{"type":"struct"},"payload":{"status":"END","id":"771:22911032","event_count":5,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.order_items","event_count":3},{"data_collection":"public.outbox_events","event_count":1}],"ts_ms":1732370000000}}"#;
        assert_eq!(
            decode_transaction_end(Some(end), &tables).unwrap(),
            Some(TransactionEnd {
                xid: 771,
                commit_lsn: 22911032,
                ts_ms: 1732370000000,
                order_rows: 1,
                item_rows: 3
            })
        );
        let begin = br#"{"status":"BEGIN","id":"771:22910216","event_count":null,"data_collections":null,"ts_ms":1}"#;
        assert_eq!(decode_transaction_end(Some(begin), &tables).unwrap(), None);
        for bad in [
            &br#"{"status":"END","id":"x","data_collections":[],"ts_ms":1}"#[..],
            br#"{"status":"SOMETHING","id":"1:2","ts_ms":1}"#,
            br#"not json"#,
        ] {
            assert!(decode_transaction_end(Some(bad), &tables).is_err());
        }
    }

    #[test]
    fn poison_rows_are_errors() {
        for bad in [
            r#"{"after":{"id":1},"op":"c"}"#.to_string(),
            format!(
                r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"??"}},"source":{SOURCE},"op":"c"}}"#
            ),
            format!(
                r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"1.00"}},"source":{SOURCE},"op":"t"}}"#
            ),
            format!(
                r#"{{"after":{{"id":1,"customer_id":2,"status":"NEW","total":"1.00"}},"source":{SOURCE},"op":"c","transaction":{{"id":"nope"}}}}"#
            ),
        ] {
            assert!(decode_order_change(Some(bad.as_bytes())).is_err(), "{bad}");
        }
    }
}
