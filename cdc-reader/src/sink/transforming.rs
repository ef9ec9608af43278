//! A sink that runs the transforms (`--unwrap`, `--route-*`) on each record, then hands it to
//! the real sink: where Kafka Connect applies SMTs, between the connector and the producer.
//!
//! ```text
//! stream --send(record, ticket)--> TransformingSink --send(transformed, ticket)--> Kafka/stdout
//!    ^                                  | dropped by a transform:                      |
//!    └──────── acks ◄───────────────────┴─ acknowledged at once ◄──── acks ───────────┘
//! ```
//!
//! The delivery tracker counts one acknowledgement per record sent. A record a transform
//! drops never reaches Kafka, so this sink acknowledges it itself, at once: it is delivered
//! as far as the reader is concerned (there is nothing to deliver), and the transaction's
//! LSN can still be confirmed. Acknowledgements of records that went on come from the real
//! sink, forwarded unchanged. A transform changes one record into at most one record, so the
//! count always matches.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Ack, OutgoingRecord, SendError, Sink, SinkError};
use crate::changes::OutputRecord;
use crate::transforms::TransformChain;

/// Transforms records, then delegates to `inner`.
pub struct TransformingSink<S: Sink> {
    inner: S,
    chain: TransformChain,
    /// Acknowledgements for dropped records (and, once taken, the inner sink's, forwarded).
    acks_sender: mpsc::UnboundedSender<Ack>,
    acks: Option<mpsc::UnboundedReceiver<Ack>>,
}

impl<S: Sink> TransformingSink<S> {
    pub fn new(inner: S, chain: TransformChain) -> Self {
        let (acks_sender, acks) = mpsc::unbounded_channel();
        TransformingSink {
            inner,
            chain,
            acks_sender,
            acks: Some(acks),
        }
    }
}

impl<S: Sink> Sink for TransformingSink<S> {
    async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        let routed = self.chain.topic_for(topic);
        self.inner.ensure_topic(&routed).await
    }

    async fn prepare(&mut self, record: OutgoingRecord<'_>) -> Result<(), SinkError> {
        if self.chain.is_empty() {
            return self.inner.prepare(record).await;
        }
        // The inner sink prepares what it will be sent: the transformed record (transforms
        // are pure, so `send` makes the same one again).
        let Some(transformed) = self.chain.apply(owned_record(record)) else {
            return Ok(());
        };
        let headers: Vec<(&str, &[u8])> = transformed
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        self.inner
            .prepare(OutgoingRecord {
                topic: &transformed.topic,
                key: transformed.key.as_deref(),
                value: transformed.value.as_deref(),
                headers: &headers,
            })
            .await
    }

    fn send(&mut self, record: OutgoingRecord<'_>, ticket: u64) -> Result<(), SendError> {
        if self.chain.is_empty() {
            return self.inner.send(record, ticket);
        }
        let Some(transformed) = self.chain.apply(owned_record(record)) else {
            // Dropped: delivered, as far as the tracker is concerned. The receiver is gone
            // only when the pipeline is shutting down.
            let _ = self.acks_sender.send(Ack {
                ticket,
                result: Ok(()),
            });
            return Ok(());
        };
        let headers: Vec<(&str, &[u8])> = transformed
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        self.inner.send(
            OutgoingRecord {
                topic: &transformed.topic,
                key: transformed.key.as_deref(),
                value: transformed.value.as_deref(),
                headers: &headers,
            },
            ticket,
        )
    }

    fn flush(&mut self, timeout: Duration) -> Result<(), SinkError> {
        self.inner.flush(timeout)
    }

    fn take_acks(&mut self) -> mpsc::UnboundedReceiver<Ack> {
        let mut inner_acks = self.inner.take_acks();
        let Some(acks) = self.acks.take() else {
            return mpsc::unbounded_channel().1;
        };
        if self.chain.is_empty() {
            return inner_acks; // nothing is ever dropped: the inner channel as it is
        }
        let forward = self.acks_sender.clone();
        tokio::spawn(async move {
            while let Some(ack) = inner_acks.recv().await {
                if forward.send(ack).is_err() {
                    break;
                }
            }
        });
        acks
    }
}

fn owned_record(record: OutgoingRecord<'_>) -> OutputRecord {
    OutputRecord {
        topic: record.topic.into(),
        key: record.key.map(<[u8]>::to_vec),
        value: record.value.map(<[u8]>::to_vec),
        headers: record
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReaderArgs;
    use clap::Parser;

    /// A sink that keeps what it gets and acknowledges at once.
    struct RecordingSink {
        sent: Vec<(String, Option<Vec<u8>>, u64)>,
        topics: Vec<String>,
        sender: mpsc::UnboundedSender<Ack>,
        acks: Option<mpsc::UnboundedReceiver<Ack>>,
    }

    impl RecordingSink {
        fn new() -> Self {
            let (sender, acks) = mpsc::unbounded_channel();
            RecordingSink {
                sent: Vec::new(),
                topics: Vec::new(),
                sender,
                acks: Some(acks),
            }
        }
    }

    impl Sink for RecordingSink {
        async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
            self.topics.push(topic.to_string());
            Ok(())
        }
        fn send(&mut self, record: OutgoingRecord<'_>, ticket: u64) -> Result<(), SendError> {
            self.sent.push((
                record.topic.to_string(),
                record.value.map(<[u8]>::to_vec),
                ticket,
            ));
            let _ = self.sender.send(Ack {
                ticket,
                result: Ok(()),
            });
            Ok(())
        }
        fn flush(&mut self, _timeout: Duration) -> Result<(), SinkError> {
            Ok(())
        }
        fn take_acks(&mut self) -> mpsc::UnboundedReceiver<Ack> {
            self.acks
                .take()
                .unwrap_or_else(|| mpsc::unbounded_channel().1)
        }
    }

    #[tokio::test]
    async fn dropped_records_are_acknowledged_and_kept_ones_forwarded() {
        let args = ReaderArgs::try_parse_from([
            "cdc-reader",
            "--no-schemas",
            "--unwrap",
            "--route-topic-regex",
            r"p\.public\.(.*)",
            "--route-topic-replacement",
            "all",
        ])
        .unwrap();
        let chain = TransformChain::from_args(&args).unwrap();
        let mut sink = TransformingSink::new(RecordingSink::new(), chain);
        let mut acks = sink.take_acks();
        sink.ensure_topic("p.public.t").await.unwrap();
        let change = br#"{"before":null,"after":{"id":1},"source":{},"op":"c"}"#;
        let record = |value: Option<&'static [u8]>| OutgoingRecord {
            topic: "p.public.t",
            key: Some(br#"{"id":1}"#),
            value,
            headers: &[],
        };
        sink.send(record(Some(change)), 1).unwrap();
        sink.send(record(None), 2).unwrap(); // a tombstone: --unwrap drops it
        let mut tickets = vec![
            acks.recv().await.unwrap().ticket,
            acks.recv().await.unwrap().ticket,
        ];
        tickets.sort();
        assert_eq!(tickets, vec![1, 2], "one acknowledgement per record sent");
        assert_eq!(sink.inner.topics, vec!["all"]);
        assert_eq!(
            sink.inner.sent,
            vec![("all".to_string(), Some(br#"{"id":1}"#.to_vec()), 1)]
        );
    }
}
