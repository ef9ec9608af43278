//! The stdout sink: one envelope per line (`--sink stdout`), or indented (`--pretty`), so
//! learners can watch changes without Kafka. A record counts as delivered once written and flushed.

use std::io::{BufWriter, Stdout, Write};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Ack, OutgoingRecord, SendError, Sink, SinkError};

/// Prints records as JSON: `{"topic": ..., "key": ..., "value": ...}`.
pub struct StdoutSink {
    out: BufWriter<Stdout>,
    pretty: bool,
    sender: mpsc::UnboundedSender<Ack>,
    acks: Option<mpsc::UnboundedReceiver<Ack>>,
}

impl StdoutSink {
    pub fn new(pretty: bool) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        StdoutSink {
            out: BufWriter::new(std::io::stdout()),
            pretty,
            sender,
            acks: Some(receiver),
        }
    }
}

/// Parses bytes we produced ourselves as JSON, or keeps them as a string.
fn as_json(bytes: Option<&[u8]>) -> serde_json::Value {
    match bytes {
        None => serde_json::Value::Null,
        Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        }),
    }
}

impl Sink for StdoutSink {
    async fn ensure_topic(&mut self, _topic: &str) -> Result<(), SinkError> {
        Ok(())
    }

    fn send(&mut self, record: OutgoingRecord<'_>, ticket: u64) -> Result<(), SendError> {
        let mut line = serde_json::json!({
            "topic": record.topic,
            "key": as_json(record.key),
            "value": as_json(record.value),
        });
        if !record.headers.is_empty() {
            let headers: serde_json::Map<String, serde_json::Value> = record
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        serde_json::Value::String(String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect();
            line["headers"] = serde_json::Value::Object(headers);
        }
        let written = if self.pretty {
            serde_json::to_writer_pretty(&mut self.out, &line)
        } else {
            serde_json::to_writer(&mut self.out, &line)
        };
        written
            .map_err(|e| SendError::Fatal(e.to_string()))
            .and_then(|_| {
                self.out
                    .write_all(b"\n")
                    .map_err(|e| SendError::Fatal(e.to_string()))
            })
            .and_then(|_| {
                self.out
                    .flush()
                    .map_err(|e| SendError::Fatal(e.to_string()))
            })?;
        let _ = self.sender.send(Ack {
            ticket,
            result: Ok(()),
        });
        Ok(())
    }

    fn flush(&mut self, _timeout: Duration) -> Result<(), SinkError> {
        self.out.flush()?;
        Ok(())
    }

    fn take_acks(&mut self) -> mpsc::UnboundedReceiver<Ack> {
        self.acks
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }
}
