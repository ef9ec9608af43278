//! A Kafka record as the consumer holds it in a batch: a change event, a tombstone, or a poison
//! record (kept as it arrived, with the error).
//!
//! Decoded once, as soon as it is read (`consume`), then used by two steps that do not know of
//! each other: [`crate::apply`] folds the changes in one transaction, and [`crate::dlq`] copies
//! the poison records to the dead-letter topic first.
//!
//! ```text
//! Kafka record ──decode_record──> BatchRecord { topic, partition, offset, outcome }
//!                                   outcome: Change(ChangeEvent) | Tombstone | Poison(Poison)
//! ```

use projections::order_events::decode_domain_event;
use projections::{decode_outbox, ChangeDecoder, ChangeEvent, Decoded};
use rdkafka::message::{Headers, Message};

use crate::config::Source;

/// A record of a batch, decoded (or not) as soon as it is read.
#[derive(Debug)]
pub struct BatchRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub outcome: Outcome,
    /// `source.ts_us`, read only while metrics are on (the end-to-end latency).
    pub source_commit_us: Option<i64>,
}

#[derive(Debug)]
pub enum Outcome {
    Change(ChangeEvent),
    Tombstone,
    /// Not decodable: goes to the dead-letter topic, with a copy of what arrived.
    Poison(Poison),
}

/// A record that could not be used, as it arrived, and why.
#[derive(Debug, Clone)]
pub struct Poison {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub error: String,
}

/// Decodes a Kafka record from `source`'s topic (`decoder` remembers the last CDC schema).
pub fn decode_record<M: Message>(
    source: Source,
    decoder: &mut ChangeDecoder,
    message: &M,
) -> BatchRecord {
    let decoded = match source {
        Source::Cdc => decoder.decode(message.payload()),
        Source::Domain => decode_domain_event(message.payload()),
        Source::Outbox => {
            let headers: Vec<(&str, Option<&[u8]>)> = message
                .headers()
                .map(|h| h.iter().map(|header| (header.key, header.value)).collect())
                .unwrap_or_default();
            decode_outbox(message.key(), message.payload(), &headers)
        }
    };
    let outcome = match decoded {
        Ok(Decoded::Change(event)) => Outcome::Change(event),
        Ok(Decoded::Tombstone) => Outcome::Tombstone,
        Err(error) => Outcome::Poison(Poison {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            error: error.to_string(),
        }),
    };
    BatchRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        source_commit_us: match &outcome {
            Outcome::Change(_) if crate::metrics::enabled() => {
                crate::metrics::source_commit_micros(message.payload())
            }
            _ => None,
        },
        outcome,
    }
}
