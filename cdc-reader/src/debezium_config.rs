//! `--debezium-config FILE`: run with the Debezium PostgreSQL connector configuration a user
//! already has, by turning its keys into our flags.
//!
//! ```text
//! {"name":"inventory","config":{              --database-url postgres://app:secret@db:5432/inventory
//!   "database.hostname":"db", ...      ->     --slot-name inventory_slot
//!   "slot.name":"inventory_slot",             --topic-prefix dbserver1
//!   "topic.prefix":"dbserver1",               --unwrap --unwrap-add-fields op,lsn
//!   "transforms":"unwrap",
//!   "transforms.unwrap.type":"io.debezium.transforms.ExtractNewRecordState",
//!   "transforms.unwrap.add.fields":"op,lsn"}}
//! ```
//!
//! Accepted: the JSON posted to Kafka Connect (`{"name":..,"config":{..}}`), the bare config
//! map, or a `.properties` file. Each key is in [`CONNECTOR_KEYS`] (or, for the keys of a
//! transform, [`UNWRAP_KEYS`] / [`ROUTER_KEYS`]): mapped to a flag, understood as the
//! reader's behaviour already, or ignored on purpose with the reason. Any other key, or a value
//! the reader cannot honour, is collected, and the start stops with the whole list: a user
//! fixes the file once, not once per key.
//!
//! Pure: text in, flags out ([`translate`]); [`merged_argv`] puts them in front of the
//! user's own arguments, leaving out the flags the user gave on the command line or through
//! their environment variable (those win), and [`load_into_argv`] is the thin I/O layer that
//! `main.rs` calls before clap parses.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

/// The flags (long name, value) a converted key becomes, or why its value cannot be honoured.
pub type Converted = Result<Vec<(&'static str, Option<String>)>, String>;

/// A key of the configuration and how the reader takes it.
#[derive(Debug, Clone, Copy)]
pub enum KeyRule {
    /// The value goes to this flag as it is.
    Flag(&'static str),
    /// A boolean: `true` sets this flag, `false` leaves it out.
    FlagWhenTrue(&'static str),
    /// A boolean: `false` sets this flag (`tombstones.on.delete=false` -> `--no-tombstones`).
    FlagWhenFalse(&'static str),
    /// The value, translated: flags, or why it cannot be honoured.
    Convert(fn(&str) -> Converted),
    /// Only these values are possible: what the reader does anyway (Debezium's default, or
    /// the only value that fits). Any other value is unsupported.
    OnlyValues(&'static [&'static str]),
    /// Read together with other keys (the `database.*` keys become one URL).
    Grouped,
    /// Not for the reader: the reason it is ignored.
    Ignored(&'static str),
}

use KeyRule::*;

/// Every connector key the reader knows. To support another option, add its row here (task
/// by task, e.g. `("time.precision.mode", Flag("time-precision-mode"))` once that flag exists).
pub const CONNECTOR_KEYS: &[(&str, KeyRule)] = &[
    // Kafka Connect's own keys.
    ("name", Ignored("the connector's name in Kafka Connect")),
    (
        "connector.class",
        OnlyValues(&["io.debezium.connector.postgresql.PostgresConnector"]),
    ),
    (
        "tasks.max",
        Ignored("the PostgreSQL connector always runs one task"),
    ),
    (
        "key.converter",
        OnlyValues(&["org.apache.kafka.connect.json.JsonConverter"]),
    ),
    (
        "value.converter",
        OnlyValues(&["org.apache.kafka.connect.json.JsonConverter"]),
    ),
    ("key.converter.schemas.enable", Grouped),
    ("value.converter.schemas.enable", Grouped),
    (
        "key.converter.replace.null.with.default",
        OnlyValues(&["true"]),
    ),
    (
        "value.converter.replace.null.with.default",
        OnlyValues(&["true"]),
    ),
    (
        "header.converter",
        OnlyValues(&["org.apache.kafka.connect.storage.SimpleHeaderConverter"]),
    ),
    ("transforms", Grouped),
    (
        "errors.log.enable",
        Ignored("Kafka Connect's error log; the reader logs every problem"),
    ),
    (
        "errors.log.include.messages",
        Ignored("Kafka Connect's error log; the reader logs every problem"),
    ),
    (
        "topic.creation.default.partitions",
        Flag("topic-partitions"),
    ),
    (
        "topic.creation.default.replication.factor",
        Flag("topic-replication-factor"),
    ),
    // The connection: one URL.
    ("database.hostname", Grouped),
    ("database.port", Grouped),
    ("database.user", Grouped),
    ("database.password", Grouped),
    ("database.dbname", Grouped),
    ("database.sslmode", OnlyValues(&["disable"])),
    ("plugin.name", OnlyValues(&["pgoutput"])),
    // Slot and publication.
    ("slot.name", Flag("slot-name")),
    ("slot.drop.on.stop", FlagWhenTrue("drop-slot-on-exit")),
    ("publication.name", Flag("publication-name")),
    ("publication.autocreate.mode", Grouped),
    ("table.include.list", Grouped),
    ("status.update.interval.ms", Convert(status_interval)),
    // Topics and records.
    ("topic.prefix", Flag("topic-prefix")),
    ("snapshot.mode", Convert(snapshot_mode)),
    ("snapshot.max.threads", Flag("snapshot-max-threads")),
    ("signal.data.collection", Flag("signal-data-collection")),
    (
        "incremental.snapshot.chunk.size",
        Flag("incremental-snapshot-chunk-size"),
    ),
    ("decimal.handling.mode", Flag("decimal-handling")),
    ("tombstones.on.delete", FlagWhenFalse("no-tombstones")),
    (
        "provide.transaction.metadata",
        FlagWhenTrue("provide-transaction-metadata"),
    ),
    ("heartbeat.interval.ms", Convert(heartbeat_interval)),
    ("heartbeat.action.query", Flag("heartbeat-action-query")),
    (
        "heartbeat.topics.prefix",
        OnlyValues(&["__debezium-heartbeat"]),
    ),
    (
        "topic.heartbeat.prefix",
        OnlyValues(&["__debezium-heartbeat"]),
    ),
    ("topic.transaction", OnlyValues(&["transaction"])),
    ("topic.delimiter", OnlyValues(&["."])),
    // Value and record options (README "Options"): the flag is the key with dashes.
    // (`column.mask.with.N.chars` / `column.truncate.to.N.chars` have a number in the key:
    // see `numbered_column_key`.)
    ("time.precision.mode", Flag("time-precision-mode")),
    ("binary.handling.mode", Flag("binary-handling-mode")),
    ("interval.handling.mode", Flag("interval-handling-mode")),
    ("hstore.handling.mode", Flag("hstore-handling-mode")),
    (
        "unavailable.value.placeholder",
        Flag("unavailable-value-placeholder"),
    ),
    (
        "schema.name.adjustment.mode",
        Flag("schema-name-adjustment-mode"),
    ),
    (
        "field.name.adjustment.mode",
        Flag("field-name-adjustment-mode"),
    ),
    (
        "include.unknown.datatypes",
        Flag("include-unknown-datatypes"),
    ),
    ("column.include.list", Flag("column-include-list")),
    ("column.exclude.list", Flag("column-exclude-list")),
    ("message.key.columns", Flag("message-key-columns")),
    ("skipped.operations", Flag("skipped-operations")),
    (
        "column.propagate.source.type",
        Flag("column-propagate-source-type"),
    ),
    (
        "datatype.propagate.source.type",
        Flag("datatype-propagate-source-type"),
    ),
    // Tuning of Debezium's own queue and polling: the reader has its own backpressure.
    ("max.batch.size", Ignored("Debezium's internal batch size")),
    (
        "max.queue.size",
        Ignored("Debezium's internal queue; the reader waits on Kafka instead"),
    ),
    (
        "max.queue.size.in.bytes",
        Ignored("Debezium's internal queue"),
    ),
    ("poll.interval.ms", Ignored("Debezium's internal polling")),
    (
        "snapshot.fetch.size",
        Ignored("the snapshot reads with a cursor of its own"),
    ),
];

/// The keys of an `ExtractNewRecordState` transform (`transforms.<alias>.<key>`).
pub const UNWRAP_KEYS: &[(&str, KeyRule)] = &[
    (
        "delete.tombstone.handling.mode",
        Flag("unwrap-delete-tombstone-handling-mode"),
    ),
    ("delete.handling.mode", Flag("unwrap-delete-handling-mode")),
    ("drop.tombstones", Flag("unwrap-drop-tombstones")),
    ("add.fields", Flag("unwrap-add-fields")),
    ("add.fields.prefix", Flag("unwrap-add-fields-prefix")),
    ("add.headers", Flag("unwrap-add-headers")),
    ("add.headers.prefix", Flag("unwrap-add-headers-prefix")),
    ("replace.null.with.default", OnlyValues(&["true"])),
    ("route.by.field", OnlyValues(&[""])),
    ("drop.fields.header.name", OnlyValues(&[""])),
];

/// The keys of a `ByLogicalTableRouter` transform.
pub const ROUTER_KEYS: &[(&str, KeyRule)] = &[
    ("topic.regex", Flag("route-topic-regex")),
    ("topic.replacement", Flag("route-topic-replacement")),
    (
        "key.enforce.uniqueness",
        Flag("route-key-enforce-uniqueness"),
    ),
    ("key.field.name", Flag("route-key-field-name")),
    ("key.field.regex", Flag("route-key-field-regex")),
    ("key.field.replacement", Flag("route-key-field-replacement")),
    ("schema.name.adjustment.mode", OnlyValues(&["none"])),
    ("logical.table.cache.size", Ignored("a cache size")),
];

/// `column.mask.with.N.chars=R` -> `--column-mask-with-chars N:R`, and the same for
/// `column.truncate.to.N.chars`.
fn numbered_column_key(key: &str, value: &str) -> Option<ConfigFlag> {
    let numbered = |prefix: &str| {
        key.strip_prefix(prefix)?
            .strip_suffix(".chars")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(|n| format!("{n}:{value}"))
    };
    if let Some(value) = numbered("column.mask.with.") {
        return Some(ConfigFlag {
            flag: "column-mask-with-chars",
            value: Some(value),
        });
    }
    numbered("column.truncate.to.").map(|value| ConfigFlag {
        flag: "column-truncate-to-chars",
        value: Some(value),
    })
}

const UNWRAP_TYPE: &str = "io.debezium.transforms.ExtractNewRecordState";
const ROUTER_TYPE: &str = "io.debezium.transforms.ByLogicalTableRouter";

/// One flag from the configuration: its long name (without `--`) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFlag {
    pub flag: &'static str,
    pub value: Option<String>,
}

/// A key the reader does not support, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedKey {
    pub key: String,
    pub reason: String,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DebeziumConfigError {
    #[error("cannot read the Debezium configuration {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("the Debezium configuration {path} is not valid {format}: {reason}")]
    Syntax {
        path: String,
        format: &'static str,
        reason: String,
    },
    #[error("{}", unsupported_message(path, keys))]
    Unsupported {
        path: String,
        keys: Vec<UnsupportedKey>,
    },
}

fn unsupported_message(path: &str, keys: &[UnsupportedKey]) -> String {
    let mut text = format!(
        "the Debezium configuration {path} has {} key(s) cdc-reader does not support:\n",
        keys.len()
    );
    for key in keys {
        text.push_str(&format!("  - {}: {}\n", key.key, key.reason));
    }
    text.push_str(
        "Remove these keys (or set them to Debezium's default) and start again; \
         `cdc-reader --help` lists what the reader does, and the README's cdc-reader section \
         lists the keys it maps.",
    );
    text
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    Json,
    Properties,
}

impl ConfigFormat {
    /// `.json`, or text that starts with `{`, is JSON; anything else is a `.properties` file.
    pub fn detect(path: &Path, text: &str) -> Self {
        let json_name = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if json_name || text.trim_start().starts_with('{') {
            ConfigFormat::Json
        } else {
            ConfigFormat::Properties
        }
    }
}

/// The key/value pairs of a configuration file.
pub fn parse(
    path: &str,
    text: &str,
    format: ConfigFormat,
) -> Result<BTreeMap<String, String>, DebeziumConfigError> {
    match format {
        ConfigFormat::Json => parse_json(text).map_err(|reason| DebeziumConfigError::Syntax {
            path: path.to_string(),
            format: "JSON",
            reason,
        }),
        ConfigFormat::Properties => Ok(parse_properties(text)),
    }
}

fn parse_json(text: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let object = match value.get("config") {
        Some(config) => config,
        None => &value,
    };
    let object = object
        .as_object()
        .ok_or("expected an object of keys, or {\"name\":..,\"config\":{..}}")?;
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => value.to_string(),
            _ => {
                return Err(format!(
                    "the value of `{key}` is not a string, number or boolean"
                ))
            }
        };
        out.insert(key.clone(), text);
    }
    Ok(out)
}

/// Java `.properties`: `key=value`, `key: value` or `key value`; `#`/`!` comments; a trailing
/// backslash continues the line; `\t`, `\n`, `\uXXXX` and `\<char>` escapes.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (key, value) = split_property(&logical);
        out.insert(unescape(&key), unescape(&value));
        logical.clear();
    }
    if !logical.is_empty() {
        let (key, value) = split_property(&logical);
        out.insert(unescape(&key), unescape(&value));
    }
    out
}

fn split_property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' => break,
            _ => i += 1,
        }
    }
    let key: String = chars[..i.min(chars.len())].iter().collect();
    let mut rest = &chars[i.min(chars.len())..];
    while let Some((' ' | '\t', tail)) = rest.split_first() {
        rest = tail;
    }
    if let Some(('=' | ':', tail)) = rest.split_first() {
        rest = tail;
    }
    while let Some((' ' | '\t', tail)) = rest.split_first() {
        rest = tail;
    }
    (key, rest.iter().collect())
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn milliseconds(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number of milliseconds"))
}

fn status_interval(value: &str) -> Converted {
    Ok(vec![(
        "status-interval",
        Some(format!("{}ms", milliseconds(value)?)),
    )])
}

fn heartbeat_interval(value: &str) -> Converted {
    let ms = milliseconds(value)?;
    Ok(if ms == 0 {
        Vec::new() // Debezium's 0: no heartbeats, the reader's default
    } else {
        vec![("heartbeat-interval", Some(format!("{ms}ms")))]
    })
}

fn snapshot_mode(value: &str) -> Converted {
    let mode = match value.trim().to_ascii_lowercase().as_str() {
        "initial" => "initial",
        "always" => "always",
        "no_data" | "never" => "no-data",
        "initial_only" => "initial-only",
        other => {
            return Err(format!(
            "snapshot mode `{other}` is not supported (initial, always, no_data, initial_only are)"
        ))
        }
    };
    Ok(vec![("snapshot-mode", Some(mode.to_string()))])
}

fn is_true(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{value}` is not true or false")),
    }
}

/// Applies one rule; an unsupported value becomes an entry of `unsupported`.
fn apply_rule(
    key: &str,
    value: &str,
    rule: KeyRule,
    flags: &mut Vec<ConfigFlag>,
    unsupported: &mut Vec<UnsupportedKey>,
) {
    let mut refuse = |reason: String| {
        unsupported.push(UnsupportedKey {
            key: format!("{key}={value}"),
            reason,
        })
    };
    match rule {
        Flag(flag) => flags.push(ConfigFlag {
            flag,
            value: Some(value.to_string()),
        }),
        FlagWhenTrue(flag) | FlagWhenFalse(flag) => match is_true(value) {
            Ok(b) if b == matches!(rule, FlagWhenTrue(_)) => {
                flags.push(ConfigFlag { flag, value: None })
            }
            Ok(_) => {}
            Err(reason) => refuse(reason),
        },
        Convert(convert) => match convert(value) {
            Ok(converted) => flags.extend(
                converted
                    .into_iter()
                    .map(|(flag, value)| ConfigFlag { flag, value }),
            ),
            Err(reason) => refuse(reason),
        },
        OnlyValues(values) => {
            if !values.iter().any(|v| v.eq_ignore_ascii_case(value.trim())) {
                if values == [""] {
                    refuse("not supported by cdc-reader (leave it unset)".into());
                } else {
                    let allowed: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                    refuse(format!(
                        "cdc-reader supports only {} here",
                        allowed.join(" or ")
                    ));
                }
            }
        }
        Grouped | Ignored(_) => {}
    }
}

/// Turns a configuration into flags, or lists every key the reader does not support.
pub fn translate(
    path: &str,
    config: &BTreeMap<String, String>,
) -> Result<Vec<ConfigFlag>, DebeziumConfigError> {
    let mut flags = Vec::new();
    let mut unsupported = Vec::new();
    let aliases: Vec<String> = config
        .get("transforms")
        .map(|list| {
            list.split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default();

    for (key, value) in config {
        if value.contains("${") && value.contains('}') {
            unsupported.push(UnsupportedKey {
                key: key.clone(),
                reason: "a Kafka Connect config provider (`${..}`): put the value itself in the file, or pass the flag (e.g. --database-url) or its environment variable".into(),
            });
            continue;
        }
        if let Some((_, rule)) = CONNECTOR_KEYS.iter().find(|(k, _)| k == key) {
            apply_rule(key, value, *rule, &mut flags, &mut unsupported);
            continue;
        }
        if key.starts_with("transforms.") || key.starts_with("predicates") {
            continue; // read per alias below
        }
        if let Some(flag) = numbered_column_key(key, value) {
            flags.push(flag);
            continue;
        }
        let hint = match key.as_str() {
            "database.server.name" => "Debezium 1.x's name for topic.prefix: rename it",
            "table.exclude.list" | "schema.include.list" | "schema.exclude.list" => {
                "cdc-reader selects tables by table.include.list (literal schema.table names) only"
            }
            k if k.starts_with("column.") => "column options are not supported yet",
            _ => "not supported by cdc-reader",
        };
        unsupported.push(UnsupportedKey {
            key: key.clone(),
            reason: hint.into(),
        });
    }

    database_url(config, &mut flags, &mut unsupported);
    tables(config, &mut flags, &mut unsupported);
    schemas(config, &mut flags, &mut unsupported);
    transforms(config, &aliases, &mut flags, &mut unsupported);

    // Debezium without the outbox EventRouter writes plain change events for every table.
    flags.push(ConfigFlag {
        flag: "outbox-table",
        value: Some("none".into()),
    });

    if unsupported.is_empty() {
        Ok(flags)
    } else {
        Err(DebeziumConfigError::Unsupported {
            path: path.to_string(),
            keys: unsupported,
        })
    }
}

/// `database.hostname/port/user/password/dbname` -> one `--database-url`.
fn database_url(
    config: &BTreeMap<String, String>,
    flags: &mut Vec<ConfigFlag>,
    unsupported: &mut Vec<UnsupportedKey>,
) {
    let get = |key: &str| config.get(key).map(|v| v.trim().to_string());
    let (host, port, user, password, dbname) = (
        get("database.hostname"),
        get("database.port"),
        get("database.user"),
        get("database.password"),
        get("database.dbname"),
    );
    if host.is_none() && port.is_none() && user.is_none() && password.is_none() && dbname.is_none()
    {
        return; // the reader's own default (or --database-url / DATABASE_URL)
    }
    let mut missing = Vec::new();
    for (key, value) in [
        ("database.hostname", &host),
        ("database.user", &user),
        ("database.dbname", &dbname),
    ] {
        if value.is_none() {
            missing.push(key);
        }
    }
    if !missing.is_empty() {
        unsupported.push(UnsupportedKey {
            key: missing.join(", "),
            reason: "missing: the database.* keys become one --database-url, which needs the host, user and database name (or give --database-url yourself and drop the database.* keys)".into(),
        });
        return;
    }
    let port = port.unwrap_or_else(|| "5432".into());
    if port.parse::<u16>().is_err() {
        unsupported.push(UnsupportedKey {
            key: format!("database.port={port}"),
            reason: "not a port number".into(),
        });
        return;
    }
    let user = percent_encode(&user.unwrap_or_default());
    let credentials = match password {
        Some(password) => format!("{user}:{}", percent_encode(&password)),
        None => user,
    };
    let host = host.unwrap_or_default();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    flags.push(ConfigFlag {
        flag: "database-url",
        value: Some(format!(
            "postgres://{credentials}@{host}:{port}/{}",
            percent_encode(&dbname.unwrap_or_default())
        )),
    });
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `table.include.list` and `publication.autocreate.mode` -> `--tables` or `--all-tables`.
fn tables(
    config: &BTreeMap<String, String>,
    flags: &mut Vec<ConfigFlag>,
    unsupported: &mut Vec<UnsupportedKey>,
) {
    let mode = config
        .get("publication.autocreate.mode")
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "all_tables".into());
    if !matches!(mode.as_str(), "all_tables" | "filtered") {
        unsupported.push(UnsupportedKey {
            key: format!("publication.autocreate.mode={mode}"),
            reason: "cdc-reader always creates the publication when it is missing (all_tables or filtered)".into(),
        });
    }
    match config.get("table.include.list") {
        Some(list) => {
            let tables: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            let regex_like: Vec<&str> = tables
                .iter()
                .copied()
                .filter(|t| {
                    t.contains(['*', '+', '?', '(', ')', '[', ']', '|', '^', '$', '\\', '{'])
                })
                .collect();
            if !regex_like.is_empty() {
                unsupported.push(UnsupportedKey {
                    key: format!("table.include.list={list}"),
                    reason: format!(
                        "cdc-reader takes literal schema.table names, not regular expressions ({}): list the tables",
                        regex_like.join(", ")
                    ),
                });
                return;
            }
            flags.push(ConfigFlag {
                flag: "tables",
                value: Some(tables.join(",")),
            });
        }
        // Debezium's default: every table (a publication FOR ALL TABLES).
        None => flags.push(ConfigFlag {
            flag: "all-tables",
            value: None,
        }),
    }
}

/// `key.converter.schemas.enable` / `value.converter.schemas.enable` -> `--no-schemas`.
fn schemas(
    config: &BTreeMap<String, String>,
    flags: &mut Vec<ConfigFlag>,
    unsupported: &mut Vec<UnsupportedKey>,
) {
    let read =
        |key: &str| -> Result<bool, String> { config.get(key).map_or(Ok(true), |v| is_true(v)) };
    match (read("key.converter.schemas.enable"), read("value.converter.schemas.enable")) {
        (Ok(true), Ok(true)) => {}
        (Ok(false), Ok(false)) => flags.push(ConfigFlag {
            flag: "no-schemas",
            value: None,
        }),
        (Ok(_), Ok(_)) => unsupported.push(UnsupportedKey {
            key: "key.converter.schemas.enable / value.converter.schemas.enable".into(),
            reason: "cdc-reader writes schemas for both key and value or for neither (--no-schemas): set both alike".into(),
        }),
        (Err(reason), _) | (_, Err(reason)) => unsupported.push(UnsupportedKey {
            key: "*.converter.schemas.enable".into(),
            reason,
        }),
    }
}

/// `transforms=a,b` with `transforms.<alias>.type` and their options -> `--unwrap`,
/// `--route-*`, and `--transform-order` in the configuration's order.
fn transforms(
    config: &BTreeMap<String, String>,
    aliases: &[String],
    flags: &mut Vec<ConfigFlag>,
    unsupported: &mut Vec<UnsupportedKey>,
) {
    let mut order = Vec::new();
    for alias in aliases {
        let prefix = format!("transforms.{alias}.");
        let kind = config
            .get(&format!("{prefix}type"))
            .map(|t| t.trim().to_string());
        let (keys, name) = match kind.as_deref() {
            Some(UNWRAP_TYPE) => (UNWRAP_KEYS, "unwrap"),
            Some(ROUTER_TYPE) => (ROUTER_KEYS, "route"),
            Some(other) => {
                unsupported.push(UnsupportedKey {
                    key: format!("{prefix}type={other}"),
                    reason: format!("cdc-reader runs only {UNWRAP_TYPE} and {ROUTER_TYPE}"),
                });
                continue;
            }
            None => {
                unsupported.push(UnsupportedKey {
                    key: format!("{prefix}type"),
                    reason: format!(
                        "missing: transform `{alias}` is in `transforms` but has no type"
                    ),
                });
                continue;
            }
        };
        if order.contains(&name) {
            unsupported.push(UnsupportedKey {
                key: format!("transforms={}", aliases.join(",")),
                reason: format!("cdc-reader runs each transform once; `{name}` appears twice"),
            });
            continue;
        }
        order.push(name);
        if name == "unwrap" {
            flags.push(ConfigFlag {
                flag: "unwrap",
                value: None,
            });
        }
        for (key, value) in config.range(prefix.clone()..) {
            let Some(option) = key.strip_prefix(&prefix) else {
                break;
            };
            if option == "type" {
                continue;
            }
            match keys.iter().find(|(k, _)| *k == option) {
                Some((_, rule)) => apply_rule(key, value, *rule, flags, unsupported),
                None => unsupported.push(UnsupportedKey {
                    key: key.clone(),
                    reason: match option {
                        "predicate" | "negate" => "transform predicates are not supported".into(),
                        _ => format!("not an option cdc-reader's {name} transform has"),
                    },
                }),
            }
        }
    }
    // Keys of transforms that are not in the `transforms` list, and predicates.
    for key in config.keys() {
        let listed = key
            .strip_prefix("transforms.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(alias, _)| aliases.iter().any(|a| a == alias));
        if key.starts_with("transforms.") && !listed {
            unsupported.push(UnsupportedKey {
                key: key.clone(),
                reason: "its transform is not in the `transforms` list".into(),
            });
        } else if key.starts_with("predicates") {
            unsupported.push(UnsupportedKey {
                key: key.clone(),
                reason: "transform predicates are not supported".into(),
            });
        }
    }
    if !order.is_empty() {
        flags.push(ConfigFlag {
            flag: "transform-order",
            value: Some(order.join(",")),
        });
    }
}

/// The reader's argv with the configuration's flags put in front of the user's arguments,
/// leaving out each flag the user gave (on the command line, or through its environment
/// variable, e.g. `CDC_SLOT_NAME`): the user's choices win over the file's.
pub fn merged_argv(
    command: &clap::Command,
    user_argv: &[OsString],
    from_config: &[ConfigFlag],
    env_is_set: impl Fn(&str) -> bool,
) -> Vec<OsString> {
    let user_flags: Vec<String> = user_argv
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    let env_of = |flag: &str| {
        command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(flag))
            .and_then(|arg| arg.get_env())
            .and_then(|env| env.to_str())
            .map(str::to_string)
    };
    let mut argv: Vec<OsString> = user_argv.iter().take(1).cloned().collect();
    if argv.is_empty() {
        argv.push("cdc-reader".into());
    }
    for flag in from_config {
        let given = user_flags.iter().any(|f| f == flag.flag)
            || env_of(flag.flag).is_some_and(|env| env_is_set(&env));
        if given {
            continue;
        }
        match &flag.value {
            // `--flag=value`: a value starting with `-` stays a value.
            Some(value) => argv.push(format!("--{}={value}", flag.flag).into()),
            None => argv.push(format!("--{}", flag.flag).into()),
        }
    }
    argv.extend(user_argv.iter().skip(1).cloned());
    argv
}

/// The path given with `--debezium-config` (or `CDC_DEBEZIUM_CONFIG`), if any.
fn config_path(user_argv: &[OsString]) -> Option<OsString> {
    let mut args = user_argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--debezium-config" {
            return args.next().cloned();
        }
        if let Some(path) = text.strip_prefix("--debezium-config=") {
            return Some(path.into());
        }
    }
    std::env::var_os("CDC_DEBEZIUM_CONFIG").filter(|p| !p.is_empty())
}

/// For `main.rs`: reads the file named by `--debezium-config` and returns the argv to parse
/// (the user's argv as it is when there is no such flag).
pub fn load_into_argv(
    command: &clap::Command,
    user_argv: Vec<OsString>,
) -> Result<Vec<OsString>, DebeziumConfigError> {
    let Some(path) = config_path(&user_argv) else {
        return Ok(user_argv);
    };
    let path = Path::new(&path);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| DebeziumConfigError::Read {
        path: shown.clone(),
        error,
    })?;
    let config = parse(&shown, &text, ConfigFormat::detect(path, &text))?;
    let flags = translate(&shown, &config)?;
    tracing::info!(path = %shown, flags = flags.len(), "read the Debezium configuration");
    Ok(merged_argv(command, &user_argv, &flags, |env| {
        std::env::var_os(env).is_some()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReaderArgs;
    use clap::{CommandFactory, Parser};

    fn flags_of(config: &[(&str, &str)]) -> Result<Vec<String>, DebeziumConfigError> {
        let map = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = translate("test.json", &map)?;
        Ok(flags
            .into_iter()
            .map(|f| match f.value {
                Some(v) => format!("--{}={v}", f.flag),
                None => format!("--{}", f.flag),
            })
            .collect())
    }

    #[test]
    fn a_typical_configuration_becomes_flags() {
        let flags = flags_of(&[
            (
                "connector.class",
                "io.debezium.connector.postgresql.PostgresConnector",
            ),
            ("tasks.max", "1"),
            ("database.hostname", "db.example"),
            ("database.port", "5433"),
            ("database.user", "app"),
            ("database.password", "s3cr@t/"),
            ("database.dbname", "shop"),
            ("plugin.name", "pgoutput"),
            ("slot.name", "shop_slot"),
            ("publication.name", "shop_pub"),
            ("topic.prefix", "shop"),
            ("table.include.list", "public.orders, public.order_items"),
            ("snapshot.mode", "no_data"),
            ("tombstones.on.delete", "false"),
            ("heartbeat.interval.ms", "10000"),
            ("decimal.handling.mode", "string"),
            ("provide.transaction.metadata", "true"),
            ("key.converter.schemas.enable", "false"),
            ("value.converter.schemas.enable", "false"),
            ("transforms", "route,unwrap"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            (
                "transforms.unwrap.delete.tombstone.handling.mode",
                "rewrite",
            ),
            ("transforms.unwrap.add.fields", "op,lsn"),
            (
                "transforms.route.type",
                "io.debezium.transforms.ByLogicalTableRouter",
            ),
            ("transforms.route.topic.regex", "(.*)"),
            ("transforms.route.topic.replacement", "$1_all"),
        ])
        .unwrap();
        for expected in [
            "--database-url=postgres://app:s3cr%40t%2F@db.example:5433/shop",
            "--slot-name=shop_slot",
            "--publication-name=shop_pub",
            "--topic-prefix=shop",
            "--tables=public.orders,public.order_items",
            "--snapshot-mode=no-data",
            "--no-tombstones",
            "--heartbeat-interval=10000ms",
            "--decimal-handling=string",
            "--provide-transaction-metadata",
            "--no-schemas",
            "--unwrap",
            "--unwrap-delete-tombstone-handling-mode=rewrite",
            "--unwrap-add-fields=op,lsn",
            "--route-topic-regex=(.*)",
            "--route-topic-replacement=$1_all",
            "--transform-order=route,unwrap",
            "--outbox-table=none",
        ] {
            assert!(
                flags.contains(&expected.to_string()),
                "{expected} in {flags:?}"
            );
        }
        // And clap takes them all.
        let mut argv = vec!["cdc-reader".to_string()];
        argv.extend(flags);
        let args = ReaderArgs::try_parse_from(argv).unwrap();
        assert!(args.unwrap && args.no_schemas && args.no_tombstones);
        assert_eq!(args.tables, vec!["public.orders", "public.order_items"]);
    }

    #[test]
    fn every_unsupported_key_is_listed_at_once() {
        let error = flags_of(&[
            (
                "connector.class",
                "io.debezium.connector.mysql.MySqlConnector",
            ),
            ("plugin.name", "decoderbufs"),
            (
                "column.mask.hash.SHA-256.with.salt.pepper",
                "public.orders.secret",
            ),
            ("database.server.name", "old"),
            ("schema.include.list", "public"),
            ("database.password", "${file:/secrets:pw}"),
            ("transforms", "unwrap,filter"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            ("transforms.unwrap.route.by.field", "kind"),
            ("transforms.filter.type", "io.debezium.transforms.Filter"),
            ("transforms.other.type", "x"),
        ])
        .unwrap_err();
        let DebeziumConfigError::Unsupported { keys, .. } = &error else {
            panic!("{error}")
        };
        let listed: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        for key in [
            "connector.class=io.debezium.connector.mysql.MySqlConnector",
            "plugin.name=decoderbufs",
            "column.mask.hash.SHA-256.with.salt.pepper",
            "database.server.name",
            "schema.include.list",
            "database.password",
            "transforms.unwrap.route.by.field=kind",
            "transforms.filter.type=io.debezium.transforms.Filter",
            "transforms.other.type",
        ] {
            assert!(listed.contains(&key), "{key} in {listed:?}");
        }
        let message = error.to_string();
        assert!(message.contains("Remove these keys"), "{message}");
        assert!(message.contains("rename it"), "{message}");
    }

    #[test]
    fn debezium_defaults_and_kafka_connect_keys_are_accepted() {
        let flags = flags_of(&[
            ("name", "inventory-connector"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("topic.delimiter", "."),
            ("heartbeat.interval.ms", "0"),
            ("max.batch.size", "2048"),
        ])
        .unwrap();
        assert_eq!(flags, vec!["--all-tables", "--outbox-table=none"]);
    }

    #[test]
    fn json_forms_and_properties_files_are_read() {
        let posted =
            r#"{"name":"c","config":{"slot.name":"s","tasks.max":1,"tombstones.on.delete":false}}"#;
        let bare = r#"{"slot.name":"s","tasks.max":"1","tombstones.on.delete":"false"}"#;
        let properties =
            "# a comment\nslot.name = s\ntasks.max: 1\n! another\ntombstones.on.delete false\n";
        for (text, format) in [
            (posted, ConfigFormat::Json),
            (bare, ConfigFormat::Json),
            (properties, ConfigFormat::Properties),
        ] {
            let map = parse("f", text, format).unwrap();
            assert_eq!(
                map.get("slot.name").map(String::as_str),
                Some("s"),
                "{text}"
            );
            assert_eq!(map.get("tasks.max").map(String::as_str), Some("1"));
            assert_eq!(
                map.get("tombstones.on.delete").map(String::as_str),
                Some("false")
            );
        }
        let map = parse_properties("transforms.route.topic.regex=(.*)\\\\.public\\\\.(.*)\nlong=a\\\n    b\nesc=\\u0041\\:");
        assert_eq!(map["transforms.route.topic.regex"], r"(.*)\.public\.(.*)");
        assert_eq!(map["long"], "ab");
        assert_eq!(map["esc"], "A:");
        assert_eq!(
            ConfigFormat::detect(Path::new("x.properties"), " {\"a\":1}"),
            ConfigFormat::Json
        );
        assert_eq!(
            ConfigFormat::detect(Path::new("x.conf"), "a=b"),
            ConfigFormat::Properties
        );
    }

    #[test]
    fn the_sample_configurations_translate_and_parse() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/debezium-configs"
        );
        for file in ["shop-unwrap.json", "shop-routed.properties"] {
            let path = Path::new(dir).join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let config = parse(file, &text, ConfigFormat::detect(&path, &text)).unwrap();
            let flags = translate(file, &config).unwrap();
            let argv = merged_argv(
                &ReaderArgs::command(),
                &["cdc-reader".into()],
                &flags,
                |_| false,
            );
            let args = ReaderArgs::try_parse_from(&argv).unwrap();
            assert!(args.unwrap, "{file}");
            assert_eq!(args.topic_prefix, "shop");
            assert_eq!(
                args.database.database_url,
                "postgres://playground:playground@127.0.0.1:55432/playground"
            );
            if file.ends_with(".properties") {
                assert_eq!(
                    args.route_topic_regex.as_deref(),
                    Some(r"shop\.public\.(.*)")
                );
                assert_eq!(args.unwrap_add_headers, "op,table");
            }
        }
    }

    #[test]
    fn flags_and_environment_variables_of_the_user_win() {
        let command = ReaderArgs::command();
        let from_config = vec![
            ConfigFlag {
                flag: "slot-name",
                value: Some("from_file".into()),
            },
            ConfigFlag {
                flag: "topic-prefix",
                value: Some("file_prefix".into()),
            },
            ConfigFlag {
                flag: "tables",
                value: Some("public.a,public.b".into()),
            },
            ConfigFlag {
                flag: "route-topic-replacement",
                value: Some("-x".into()),
            },
        ];
        let user: Vec<OsString> = [
            "cdc-reader",
            "--debezium-config",
            "f.json",
            "--tables=public.c",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let argv = merged_argv(&command, &user, &from_config, |env| {
            env == "CDC_TOPIC_PREFIX"
        });
        let args = ReaderArgs::try_parse_from(&argv).unwrap();
        assert_eq!(args.slot_name, "from_file");
        assert_eq!(
            args.tables,
            vec!["public.c"],
            "the user's --tables, not merged with the file's"
        );
        assert_eq!(args.route_topic_replacement.as_deref(), Some("-x"));
        // The environment variable wins: the file's --topic-prefix is left out.
        assert!(!argv
            .iter()
            .any(|a| a.to_string_lossy().starts_with("--topic-prefix")));
    }
}
