//! Transforms: what Kafka Connect's single message transforms (SMTs) do to Debezium's records,
//! done to ours, between the envelope and the sink.
//!
//! ```text
//! changes -> OutputRecord -> [transforms: route, unwrap, ...] -> sink (sink::transforming)
//! ```
//!
//! Users who come from Debezium run its transforms; the two they run most are here:
//! - [`extract_new_record_state`]: New Record State Extraction (`--unwrap`), the row instead of
//!   the envelope;
//! - [`topic_router`]: topic routing (`--route-topic-regex`), many tables into one topic.
//!
//! Like an SMT, a transform takes one record and gives back one record, the same record, or
//! none (Kafka Connect's `Transformation.apply` returns a record or null); the chain applies
//! them in order (`--transform-order`, Kafka Connect's `transforms=` list). Transforms are
//! pure: JsonConverter bytes in, bytes out (see [`raw_json`] for why values are never
//! re-printed). A record a transform cannot read (which would be a bug of ours) is logged and
//! passed on unchanged: nothing is lost.

pub mod extract_new_record_state;
pub mod raw_json;
pub mod topic_router;

use crate::changes::OutputRecord;
use crate::config::ReaderArgs;
use extract_new_record_state::{ExtractNewRecordState, UnwrapOptions};
use topic_router::{RouterOptions, TopicRouter};

/// What a transform made of a record.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Pass the record on as it is.
    Unchanged,
    /// Pass this record on instead.
    Replaced(OutputRecord),
    /// Write nothing (still counts as delivered: see `sink::transforming`).
    Dropped,
}

/// A record a transform could not read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransformError(#[from] raw_json::RawJsonError);

/// Options that do not make a valid transform: the reader does not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}. See `cdc-reader --help` (the --unwrap-* and --route-* flags)")]
pub struct TransformConfigError(String);

/// The transforms the flags name, for `--transform-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransformName {
    /// ByLogicalTableRouter (`--route-*`).
    Route,
    /// ExtractNewRecordState (`--unwrap*`).
    Unwrap,
}

/// One configured transform.
#[derive(Debug, Clone)]
pub enum Transform {
    ExtractNewRecordState(ExtractNewRecordState),
    TopicRouter(TopicRouter),
}

impl Transform {
    fn apply(&self, record: &OutputRecord) -> Result<Outcome, TransformError> {
        match self {
            Transform::ExtractNewRecordState(unwrap) => unwrap.apply(record),
            Transform::TopicRouter(router) => router.apply(record),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Transform::ExtractNewRecordState(_) => "ExtractNewRecordState",
            Transform::TopicRouter(_) => "ByLogicalTableRouter",
        }
    }
}

/// The transforms to apply, in order.
#[derive(Debug, Clone, Default)]
pub struct TransformChain {
    transforms: Vec<Transform>,
}

impl TransformChain {
    pub fn new(transforms: Vec<Transform>) -> Self {
        TransformChain { transforms }
    }

    /// The chain the flags ask for (empty without `--unwrap` and `--route-topic-regex`).
    pub fn from_args(args: &ReaderArgs) -> Result<Self, TransformConfigError> {
        let schemas_enabled = !args.no_schemas;
        let mut transforms = Vec::new();
        let mut order = args.transform_order.clone();
        for name in [TransformName::Route, TransformName::Unwrap] {
            if !order.contains(&name) {
                order.push(name);
            }
        }
        for name in order {
            match name {
                TransformName::Unwrap if args.unwrap => {
                    let options = UnwrapOptions {
                        delete_tombstone_handling_mode: args.unwrap_delete_tombstone_handling_mode,
                        delete_handling_mode: args.unwrap_delete_handling_mode,
                        drop_tombstones: args.unwrap_drop_tombstones,
                        add_fields: args.unwrap_add_fields.clone(),
                        add_fields_prefix: args.unwrap_add_fields_prefix.clone(),
                        add_headers: args.unwrap_add_headers.clone(),
                        add_headers_prefix: args.unwrap_add_headers_prefix.clone(),
                    };
                    let unwrap = ExtractNewRecordState::new(&options, schemas_enabled)
                        .map_err(TransformConfigError)?;
                    transforms.push(Transform::ExtractNewRecordState(unwrap));
                }
                TransformName::Route => {
                    let Some(regex) = &args.route_topic_regex else {
                        continue;
                    };
                    let Some(replacement) = &args.route_topic_replacement else {
                        return Err(TransformConfigError(
                            "--route-topic-regex needs --route-topic-replacement (Debezium's topic.replacement), e.g. '$1_all'".into(),
                        ));
                    };
                    let options = RouterOptions {
                        topic_regex: regex.clone(),
                        topic_replacement: replacement.clone(),
                        key_enforce_uniqueness: args.route_key_enforce_uniqueness,
                        key_field_name: args.route_key_field_name.clone(),
                        key_field_regex: args.route_key_field_regex.clone(),
                        key_field_replacement: args.route_key_field_replacement.clone(),
                    };
                    let router = TopicRouter::new(&options, schemas_enabled)
                        .map_err(TransformConfigError)?;
                    transforms.push(Transform::TopicRouter(router));
                }
                TransformName::Unwrap => {}
            }
        }
        Ok(TransformChain { transforms })
    }

    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
    }

    /// Applies every transform in order; None when one of them dropped the record.
    pub fn apply(&self, record: OutputRecord) -> Option<OutputRecord> {
        let mut record = record;
        for transform in &self.transforms {
            match transform.apply(&record) {
                Ok(Outcome::Unchanged) => {}
                Ok(Outcome::Replaced(next)) => record = next,
                Ok(Outcome::Dropped) => return None,
                Err(error) => tracing::warn!(
                    transform = transform.name(),
                    topic = %record.topic,
                    %error,
                    "a record the transform cannot read; passing it on unchanged"
                ),
            }
        }
        Some(record)
    }

    /// The topic records of `topic` end up in (only routers change topics), so the sink can
    /// create it before the first record.
    pub fn topic_for(&self, topic: &str) -> String {
        let mut topic = topic.to_string();
        for transform in &self.transforms {
            if let Transform::TopicRouter(router) = transform {
                if let Some(routed) = router.route(&topic) {
                    topic = routed;
                }
            }
        }
        topic
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::Arc;

    fn chain(flags: &[&str]) -> Result<TransformChain, TransformConfigError> {
        let mut argv = vec!["cdc-reader"];
        argv.extend_from_slice(flags);
        TransformChain::from_args(&ReaderArgs::try_parse_from(argv).unwrap())
    }

    fn created(topic: &str) -> OutputRecord {
        OutputRecord {
            topic: Arc::from(topic),
            key: Some(br#"{"id":7}"#.to_vec()),
            value: Some(
                br#"{"before":null,"after":{"id":7},"source":{"table":"t1"},"op":"c","ts_ms":1}"#
                    .to_vec(),
            ),
            headers: Vec::new(),
        }
    }

    #[test]
    fn no_flags_no_transforms() {
        assert!(chain(&[]).unwrap().is_empty());
    }

    #[test]
    fn route_then_unwrap_by_default() {
        let chain = chain(&[
            "--no-schemas",
            "--unwrap",
            "--unwrap-add-fields",
            "table",
            "--route-topic-regex",
            r"p\.public\.(t)\d",
            "--route-topic-replacement",
            "p.$1",
        ])
        .unwrap();
        assert_eq!(chain.topic_for("p.public.t1"), "p.t");
        assert_eq!(chain.topic_for("p.public.other"), "p.public.other");
        let out = chain.apply(created("p.public.t1")).unwrap();
        assert_eq!(&*out.topic, "p.t");
        assert_eq!(
            out.key.as_deref(),
            Some(br#"{"id":7,"__dbz__physicalTableIdentifier":"p.public.t1"}"#.as_slice())
        );
        assert_eq!(
            out.value.as_deref(),
            Some(br#"{"id":7,"__table":"t1"}"#.as_slice())
        );
    }

    #[test]
    fn a_dropped_record_stops_the_chain() {
        let chain = chain(&["--no-schemas", "--unwrap"]).unwrap();
        let tombstone = OutputRecord {
            value: None,
            ..created("p.public.t1")
        };
        assert!(chain.apply(tombstone).is_none());
    }

    #[test]
    fn bad_options_are_refused_with_the_fix() {
        let error = chain(&["--route-topic-regex", "(.*)"]).unwrap_err();
        assert!(
            error.to_string().contains("--route-topic-replacement"),
            "{error}"
        );
        let error =
            chain(&["--route-topic-regex", "(", "--route-topic-replacement", "x"]).unwrap_err();
        assert!(error.to_string().contains("not a regex"), "{error}");
    }

    #[test]
    fn an_unreadable_record_passes_unchanged() {
        let chain = chain(&["--unwrap"]).unwrap();
        let odd = OutputRecord {
            value: Some(b"not json".to_vec()),
            ..created("p.public.t1")
        };
        assert_eq!(chain.apply(odd.clone()), Some(odd));
    }
}
