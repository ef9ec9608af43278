//! What the conformance test needs to run cdc-reader in-process: the Kafka address, and a slot,
//! publication and topic prefix of its own for each scenario (the same conventions as
//! cdc-reader's own integration tests, `cdc-reader/tests/common/mod.rs`).

use cdc_reader::config::ReaderArgs;
use clap::Parser;

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| db::DEFAULT_KAFKA_BOOTSTRAP_SERVERS.into())
}

/// A topic prefix for `name` that no earlier run used (Kafka keeps topics between runs).
pub fn unique_prefix(name: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{name}_{millis}")
}

/// The slot a scenario's reader uses (unique per test process: slots are cluster-wide).
pub fn slot_name(name: &str) -> String {
    format!("{}_slot", db::testing::unique_name(name))
}

/// Reader flags for `name`: its database URL, slot, publication, and topic prefix `prefix`.
pub fn reader_args(name: &str, prefix: &str, url: &str, extra: &[&str]) -> ReaderArgs {
    let slot = slot_name(name);
    let publication = format!("{name}_pub");
    let bootstrap = bootstrap();
    let mut argv = vec![
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
    ];
    argv.extend_from_slice(extra);
    ReaderArgs::try_parse_from(argv).expect("test flags parse")
}
