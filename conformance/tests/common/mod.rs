//! What the conformance test needs to run cdc-reader in-process: the Kafka address, and a slot,
//! publication and topic prefix of its own for each scenario (the same conventions as
//! cdc-reader's own integration tests, `cdc-reader/tests/common/mod.rs`).

use std::collections::BTreeMap;

use anyhow::Context;
use cdc_reader::config::ReaderArgs;
use cdc_reader::debezium_config;
use clap::{CommandFactory, Parser};

/// Names and servers every test shares (`db::testing`); not every test binary uses each.
#[allow(unused_imports)]
pub use db::testing::{
    kafka_bootstrap_servers as bootstrap, slot_name, unique_topic_prefix as unique_prefix,
};

/// Reader flags for `name` as `cdc-reader --debezium-config` would make them: `connector` (the
/// Debezium connector keys the recording was made with, e.g. from an `options.properties`)
/// goes through the same key -> flag mapping (`cdc_reader::debezium_config`), and the flags
/// of this test (its database, slot, publication, topic prefix) win over it, as
/// a user's command-line flags win over their file.
pub fn reader_args_from_debezium_config(
    name: &str,
    prefix: &str,
    url: &str,
    source: &str,
    connector: &BTreeMap<String, String>,
    extra: &[&str],
) -> anyhow::Result<ReaderArgs> {
    let flags = debezium_config::translate(source, connector)?;
    let slot = slot_name(name);
    let publication = format!("{name}_pub");
    let bootstrap = bootstrap();
    let mut own: Vec<std::ffi::OsString> = [
        "cdc-reader",
        "--database-url",
        url,
        "--kafka-bootstrap-servers",
        &bootstrap,
        "--slot-name",
        &slot,
        "--publication-name",
        &publication,
        "--topic-prefix",
        prefix,
        "--status-interval",
        "200ms",
    ]
    .iter()
    .map(Into::into)
    .collect();
    own.extend(extra.iter().map(Into::into));
    let argv = debezium_config::merged_argv(&ReaderArgs::command(), &own, &flags, |_| false);
    ReaderArgs::try_parse_from(&argv)
        .with_context(|| format!("the flags {source} became do not parse: {argv:?}"))
}
