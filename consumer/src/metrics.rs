//! The consumer's `/metrics` (with `--metrics-listen`, see [`db::metrics`]): what each batch
//! did, how long its transaction took, how far behind each partition is, and the end-to-end
//! latency, from the source commit to the projection's COMMIT.
//!
//! ```text
//! source COMMIT in PostgreSQL ── ... cdc-reader ... Kafka ... batch ── COMMIT of the batch
//! └ source.ts_us in the envelope                                       └ now, after tx.commit()
//!   pgcdc_consumer_end_to_end_latency_seconds = now - source.ts_us, one observation per change
//! ```
//!
//! | name | type | labels |
//! |---|---|---|
//! | `pgcdc_consumer_records_total` | counter | `outcome`: applied, duplicate, tombstone, dead_letter |
//! | `pgcdc_consumer_batch_records` | histogram | |
//! | `pgcdc_consumer_batch_apply_seconds` | histogram | |
//! | `pgcdc_consumer_end_to_end_latency_seconds` | histogram | |
//! | `pgcdc_consumer_lag_records` | gauge | `topic`, `partition` |
//! | `pgcdc_consumer_restarts_total` | counter | |
//!
//! The latency needs `source.ts_us` of every change, read from the record's value only while
//! metrics are on ([`enabled`]); with them off the consumer does no extra work.

use std::time::Duration;

use serde::Deserialize;

use crate::apply::BatchSummary;

/// Whether `--metrics-listen` is on (the per-record work, reading `source.ts_us`, is done only then).
pub fn enabled() -> bool {
    db::metrics::enabled()
}

/// Records a committed batch: its outcomes, size, apply time, and the end-to-end latency of
/// each change whose source commit time is known.
pub fn batch_committed(summary: &BatchSummary, apply_time: Duration, source_commits_us: &[i64]) {
    if !enabled() {
        return;
    }
    for (outcome, count) in [
        ("applied", summary.applied),
        ("duplicate", summary.duplicates),
        ("tombstone", summary.tombstones),
        ("dead_letter", summary.dead_letters),
    ] {
        metrics::counter!("pgcdc_consumer_records_total", "outcome" => outcome).increment(count);
    }
    metrics::histogram!("pgcdc_consumer_batch_records").record(summary.records as f64);
    metrics::histogram!("pgcdc_consumer_batch_apply_seconds").record(apply_time.as_secs_f64());
    let latency = metrics::histogram!("pgcdc_consumer_end_to_end_latency_seconds");
    for &micros in source_commits_us {
        if let Some(seconds) = db::metrics::seconds_since_unix_micros(micros) {
            latency.record(seconds);
        }
    }
}

/// Records how many records partition `topic`/`partition` holds beyond the applied position.
pub fn lag(topic: &str, partition: i32, records: i64) {
    metrics::gauge!("pgcdc_consumer_lag_records", "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(records.max(0) as f64);
}

/// Counts a session that failed and is started again.
pub fn restarted() {
    metrics::counter!("pgcdc_consumer_restarts_total").increment(1);
}

/// `source.ts_us` of a Debezium envelope (with or without its schema), falling back to
/// `source.ts_ms`; `None` for anything else (a tombstone, an outbox event, poison).
///
/// ```text
/// {"schema":{..},"payload":{"source":{"ts_ms":1732376400000,"ts_us":1732376400000123,..},..}}
/// {"source":{..},"op":"c",..}                                      (--no-schemas)
/// ```
pub fn source_commit_micros(value: Option<&[u8]>) -> Option<i64> {
    #[derive(Deserialize)]
    struct Source {
        ts_us: Option<i64>,
        ts_ms: Option<i64>,
    }
    #[derive(Deserialize)]
    struct Payload {
        source: Option<Source>,
    }
    #[derive(Deserialize)]
    struct Outer {
        payload: Option<Payload>,
        source: Option<Source>,
    }
    let outer: Outer = serde_json::from_slice(value?).ok()?;
    let source = outer.payload.and_then(|p| p.source).or(outer.source)?;
    source.ts_us.or(source.ts_ms.map(|ms| ms * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_time_with_and_without_schema() {
        let with_schema = br#"{"schema":{"type":"struct","fields":[]},"payload":{"before":null,"source":{"ts_ms":1732376400000,"ts_us":1732376400000123},"op":"c","ts_ms":1,"ts_us":2}}"#;
        assert_eq!(
            source_commit_micros(Some(with_schema)),
            Some(1732376400000123)
        );
        let payload_only =
            br#"{"before":null,"source":{"ts_ms":1732376400000},"op":"c","ts_ms":1}"#;
        assert_eq!(
            source_commit_micros(Some(payload_only)),
            Some(1732376400000000)
        );
        assert_eq!(source_commit_micros(None), None);
        assert_eq!(source_commit_micros(Some(b"not json")), None);
    }
}
