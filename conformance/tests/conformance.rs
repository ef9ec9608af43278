//! Conformance: for every scenario in conformance/scenarios/, does cdc-reader write what the real
//! Debezium wrote (conformance/debezium/<scenario>.jsonl)?
//!
//! Each scenario runs in a database of its own, against the real PostgreSQL and Kafka:
//!
//! ```text
//! fresh database ── setup (above `-- conformance:changes`) ── cdc-reader starts, streams
//!   ── changes (below the marker, one statement at a time, autocommit unless BEGIN/COMMIT)
//!   ── wait until the slot confirmed everything written (Kafka acknowledged it all)
//!   ── read every <prefix>.* topic ── conformance::compare(recording, ours) ── report
//! ```
//!
//! The reader runs as Debezium ran when recording (conformance/debezium/README.md): no snapshot
//! (`--snapshot-mode no-data` = `snapshot.mode=no_data`), tombstones after deletes, truncates
//! captured (`skipped.operations=none`), precise decimals, and no Outbox Event Router
//! (`--outbox-table none`: the recordings hold the plain change events of outbox_events).
//! The captured tables are Debezium's `table.include.list`: the playground tables and every
//! `public.conformance_*` table the setup made.
//!
//! What may legitimately differ between a recording and a second run (LSNs, txIds, commit and
//! processing times, the database and connector names, the `__debezium.context.*` headers) is
//! ignored by the `conformance` library itself (`src/field_diff.rs`); anything else this test lets
//! pass is listed, with why, in [`ACCEPTED_DIFFERENCES`]. Adding a scenario is adding its .sql
//! and its recording (`conformance/record <name>`): the test finds them at run time. Because
//! LSNs, txIds and commit times are not compared against a recording, `source.sequence` and
//! friends are checked only by the live run, `scripts/conformance`.
//!
//! Recordings made with other Debezium options live in folders, `debezium/<folder>/`, each with
//! an `options.properties` of Debezium connector keys (e.g. `transforms=unwrap` and
//! `transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState`) and the scenarios it
//! affects (`<scenario>.jsonl`). Such a scenario runs as `<folder>/<scenario>`, the reader
//! configured from the same keys through the mapping `cdc-reader --debezium-config` uses
//! (`cdc_reader::debezium_config`): an option the mapping does not support fails the scenario
//! with the mapping's own message. A folder without `options.properties` is not compared here.
//!
//! It prints one line per scenario. `CONFORMANCE_SCENARIOS=types,unwrap_drop` runs only those
//! (a scenario's name runs it in every folder; a folder's name runs the folder);
//! `RUST_LOG=cdc_reader=debug` shows the reader's log.
//!
//! `side_by_side_from_files` (ignored) is the comparing half of `scripts/conformance`, the live
//! run of both connectors on the same database.
//!
//! Avro (`debezium/avro/<scenario>.jsonl`, run as `avro/<scenario>`): the real Debezium with
//! Apicurio's Kafka Connect `AvroConverter` (`scripts/debezium up --avro`) wrote these records
//! into the schema registry's wire format; the recording holds each record decoded (the
//! JSON form: the Connect schema made from the Avro schema, and the payload) and the Avro
//! schemas it was written with (`key_avro_schema`, `value_avro_schema`). The reader runs with
//! `--format avro` against the stack's registry; its records are decoded the same way and
//! compared like JSON ones, and every subject's registered schemas (in the order they appear)
//! must equal Debezium's, topic prefix aside. A folder `debezium/avro/<folder>/` with an
//! `options.properties` holds Avro recordings made with those Debezium options (run as
//! `avro/<folder>/<scenario>`, the reader configured from the same keys).
//! `avro_side_by_side_from_topics` (ignored) is the comparing half of `scripts/conformance
//! --avro`, and writes those recordings.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use conformance::{
    compare, compare_incremental, parse_recording, CompareOptions, Difference, Record, Report,
};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schema_registry::{AvroDecoder, RegistryClient};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::oneshot;

/// The line in a scenario between the setup and the captured changes.
const CHANGES_MARKER: &str = "-- conformance:changes";

/// The `topic.prefix` the recordings were made with (scripts/debezium's default).
const RECORDING_TOPIC_PREFIX: &str = "dbz";

/// Scenarios that run at once (each has its own database, slot, publication and topics). The
/// machine has 2 cores shared with others; more does not finish sooner.
const SCENARIOS_AT_ONCE: usize = 3;

/// How long the reader may take to deliver a scenario's changes once they are committed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A difference from Debezium that the test accepts, and why. Matched on the field path of a
/// [`Difference::Field`] (every scenario, every record). Empty means: none accepted; everything
/// not ignored by the `conformance` library (run-specific values, see `src/field_diff.rs`) fails.
struct AcceptedDifference {
    path: &'static str,
    why: &'static str,
}

/// The folder of recordings made with Apicurio's AvroConverter (`scripts/conformance --avro`).
const AVRO_FOLDER: &str = "avro";

/// The ONE list of differences this test lets pass. Keep it short and say why for each.
const ACCEPTED_DIFFERENCES: &[AcceptedDifference] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_writes_what_debezium_wrote() {
    if std::env::var_os("RUST_LOG").is_some() {
        db::init_tracing();
    }
    let started = Instant::now();
    let mut scenarios = discover_scenarios(&conformance_dir()).expect("conformance scenarios");
    if let Ok(wanted) = std::env::var("CONFORMANCE_SCENARIOS") {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        scenarios.retain(|scenario| scenario.is_wanted(&wanted));
    }
    assert!(
        !scenarios.is_empty(),
        "no scenarios in conformance/scenarios"
    );
    let outcomes: Vec<(String, anyhow::Result<Report>)> = futures::stream::iter(scenarios)
        .map(|scenario| async move {
            let outcome = run_scenario(&scenario).await;
            (scenario.name, outcome)
        })
        .buffer_unordered(SCENARIOS_AT_ONCE)
        .collect()
        .await;

    let mut outcomes = outcomes;
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failures = Vec::new();
    for (name, outcome) in &outcomes {
        match outcome {
            Ok(report) if report.is_identical() => {
                println!("conformance {name}: identical ({} records)", report.paired)
            }
            Ok(report) => {
                println!(
                    "conformance {name}: {} differences",
                    report.differences.len()
                );
                failures.push(format!("{name}: {report}"));
            }
            Err(error) => {
                println!("conformance {name}: did not run: {error:#}");
                failures.push(format!("{name}: did not run: {error:#}"));
            }
        }
    }
    println!(
        "conformance: {} scenarios in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "cdc-reader does not write what Debezium wrote:\n\n{}",
        failures.join("\n\n")
    );
}

/// The comparing half of `scripts/conformance`: Debezium's and our records of one live run,
/// both in the recording format, compared side by side (LSNs, txIds and commit times must
/// match too). Run by the script with the files and prefixes in the environment.
#[test]
#[ignore = "run by scripts/conformance with CONFORMANCE_* set"]
fn side_by_side_from_files() {
    let env = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set (scripts/conformance sets it)"))
    };
    let read = |path: String| {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_recording(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let debezium = read(env("CONFORMANCE_DEBEZIUM_RECORDS"));
    let ours = read(env("CONFORMANCE_OUR_RECORDS"));
    let options = CompareOptions::side_by_side(
        &env("CONFORMANCE_DEBEZIUM_PREFIX"),
        &env("CONFORMANCE_OUR_PREFIX"),
    );
    // With a signal table (scripts/conformance sets it from signal.data.collection): the
    // incremental-snapshot comparison.
    let report = match std::env::var("CONFORMANCE_SIGNAL_TABLE") {
        Ok(signal_table) if !signal_table.is_empty() => {
            compare_incremental(&debezium, &ours, &options, &signal_table)
        }
        _ => compare(&debezium, &ours, &options),
    };
    let report = without_accepted(report);
    println!("{report}");
    assert!(report.is_identical(), "side by side: {report}");
}

/// The file in an options folder that holds its Debezium connector keys.
const OPTIONS_FILE: &str = "options.properties";

/// One scenario file, split at [`CHANGES_MARKER`], with Debezium's recording of it (made with
/// the options of `options`, if any).
struct Scenario {
    /// `types`, or `<folder>/types` for a recording with options.
    name: String,
    /// The scenario file's name: `types`.
    file_name: String,
    /// Names this run's database, slot and topics (short enough for PostgreSQL's 63 bytes).
    run_name: String,
    setup: String,
    changes: String,
    recording: Vec<Record>,
    options: Option<DebeziumOptions>,
    /// Recorded as Avro: the reader runs with `--format avro`, the schemas are compared too.
    avro: Option<Vec<AvroSchemaUse>>,
}

/// The Debezium connector keys a folder of recordings was made with.
#[derive(Clone)]
struct DebeziumOptions {
    folder: String,
    path: PathBuf,
    keys: BTreeMap<String, String>,
}

impl Scenario {
    fn is_wanted(&self, wanted: &[&str]) -> bool {
        let folder = self.options.as_ref().map(|options| options.folder.as_str());
        let avro = self.avro.as_ref().map(|_| AVRO_FOLDER);
        wanted.iter().any(|&name| {
            name == self.name
                || name == self.file_name
                || Some(name) == folder
                || Some(name) == avro
        })
    }
}

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `scenarios/<name>.sql` with its `debezium/<name>.jsonl`, sorted by name, then every
/// `debezium/<folder>/<name>.jsonl` of a folder with an [`OPTIONS_FILE`], by folder and name.
fn discover_scenarios(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
    let scenarios_dir = dir.join("scenarios");
    let paths = files_with_extension(&scenarios_dir, "sql")?;
    let mut scenarios: Vec<Scenario> = paths
        .iter()
        .map(|path| load_scenario(path, &dir.join("debezium"), None))
        .collect::<anyhow::Result<_>>()?;
    for (index, folder) in option_folders(&dir.join("debezium"))?.iter().enumerate() {
        let options = read_options(folder)?;
        let recordings = files_with_extension(folder, "jsonl")?;
        ensure!(
            !recordings.is_empty(),
            "{} has options but no recordings: `conformance/record --options {} <scenario>`",
            folder.display(),
            folder.display()
        );
        for recording in recordings {
            let scenario = scenario_of(&recording, &scenarios_dir)?;
            let mut loaded = load_scenario(&scenario, folder, Some(options.clone()))?;
            loaded.run_name = format!("cf{index}_{}", loaded.file_name);
            scenarios.push(loaded);
        }
    }
    // Avro: `debezium/avro/<name>.jsonl`, then `debezium/avro/<folder>/<name>.jsonl` of the
    // folders with an OPTIONS_FILE (recorded with those Debezium options).
    let avro = dir.join("debezium").join(AVRO_FOLDER);
    if avro.is_dir() {
        let mut folders = vec![(avro.clone(), None)];
        for folder in option_folders(&avro)? {
            let options = read_options(&folder)?;
            folders.push((folder, Some(options)));
        }
        for (index, (folder, options)) in folders.into_iter().enumerate() {
            for recording in files_with_extension(&folder, "jsonl")? {
                let scenario = scenario_of(&recording, &scenarios_dir)?;
                let mut loaded = load_scenario(&scenario, &folder, options.clone())?;
                let text = std::fs::read_to_string(&recording)?;
                loaded.avro = Some(
                    recorded_avro_schemas(&text)
                        .with_context(|| format!("reading {}", recording.display()))?,
                );
                loaded.name = format!("{AVRO_FOLDER}/{}", loaded.name);
                loaded.run_name = match index {
                    0 => format!("cfavro_{}", loaded.file_name),
                    n => format!("cfavro{n}_{}", loaded.file_name),
                };
                scenarios.push(loaded);
            }
        }
    }
    Ok(scenarios)
}

/// The files in `dir` whose name ends in `.<extension>`, sorted.
/// The scenario a recording was made from: `scenarios/<its stem>.sql`, which must exist.
fn scenario_of(recording: &Path, scenarios_dir: &Path) -> anyhow::Result<PathBuf> {
    let stem = recording
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    let scenario = scenarios_dir.join(format!("{stem}.sql"));
    ensure!(
        scenario.is_file(),
        "{}: no scenario {} to compare it with",
        recording.display(),
        scenario.display()
    );
    Ok(scenario)
}

fn files_with_extension(dir: &Path, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == extension))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The folders under `debezium/` that say their options (an [`OPTIONS_FILE`]), sorted.
fn option_folders(recordings: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(recordings)
        .with_context(|| format!("reading {}", recordings.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.join(OPTIONS_FILE).is_file())
        .collect();
    folders.sort();
    Ok(folders)
}

fn read_options(folder: &Path) -> anyhow::Result<DebeziumOptions> {
    let path = folder.join(OPTIONS_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(DebeziumOptions {
        folder: folder
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{}: not a UTF-8 folder name", folder.display()))?
            .to_owned(),
        path,
        keys: cdc_reader::debezium_config::parse_properties(&text),
    })
}

fn load_scenario(
    path: &Path,
    recordings: &Path,
    options: Option<DebeziumOptions>,
) -> anyhow::Result<Scenario> {
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .with_context(|| format!("{}: not a UTF-8 file name", path.display()))?
        .to_owned();
    ensure!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "{}: scenario names use a-z, 0-9 and _ (they name a database and topics)",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (setup, changes) = split_at_marker(&text).with_context(|| {
        format!(
            "{} has no line starting with '{CHANGES_MARKER}'",
            path.display()
        )
    })?;
    let recording_path = recordings.join(format!("{name}.jsonl"));
    let recording_text = std::fs::read_to_string(&recording_path).with_context(|| {
        format!(
            "{} has no recording {}: record it with `conformance/record {name}`",
            path.display(),
            recording_path.display()
        )
    })?;
    let recording = parse_recording(&recording_text)
        .with_context(|| format!("reading {}", recording_path.display()))?;
    let shown = match &options {
        Some(options) => format!("{}/{name}", options.folder),
        None => name.clone(),
    };
    Ok(Scenario {
        name: shown,
        run_name: format!("conformance_{name}"),
        file_name: name,
        setup: setup.to_owned(),
        changes: changes.to_owned(),
        recording,
        options,
        avro: None,
    })
}

/// (setup, changes): the text before the marker line, and after it.
fn split_at_marker(text: &str) -> Option<(&str, &str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(CHANGES_MARKER) {
            return Some((&text[..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

/// A scenario end to end; the report of our records against the recording.
async fn run_scenario(scenario: &Scenario) -> anyhow::Result<Report> {
    let name = scenario.run_name.clone();
    // Letters and digits only: under `schema.name.adjustment.mode=avro_unicode` even `_` is
    // escaped in schema names, and the comparison must still find the prefix in them.
    let prefix = common::unique_prefix(&name).replace('_', "x");
    let (url, pool) = db::testing::fresh_database(&name)
        .await
        .context("fresh database")?;
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .context("connecting to the scenario's database")?;
    run_statements(&mut connection, &scenario.setup)
        .await
        .context("scenario setup")?;

    let tables = captured_tables(&pool).await?;
    let slot = common::slot_name(&name);
    // The connector configuration the recording was made with (scripts/debezium's, its
    // table.include.list as the tables it matched here), plus the folder's options.
    // include.unknown.datatypes=false is Debezium's default, where ours differs on purpose.
    let mut connector = BTreeMap::from([
        ("snapshot.mode".to_owned(), "no_data".to_owned()),
        ("include.unknown.datatypes".to_owned(), "false".to_owned()),
        ("table.include.list".to_owned(), tables.join(",")),
    ]);
    let source = match &scenario.options {
        Some(options) => {
            connector.extend(options.keys.clone());
            options.path.display().to_string()
        }
        None => "scripts/debezium's connector configuration".to_owned(),
    };
    // A signal table makes it an incremental-snapshot scenario (conformance::incremental).
    let signal_table = connector
        .get("signal.data.collection")
        .map(|table| table.to_owned());
    let registry = registry_url();
    let mut extra = vec!["--drop-slot-on-exit"];
    if scenario.avro.is_some() {
        extra.extend(["--format", "avro", "--schema-registry-url", &registry]);
    }
    let args = common::reader_args_from_debezium_config(
        &name, &prefix, &url, &source, &connector, &extra,
    )?;
    // ExtractNewRecordState drops records after the reader counted them (tombstones, truncates,
    // deletes in `drop` mode): the count is then an upper bound, not what the topics hold.
    let transforms_may_drop = args.unwrap;
    let (stop, stopped) = oneshot::channel::<()>();
    let mut reader = tokio::spawn(cdc_reader::reader::run(args, async {
        let _ = stopped.await;
    }));

    let delivered = async {
        wait_for_slot(&pool, &slot, &reader, "start streaming", |row| {
            row.active && row.confirmed.is_some()
        })
        .await?;
        run_statements(&mut connection, &scenario.changes)
            .await
            .context("scenario changes")?;
        if signal_table.is_some() {
            wait_for_incremental_snapshot(&pool, &slot).await?;
        }
        // The insert position: a non-transactional logical message is not flushed at once
        // (PostgreSQL 15), so the write position may lag behind it.
        let written = wal_insert_lsn(&pool).await?;
        wait_for_slot(&pool, &slot, &reader, "confirm the changes", |row| {
            row.confirmed.is_some_and(|lsn| lsn >= written.0)
        })
        .await
    }
    .await;
    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(30), &mut reader).await;
    // The reader's own error, when it has one, says more than a wait that timed out.
    let records_sent = match ended {
        Ok(Ok(Ok(summary))) => (!transforms_may_drop).then_some(summary.stats.records_sent),
        Ok(Ok(Err(error))) => bail!("cdc-reader failed: {error}"),
        Ok(Err(join)) => bail!("cdc-reader panicked: {join}"),
        Err(_) => bail!("cdc-reader did not stop within 30 s"),
    };
    delivered?;

    let topic_prefix = format!("{prefix}.");
    let raw = tokio::task::spawn_blocking(move || {
        read_raw_topics_with_prefix(&topic_prefix, records_sent)
    })
    .await
    .context("reading our topics")??;
    let options = CompareOptions::against_recording(RECORDING_TOPIC_PREFIX, &prefix);
    let Some(recorded_schemas) = &scenario.avro else {
        let ours = json_records(raw)?;
        let report = match &signal_table {
            Some(signal_table) => {
                compare_incremental(&scenario.recording, &ours, &options, signal_table)
            }
            None => compare(&scenario.recording, &ours, &options),
        };
        return Ok(without_accepted(report));
    };
    let (ours, our_schemas) = avro_records(&raw, &registry).await?;
    let mut report = without_accepted(compare(&scenario.recording, &ours, &options));
    report.differences.extend(avro_schema_differences(
        recorded_schemas,
        &our_schemas,
        &options,
    ));
    Ok(report)
}

/// The stack's schema registry (`SCHEMA_REGISTRY_URL`, which `scripts/test` exports).
fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| cdc_reader::config::DEFAULT_SCHEMA_REGISTRY_URL.to_string())
}

/// The comparing half of `scripts/conformance --avro`: the records of both connectors, read
/// from Kafka and decoded with the writer schemas from the registry, compared side by side,
/// and their registered schemas compared subject by subject. Writes both sides, decoded, to
/// `CONFORMANCE_WORK/{debezium,ours}.jsonl`, and Debezium's as a recording (its topic prefix
/// made `dbz`) to `CONFORMANCE_WORK/recording.jsonl`: `conformance/debezium/avro/<scenario>.jsonl`.
#[tokio::test]
#[ignore = "run by scripts/conformance --avro with CONFORMANCE_* set"]
async fn avro_side_by_side_from_topics() {
    let env = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set (scripts/conformance --avro sets it)"))
    };
    let (dbz_prefix, our_prefix) = (
        env("CONFORMANCE_DEBEZIUM_PREFIX"),
        env("CONFORMANCE_OUR_PREFIX"),
    );
    let work = PathBuf::from(env("CONFORMANCE_WORK"));
    let registry = registry_url();
    let mut sides = Vec::new();
    for prefix in [&dbz_prefix, &our_prefix] {
        let topic_prefix = format!("{prefix}.");
        let raw =
            tokio::task::spawn_blocking(move || read_raw_topics_with_prefix(&topic_prefix, None))
                .await
                .unwrap()
                .unwrap();
        sides.push(avro_records(&raw, &registry).await.unwrap());
    }
    let (ours, our_schemas) = sides.pop().unwrap();
    let (debezium, dbz_schemas) = sides.pop().unwrap();
    let write =
        |file: &str, records: &[Record], schemas: &[AvroSchemaUse], rename: Option<&str>| {
            let text: String = records
                .iter()
                .zip(schemas_per_record(records.len(), schemas))
                .map(|(record, (key_schema, value_schema))| {
                    let mut line = serde_json::json!({
                        "topic": record.topic, "headers": record.headers, "key": record.key,
                        "value": record.value, "key_avro_schema": key_schema,
                        "value_avro_schema": value_schema,
                    });
                    if let Some(prefix) = rename {
                        rename_prefix(&mut line, prefix, RECORDING_TOPIC_PREFIX);
                    }
                    format!("{line}\n")
                })
                .collect();
            std::fs::write(work.join(file), text).unwrap();
        };
    write("debezium.jsonl", &debezium, &dbz_schemas, None);
    write("ours.jsonl", &ours, &our_schemas, None);
    write(
        "recording.jsonl",
        &debezium,
        &dbz_schemas,
        Some(&dbz_prefix),
    );
    let options = CompareOptions::side_by_side(&dbz_prefix, &our_prefix);
    let mut report = without_accepted(compare(&debezium, &ours, &options));
    report.differences.extend(avro_schema_differences(
        &dbz_schemas,
        &our_schemas,
        &options,
    ));
    println!("{report}");
    assert!(report.is_identical(), "side by side, Avro: {report}");
}

/// The Avro schema a record's key or value was written with.
#[derive(Debug, Clone)]
struct AvroSchemaUse {
    /// Which record (its index in the list), and whether the key's or the value's.
    record: usize,
    topic: String,
    side: &'static str,
    schema: Value,
}

/// (key schema, value schema) of each of the `count` records, `null` where there is none (a
/// null key, a tombstone); `schemas` holds them in record order. One pair per record, also for
/// records with neither (a tombstone of a table without a primary key has a null key too).
fn schemas_per_record(count: usize, schemas: &[AvroSchemaUse]) -> Vec<(Value, Value)> {
    let mut out = vec![(Value::Null, Value::Null); count];
    for use_ in schemas {
        let slot = &mut out[use_.record];
        match use_.side {
            "key" => slot.0 = use_.schema.clone(),
            _ => slot.1 = use_.schema.clone(),
        }
    }
    out
}

/// The schemas of a recording's lines (`key_avro_schema`, `value_avro_schema`).
fn recorded_avro_schemas(text: &str) -> anyhow::Result<Vec<AvroSchemaUse>> {
    let mut out = Vec::new();
    for (index, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let line: Value = serde_json::from_str(line)?;
        let topic = line["topic"].as_str().unwrap_or_default().to_owned();
        for side in ["key", "value"] {
            let schema = &line[format!("{side}_avro_schema")];
            if !schema.is_null() {
                out.push(AvroSchemaUse {
                    record: index,
                    topic: topic.clone(),
                    side,
                    schema: schema.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Decodes Avro records (wire format, writer schema by id from the registry) into the JSON
/// form of the recordings, with the schema each key and value was written with.
async fn avro_records(
    raw: &[RawRecord],
    registry: &str,
) -> anyhow::Result<(Vec<Record>, Vec<AvroSchemaUse>)> {
    let mut decoder = AvroDecoder::new(RegistryClient::new(registry));
    let mut records = Vec::new();
    let mut schemas = Vec::new();
    for (index, record) in raw.iter().enumerate() {
        let (key, value) = (record.key.as_ref(), record.value.as_ref());
        let key = decode_side(&mut decoder, &mut schemas, index, record, key, "key").await?;
        let value = decode_side(&mut decoder, &mut schemas, index, record, value, "value").await?;
        records.push(Record {
            topic: record.topic.clone(),
            key,
            value,
            headers: record.headers.clone(),
        });
    }
    Ok((records, schemas))
}

/// One key or value of `record` (the `index`th) decoded: its JSON form; its schema goes to `schemas`.
async fn decode_side(
    decoder: &mut AvroDecoder,
    schemas: &mut Vec<AvroSchemaUse>,
    index: usize,
    record: &RawRecord,
    bytes: Option<&Vec<u8>>,
    side: &'static str,
) -> anyhow::Result<Value> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    let decoded = decoder
        .decode(bytes)
        .await
        .with_context(|| format!("the {side} of {}@{} as Avro", record.topic, record.offset))?;
    schemas.push(AvroSchemaUse {
        record: index,
        topic: record.topic.clone(),
        side,
        schema: serde_json::from_str(&decoded.writer.text)?,
    });
    Ok(decoded.connect_json())
}

/// Where Debezium's registered schemas differ from ours: per subject (`<table>-key`,
/// `<table>-value`), the distinct schemas in the order the records used them, each side's
/// topic prefix replaced by `<prefix>` in every name.
fn avro_schema_differences(
    debezium: &[AvroSchemaUse],
    ours: &[AvroSchemaUse],
    options: &CompareOptions,
) -> Vec<Difference> {
    let versions = |uses: &[AvroSchemaUse], prefix: &str| {
        let mut subjects: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for use_ in uses {
            let table = use_
                .topic
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(&use_.topic);
            let mut schema = use_.schema.clone();
            rename_prefix(&mut schema, prefix, "<prefix>");
            let versions = subjects
                .entry(format!("{table}-{}", use_.side))
                .or_default();
            if !versions.contains(&schema) {
                versions.push(schema);
            }
        }
        subjects
    };
    let debezium = versions(debezium, &options.debezium_topic_prefix);
    let ours = versions(ours, &options.our_topic_prefix);
    let mut differences = Vec::new();
    let subjects: std::collections::BTreeSet<&String> =
        debezium.keys().chain(ours.keys()).collect();
    for subject in subjects {
        let (theirs, mine) = (debezium.get(subject), ours.get(subject));
        let count = theirs.map_or(0, Vec::len).max(mine.map_or(0, Vec::len));
        for version in 0..count {
            let (a, b) = (
                theirs.and_then(|v| v.get(version)),
                mine.and_then(|v| v.get(version)),
            );
            if a == b {
                continue;
            }
            let (path, a, b) = first_difference("", a, b);
            differences.push(Difference::Field {
                record: conformance::RecordRef {
                    table: subject.clone(),
                    op: "avro schema".into(),
                    key: format!("version {}", version + 1),
                    debezium_index: None,
                    ours_index: None,
                },
                path,
                debezium: a,
                ours: b,
            });
        }
    }
    differences
}

/// The first place two JSON values differ: its path, and each side's value there.
fn first_difference(
    path: &str,
    a: Option<&Value>,
    b: Option<&Value>,
) -> (String, Option<Value>, Option<Value>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                if x.get(key) != y.get(key) {
                    return first_difference(&format!("{path}.{key}"), x.get(key), y.get(key));
                }
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (index, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    return first_difference(&format!("{path}[{index}]"), Some(p), Some(q));
                }
            }
        }
        _ => {}
    }
    (path.to_owned(), a.cloned(), b.cloned())
}

/// Replaces the topic prefix `from` with `to` at the start of every string in `value`
/// (schema names, namespaces, `connect.name`, topics, `source.name`).
fn rename_prefix(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(text) => {
            if text == from {
                *text = to.to_owned();
            } else if let Some(rest) = text.strip_prefix(from).filter(|r| r.starts_with('.')) {
                *text = format!("{to}{rest}");
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rename_prefix(item, from, to)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|field| rename_prefix(field, from, to)),
        _ => {}
    }
}

/// Waits until the reader has carried out every `execute-snapshot` signal of the scenario: its
/// stored progress (`cdc_reader_incremental_snapshots`) has handled a signal and runs none.
async fn wait_for_incremental_snapshot(pool: &sqlx::PgPool, slot: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let done: Option<bool> = sqlx::query_scalar(
            "SELECT progress->>'signal_id' IS NULL \
                    AND jsonb_array_length(progress->'handled_signals') > 0 \
             FROM cdc_reader_incremental_snapshots WHERE slot_name = $1",
        )
        .bind(slot)
        .fetch_optional(pool)
        .await
        .context("cdc_reader_incremental_snapshots")?;
        if done == Some(true) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the incremental snapshot of slot {slot} did not finish within {} s",
            DELIVERY_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The report minus the differences in [`ACCEPTED_DIFFERENCES`], each printed with its reason
/// (accepted is not invisible).
fn without_accepted(mut report: Report) -> Report {
    report.differences.retain(|difference| {
        let Difference::Field { path, .. } = difference else {
            return true;
        };
        match ACCEPTED_DIFFERENCES
            .iter()
            .find(|accepted| accepted.path == path)
        {
            Some(accepted) => {
                println!("  accepted: {difference} ({})", accepted.why);
                false
            }
            None => true,
        }
    });
    report
}

/// `pg_current_wal_insert_lsn()`: everything the scenario wrote lies before it.
async fn wal_insert_lsn(pool: &sqlx::PgPool) -> anyhow::Result<cdc_reader::lsn::Lsn> {
    let text: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
        .fetch_one(pool)
        .await
        .context("pg_current_wal_insert_lsn")?;
    Ok(text.parse()?)
}

/// The tables Debezium's `table.include.list` captures in this database:
/// `public\.(orders|order_items|outbox_events|conformance_.*)`.
async fn captured_tables(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT 'public.' || tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename ~ '^(orders|order_items|outbox_events|conformance_.*)$' ORDER BY tablename",
    )
    .fetch_all(pool)
    .await
    .context("listing the captured tables")
}

/// What `pg_replication_slots` says about the reader's slot.
struct SlotRow {
    active: bool,
    confirmed: Option<u64>,
}

/// Waits until the slot's row satisfies `done`, failing early when the reader ends.
async fn wait_for_slot<T>(
    pool: &sqlx::PgPool,
    slot: &str,
    reader: &tokio::task::JoinHandle<T>,
    what: &str,
    done: impl Fn(&SlotRow) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let row: Option<(bool, Option<String>)> = sqlx::query_as(
            "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(slot)
        .fetch_optional(pool)
        .await
        .context("pg_replication_slots")?;
        if let Some((active, confirmed)) = row {
            let confirmed = match confirmed {
                Some(text) => Some(text.parse::<cdc_reader::lsn::Lsn>()?.0),
                None => None,
            };
            if done(&SlotRow { active, confirmed }) {
                return Ok(());
            }
        }
        ensure!(
            !reader.is_finished(),
            "cdc-reader ended before its slot {slot} did {what}"
        );
        ensure!(
            Instant::now() < deadline,
            "the reader's slot {slot} did not {what} within {} s",
            DELIVERY_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a script one statement at a time on one connection, as `psql -f` does: each statement
/// is its own transaction unless the script says BEGIN ... COMMIT/ROLLBACK. (Sending the whole
/// script as one simple query would run it as ONE implicit transaction.)
async fn run_statements(connection: &mut sqlx::PgConnection, script: &str) -> anyhow::Result<()> {
    for statement in split_statements(script) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *connection)
            .await
            .with_context(|| format!("running: {statement}"))?;
    }
    Ok(())
}

/// Splits SQL into statements at the `;` that end them, skipping `;` inside quoted strings
/// ('...', E'...'), quoted identifiers, dollar-quoted bodies and comments. Statements that are
/// only comments are dropped.
fn split_statements(script: &str) -> Vec<String> {
    let chars: Vec<char> = script.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut has_code = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let end = match c {
            '-' if next == Some('-') => find_from(&chars, i, &['\n']).unwrap_or(chars.len()),
            '/' if next == Some('*') => {
                find_str(&chars, i + 2, "*/").map_or(chars.len(), |at| at + 2)
            }
            '\'' => {
                let escapes = i > 0 && matches!(chars[i - 1], 'e' | 'E');
                quoted_end(&chars, i, '\'', escapes)
            }
            '"' => quoted_end(&chars, i, '"', false),
            '$' => match dollar_tag(&chars, i) {
                Some(tag) => {
                    find_str(&chars, i + tag.len(), &tag).map_or(chars.len(), |at| at + tag.len())
                }
                None => i + 1,
            },
            _ => i + 1,
        };
        let is_comment = matches!((c, next), ('-', Some('-')) | ('/', Some('*')));
        if c == ';' {
            if has_code {
                statements.push(current.trim().to_owned());
            }
            current.clear();
            has_code = false;
        } else {
            current.extend(&chars[i..end]);
            has_code |= !is_comment && !c.is_whitespace();
        }
        i = end;
    }
    if has_code {
        statements.push(current.trim().to_owned());
    }
    statements
}

/// The index after the closing quote of the quoted text starting at `start`; a doubled quote
/// stays inside, and with `backslash_escapes` so does a quote after a backslash.
fn quoted_end(chars: &[char], start: usize, quote: char, backslash_escapes: bool) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if backslash_escapes => i += 2,
            c if c == quote && chars.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// `$tag$` or `$$` starting at `start`, if that is what is there.
fn dollar_tag(chars: &[char], start: usize) -> Option<String> {
    let mut i = start + 1;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (chars.get(i) == Some(&'$') && !chars.get(start + 1).is_some_and(char::is_ascii_digit))
        .then(|| chars[start..=i].iter().collect())
}

fn find_from(chars: &[char], start: usize, wanted: &[char]) -> Option<usize> {
    (start..chars.len()).find(|&i| wanted.contains(&chars[i]))
}

fn find_str(chars: &[char], start: usize, wanted: &str) -> Option<usize> {
    let wanted: Vec<char> = wanted.chars().collect();
    (start..chars.len()).find(|&i| chars[i..].starts_with(&wanted))
}

/// Every record on every topic whose name starts with `topic_prefix` (the reader said it sent
/// `records_sent`; `None` when transforms may have dropped some), as conformance records,
/// merged across topics by Kafka timestamp (each topic keeps its own order).
/// One Kafka record's bytes, before they are read as JSON or as Avro.
struct RawRecord {
    topic: String,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: BTreeMap<String, String>,
}

/// The records of [`read_raw_topics_with_prefix`], read as JSON.
fn json_records(raw: Vec<RawRecord>) -> anyhow::Result<Vec<Record>> {
    raw.into_iter()
        .map(|record| {
            let json = |bytes: Option<&Vec<u8>>, what: &str| -> anyhow::Result<Value> {
                bytes.map_or(Ok(Value::Null), |bytes| {
                    serde_json::from_slice(bytes).with_context(|| {
                        format!(
                            "{what} of {}@{} is not JSON: {}",
                            record.topic,
                            record.offset,
                            String::from_utf8_lossy(bytes)
                        )
                    })
                })
            };
            Ok(Record {
                key: json(record.key.as_ref(), "key")?,
                value: json(record.value.as_ref(), "value")?,
                topic: record.topic,
                headers: record.headers,
            })
        })
        .collect()
}

fn read_raw_topics_with_prefix(
    topic_prefix: &str,
    records_sent: Option<u64>,
) -> anyhow::Result<Vec<RawRecord>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", common::bootstrap())
        .set("group.id", format!("conformance-{topic_prefix}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("Kafka consumer")?;
    // Topics made a moment ago may take a metadata refresh to show: look until they hold all
    // the records the reader sent (or, without a count, until three looks agree).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut looks: Vec<i64> = Vec::new();
    let mut remaining = loop {
        let ends = end_offsets(&consumer, topic_prefix)?;
        let total: i64 = ends.values().sum();
        looks.push(total);
        let complete = match records_sent {
            Some(sent) => u64::try_from(total).unwrap_or(0) >= sent,
            None => looks.len() >= 3 && looks[looks.len() - 3..].iter().all(|&n| n == total),
        };
        if complete {
            break ends;
        }
        ensure!(
            Instant::now() < deadline,
            "the reader sent {records_sent:?} records but {topic_prefix}* topics hold {total} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    if remaining.is_empty() {
        return Ok(Vec::new());
    }
    let mut assignment = TopicPartitionList::new();
    for (topic, partition) in remaining.keys() {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    let mut read: Vec<(i64, String, i64, RawRecord)> = Vec::new();
    consumer.assign(&assignment).context("assign")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !remaining.is_empty() {
        ensure!(
            Instant::now() < deadline,
            "Kafka did not return all records of {topic_prefix}* within 30 s (still waiting for {remaining:?})"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.context("Kafka message")?;
        let place = (message.topic().to_owned(), message.partition());
        if remaining
            .get(&place)
            .is_some_and(|&high| message.offset() + 1 >= high)
        {
            remaining.remove(&place);
        }
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        let value = header.value.unwrap_or_default();
                        (
                            header.key.to_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let record = RawRecord {
            topic: message.topic().to_owned(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        };
        let timestamp = message.timestamp().to_millis().unwrap_or(0);
        read.push((timestamp, record.topic.clone(), message.offset(), record));
    }
    read.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    Ok(read.into_iter().map(|(_, _, _, record)| record).collect())
}

/// (topic, partition) -> end offset, for every non-empty partition of the `topic_prefix` topics
/// (fresh topics: they start at offset 0).
fn end_offsets(
    consumer: &BaseConsumer,
    topic_prefix: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .context("Kafka metadata")?;
    let mut ends = BTreeMap::new();
    for topic in metadata.topics() {
        if !topic.name().starts_with(topic_prefix) {
            continue;
        }
        for partition in topic.partitions() {
            let (_low, high) = consumer
                .fetch_watermarks(topic.name(), partition.id(), Duration::from_secs(10))
                .context("watermarks")?;
            if high > 0 {
                ends.insert((topic.name().to_owned(), partition.id()), high);
            }
        }
    }
    Ok(ends)
}

#[test]
fn statements_split_like_psql() {
    let script = "-- a comment; not a statement\n\
        INSERT INTO t VALUES (1, 'a;b', 'it''s; fine');\n\
        SELECT E'back\\'slash;', \"odd;name\" FROM x; /* block; comment */\n\
        DO $body$ BEGIN PERFORM 1; END $body$;\n\
        BEGIN;\nCOMMIT\n";
    assert_eq!(
        split_statements(script),
        vec![
            "-- a comment; not a statement\nINSERT INTO t VALUES (1, 'a;b', 'it''s; fine')",
            "SELECT E'back\\'slash;', \"odd;name\" FROM x",
            "/* block; comment */\nDO $body$ BEGIN PERFORM 1; END $body$",
            "BEGIN",
            "COMMIT",
        ]
    );
    assert!(split_statements("-- only a comment\n\n").is_empty());
}

#[test]
fn scenarios_split_at_the_marker() {
    let text =
        "CREATE TABLE a ();\n-- conformance:changes (below)\nINSERT INTO a DEFAULT VALUES;\n";
    assert_eq!(
        split_at_marker(text),
        Some(("CREATE TABLE a ();\n", "INSERT INTO a DEFAULT VALUES;\n"))
    );
    assert_eq!(split_at_marker("SELECT 1;"), None);
}

#[test]
fn every_scenario_has_a_recording() {
    let scenarios = discover_scenarios(&conformance_dir()).expect("scenarios and recordings");
    for scenario in scenarios {
        assert!(
            !scenario.recording.is_empty(),
            "{}: empty recording",
            scenario.name
        );
    }
}
