//! `--format avro`: the events in the Confluent wire format, their schema in the registry.
//!
//! ```text
//! OrderEvent ──to_connect_json──> {"schema": io.pgcdc.playground.OrderEvent, "payload": ..}
//!            ──schema_registry::AvroEncoder (AvroData rules, registered once under
//!              <output-topic>-value, cached)──> 00 <schema id> <Avro datum>
//! ```
//!
//! The same path cdc-reader's `--format avro` takes, so the consumer reads both the same way
//! (`consumer --from domain` decodes Avro by its magic byte). The processor is synchronous, so
//! the registry client (async, `reqwest`) runs on a small runtime of its own. A registry that
//! does not answer fails the batch: its Kafka transaction is aborted and the processor starts
//! again from the committed offsets after a wait, so no event is lost or doubled while it is
//! away. A schema the registry refuses stops the processor with the registry's reason.

use projections::order_events::OrderEvent;
use schema_registry::{AvroEncoder, EncodeError, RegistryClient, RegistryError};

use crate::config::EventFormat;

/// The registry refused the event schema: waiting does not help; the processor stops.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaRefused(pub String);

/// Turns events into record values in the chosen format.
pub struct EventEncoder {
    format: EventFormat,
    subject: String,
    avro: Option<(tokio::runtime::Runtime, AvroEncoder)>,
}

impl EventEncoder {
    pub fn new(
        format: EventFormat,
        output_topic: &str,
        schema_registry_url: &str,
    ) -> anyhow::Result<EventEncoder> {
        let avro = match format {
            EventFormat::Json => None,
            EventFormat::Avro => Some((
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
                AvroEncoder::new(RegistryClient::new(schema_registry_url)),
            )),
        };
        Ok(EventEncoder {
            format,
            subject: format!("{output_topic}-value"),
            avro,
        })
    }

    /// The record value of `event`. An unreachable registry is an ordinary error (the batch
    /// aborts and is retried); a refused schema is [`SchemaRefused`].
    pub fn value(&mut self, event: &OrderEvent) -> anyhow::Result<Vec<u8>> {
        let Some((runtime, encoder)) = self.avro.as_mut() else {
            return Ok(event.to_json());
        };
        debug_assert_eq!(self.format, EventFormat::Avro);
        match runtime.block_on(encoder.encode(&self.subject, &event.to_connect_json())) {
            Ok(bytes) => Ok(bytes),
            Err(EncodeError::Registry(error @ RegistryError::Unreachable { .. })) => {
                Err(anyhow::Error::from(error))
            }
            Err(error) => Err(SchemaRefused(error.to_string()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use projections::order_events::{EventSource, EventType, Item, Order};
    use schema_registry::connect_avro;

    use super::*;

    fn event() -> OrderEvent {
        OrderEvent {
            event_id: uuid::Uuid::from_u128(7),
            order_id: 42,
            event_type: EventType::OrderChanged,
            order: Some(Order {
                id: 42,
                customer_id: 7,
                status: "PAID".into(),
                total: projections::money::Cents(1230),
                currency: "EUR".into(),
            }),
            items: vec![Item {
                order_id: 42,
                line_no: 1,
                sku: "A-1".into(),
                quantity: 2,
                unit_price: projections::money::Cents(615),
            }],
            source: EventSource {
                tx_id: 771,
                lsn: 22_911_032,
                ts_ms: 1_732_370_000_000,
            },
        }
    }

    /// The Connect schema becomes the documented Avro record, and a datum decodes back to the
    /// JSON event, value for value (a deleted order's `order` is null).
    #[test]
    fn an_event_survives_the_avro_round_trip() {
        let schema = projections::order_events::connect_schema();
        let avro = connect_avro::avro_schema(&schema).expect("an Avro schema");
        let text: serde_json::Value = serde_json::from_str(&avro.text).unwrap();
        assert_eq!(text["name"], "OrderEvent");
        assert_eq!(text["namespace"], "io.pgcdc.playground");
        let mut deleted = event();
        deleted.event_type = EventType::OrderDeleted;
        deleted.order = None;
        deleted.items.clear();
        for event in [event(), deleted] {
            let connect: serde_json::Value =
                serde_json::from_slice(&event.to_connect_json()).unwrap();
            let datum = connect_avro::avro_datum(&schema, &connect["payload"]).expect("datum");
            let bytes = connect_avro::encode_datum(&avro.schema, datum).expect("encoded");
            let writer =
                schema_registry::WriterSchema::new(1, avro.text.clone(), avro.schema.clone());
            let back = schema_registry::decoder::decode_datum(&writer, &bytes).expect("decoded");
            assert_eq!(
                OrderEvent::from_json(&serde_json::to_vec(&back).unwrap()).unwrap(),
                event
            );
        }
    }
}
