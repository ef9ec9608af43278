//! Topic routing (`io.debezium.transforms.ByLogicalTableRouter`): records of several physical
//! tables go to one logical topic, e.g. the shards of a table.
//!
//! ```text
//! --route-topic-regex '(.*)customers_shard(.*)' --route-topic-replacement '$1customers_all_shards'
//!
//! topic  dbserver1.public.customers_shard1  ->  dbserver1.public.customers_all_shards
//! key    {"id":1}                           ->  {"id":1,"__dbz__physicalTableIdentifier":"dbserver1.public.customers_shard1"}
//! schema dbserver1.public.customers_shard1.Key / .Value / .Envelope  ->  ..customers_all_shards.Key / ..
//! ```
//!
//! As in Debezium: the regex must match the whole topic name; the replacement uses Java's
//! syntax (`$1`, `${name}`, `\$` for a dollar); a record whose topic does not match, or whose
//! new topic would be empty, passes unchanged. `key.enforce.uniqueness` (default true) adds the
//! key field `key.field.name` (a required string) holding the original topic, or what
//! `key.field.regex`/`key.field.replacement` make of it, so rows of different tables with the
//! same primary key stay apart. A record without key keeps no key; tombstones and records
//! that are not change events (heartbeats) get the new topic and key, their value unchanged.
//! Schema names are not adjusted (`schema.name.adjustment.mode=none`, Debezium's default here).

use std::sync::Arc;

use regex::{Captures, Regex};

use super::raw_json::{self, RawObject};
use super::{Outcome, TransformError};
use crate::changes::OutputRecord;

/// Debezium's default `key.field.name`.
pub const DEFAULT_KEY_FIELD_NAME: &str = "__dbz__physicalTableIdentifier";

/// The options, with Debezium's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterOptions {
    pub topic_regex: String,
    pub topic_replacement: String,
    pub key_enforce_uniqueness: bool,
    pub key_field_name: String,
    pub key_field_regex: Option<String>,
    pub key_field_replacement: Option<String>,
}

/// A regex that must match a whole name, and what to make of the match.
#[derive(Debug, Clone)]
struct Rewrite {
    regex: Regex,
    replacement: Vec<Piece>,
}

/// A part of a Java replacement string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
    Named(String),
}

impl Rewrite {
    fn new(option: &str, regex: &str, replacement: &str) -> Result<Self, String> {
        let anchored = Regex::new(&format!("^(?:{regex})$"))
            .map_err(|e| format!("{option} `{regex}` is not a regex we can use: {e}"))?;
        let replacement = parse_java_replacement(replacement, anchored.captures_len() - 1)
            .map_err(|e| format!("{option}'s replacement `{replacement}`: {e}"))?;
        Ok(Rewrite {
            regex: anchored,
            replacement,
        })
    }

    /// The replacement for `name`, when the regex matches all of it.
    fn apply(&self, name: &str) -> Option<String> {
        let captures = self.regex.captures(name)?;
        Some(expand(&captures, &self.replacement))
    }
}

fn expand(captures: &Captures<'_>, pieces: &[Piece]) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Group(n) => out.push_str(captures.get(*n).map_or("", |m| m.as_str())),
            Piece::Named(name) => out.push_str(captures.name(name).map_or("", |m| m.as_str())),
        }
    }
    out
}

/// Java's `Matcher.appendReplacement` syntax: `$n` takes as many digits as still name a group,
/// `${name}` a named group, a backslash makes the next character literal.
fn parse_java_replacement(text: &str, groups: usize) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let next = chars.get(i + 1).ok_or("a backslash at the end")?;
                literal.push(*next);
                i += 2;
            }
            '$' => {
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                i += 1;
                if chars.get(i) == Some(&'{') {
                    let end = chars[i..]
                        .iter()
                        .position(|c| *c == '}')
                        .ok_or("`${` without `}`")?;
                    pieces.push(Piece::Named(chars[i + 1..i + end].iter().collect()));
                    i += end + 1;
                    continue;
                }
                let first = chars.get(i).and_then(|c| c.to_digit(10)).ok_or(
                    "`$` must be followed by a group number or {name} (write \\$ for a dollar)",
                )? as usize;
                if first > groups {
                    return Err(format!("there is no group {first}"));
                }
                let mut group = first;
                i += 1;
                while let Some(digit) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    let longer = group * 10 + digit as usize;
                    if longer > groups {
                        break;
                    }
                    group = longer;
                    i += 1;
                }
                pieces.push(Piece::Group(group));
            }
            c => {
                literal.push(c);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// The transform, configured.
#[derive(Debug, Clone)]
pub struct TopicRouter {
    topic: Rewrite,
    key_enforce_uniqueness: bool,
    key_field_name: String,
    key_field: Option<Rewrite>,
    schemas_enabled: bool,
}

impl TopicRouter {
    pub fn new(options: &RouterOptions, schemas_enabled: bool) -> Result<Self, String> {
        let key_field = match (
            options.key_field_regex.as_deref().map(str::trim),
            options.key_field_replacement.as_deref().map(str::trim),
        ) {
            (None | Some(""), _) => None,
            (Some(_), None | Some("")) => {
                return Err(
                    "key.field.replacement must be non-empty if key.field.regex is set".into(),
                )
            }
            (Some(regex), Some(replacement)) => {
                Some(Rewrite::new("key.field.regex", regex, replacement)?)
            }
        };
        Ok(TopicRouter {
            topic: Rewrite::new(
                "topic.regex",
                &options.topic_regex,
                &options.topic_replacement,
            )?,
            key_enforce_uniqueness: options.key_enforce_uniqueness,
            key_field_name: options.key_field_name.clone(),
            key_field,
            schemas_enabled,
        })
    }

    /// The topic a record of `topic` goes to (None: unchanged).
    pub fn route(&self, topic: &str) -> Option<String> {
        let routed = self.topic.apply(topic)?;
        if routed.is_empty() {
            tracing::warn!(
                topic,
                "topic.regex made an empty topic name; the record keeps its topic"
            );
            return None;
        }
        Some(routed)
    }

    pub fn apply(&self, record: &OutputRecord) -> Result<Outcome, TransformError> {
        let Some(new_topic) = self.route(&record.topic) else {
            return Ok(Outcome::Unchanged);
        };
        let key = match &record.key {
            None => None,
            Some(key) => Some(self.key(key, &record.topic, &new_topic)?),
        };
        let value = match &record.value {
            Some(value) if self.schemas_enabled => Some(rename_envelope(value, &new_topic)?),
            other => other.clone(),
        };
        Ok(Outcome::Replaced(OutputRecord {
            topic: Arc::from(new_topic.as_str()),
            key,
            value,
            headers: record.headers.clone(),
        }))
    }

    fn key(&self, key: &[u8], old_topic: &str, new_topic: &str) -> Result<Vec<u8>, TransformError> {
        let identifier = self
            .key_field
            .as_ref()
            .and_then(|rewrite| rewrite.apply(old_topic))
            .unwrap_or_else(|| old_topic.to_string());
        let add_field = |payload: &mut RawObject| {
            if self.key_enforce_uniqueness {
                payload.push(&self.key_field_name, raw_json::string(&identifier));
            }
        };
        if !self.schemas_enabled {
            let mut payload = RawObject::parse_bytes(key)?;
            add_field(&mut payload);
            return Ok(payload.to_json().into_bytes());
        }
        let mut top = RawObject::parse_bytes(key)?;
        let mut schema = top.required_object("schema")?;
        let mut payload = top.required_object("payload")?;
        schema.set("name", raw_json::string(&format!("{new_topic}.Key")));
        if self.key_enforce_uniqueness {
            let mut fields = match schema.get("fields") {
                Some(fields) => raw_json::array(fields)?,
                None => Vec::new(),
            };
            let mut field = RawObject::default();
            field.push("type", raw_json::string("string"));
            field.push("optional", raw_json::boolean(false));
            field.push("field", raw_json::string(&self.key_field_name));
            fields.push(field.into_raw());
            schema.set("fields", raw_json::array_json(&fields));
        }
        add_field(&mut payload);
        top.set("schema", schema.into_raw());
        top.set("payload", payload.into_raw());
        Ok(top.to_json().into_bytes())
    }
}

/// A change event's schema names follow the new topic: `<topic>.Envelope`, and `<topic>.Value`
/// for `before` and `after`. Values that are not change events are left as they are.
fn rename_envelope(value: &[u8], new_topic: &str) -> Result<Vec<u8>, TransformError> {
    let mut top = RawObject::parse_bytes(value)?;
    let Some(mut schema) = top.object("schema")? else {
        return Ok(value.to_vec());
    };
    if !schema
        .string("name")
        .is_some_and(|name| name.ends_with(".Envelope"))
    {
        return Ok(value.to_vec());
    }
    schema.set("name", raw_json::string(&format!("{new_topic}.Envelope")));
    let mut fields = match schema.get("fields") {
        Some(fields) => raw_json::array(fields)?,
        None => Vec::new(),
    };
    for field in fields.iter_mut() {
        let mut object = RawObject::parse(field.get())?;
        if matches!(object.string("field").as_deref(), Some("before" | "after")) {
            object.set("name", raw_json::string(&format!("{new_topic}.Value")));
            *field = object.into_raw();
        }
    }
    schema.set("fields", raw_json::array_json(&fields));
    top.set("schema", schema.into_raw());
    Ok(top.to_json().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(regex: &str, replacement: &str, schemas: bool) -> TopicRouter {
        TopicRouter::new(
            &RouterOptions {
                topic_regex: regex.into(),
                topic_replacement: replacement.into(),
                key_enforce_uniqueness: true,
                key_field_name: DEFAULT_KEY_FIELD_NAME.into(),
                key_field_regex: None,
                key_field_replacement: None,
            },
            schemas,
        )
        .unwrap()
    }

    fn shard_record() -> OutputRecord {
        OutputRecord {
            topic: Arc::from("dbserver1.public.customers_shard1"),
            key: Some(br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"dbserver1.public.customers_shard1.Key"},"payload":{"id":1}}"#.to_vec()),
            value: Some(concat!(
                r#"{"schema":{"type":"struct","fields":["#,
                r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"dbserver1.public.customers_shard1.Value","field":"before"},"#,
                r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"dbserver1.public.customers_shard1.Value","field":"after"},"#,
                r#"{"type":"string","optional":false,"field":"op"}],"optional":false,"name":"dbserver1.public.customers_shard1.Envelope","version":2},"#,
                r#""payload":{"before":null,"after":{"id":1},"op":"c"}}"#
            ).as_bytes().to_vec()),
            headers: vec![("h".into(), b"v".to_vec())],
        }
    }

    #[test]
    fn routes_topic_key_and_schema_names_as_debezium_does() {
        let routed = router("(.*)customers_shard(.*)", "$1customers_all_shards", true);
        let Outcome::Replaced(out) = routed.apply(&shard_record()).unwrap() else {
            panic!("routed")
        };
        assert_eq!(&*out.topic, "dbserver1.public.customers_all_shards");
        assert_eq!(
            String::from_utf8(out.key.unwrap()).unwrap(),
            concat!(
                r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},"#,
                r#"{"type":"string","optional":false,"field":"__dbz__physicalTableIdentifier"}],"optional":false,"#,
                r#""name":"dbserver1.public.customers_all_shards.Key"},"#,
                r#""payload":{"id":1,"__dbz__physicalTableIdentifier":"dbserver1.public.customers_shard1"}}"#
            )
        );
        assert_eq!(
            String::from_utf8(out.value.unwrap()).unwrap(),
            concat!(
                r#"{"schema":{"type":"struct","fields":["#,
                r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"dbserver1.public.customers_all_shards.Value","field":"before"},"#,
                r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"dbserver1.public.customers_all_shards.Value","field":"after"},"#,
                r#"{"type":"string","optional":false,"field":"op"}],"optional":false,"name":"dbserver1.public.customers_all_shards.Envelope","version":2},"#,
                r#""payload":{"before":null,"after":{"id":1},"op":"c"}}"#
            )
        );
        assert_eq!(out.headers, vec![("h".to_string(), b"v".to_vec())]);
    }

    #[test]
    fn a_topic_that_does_not_match_all_the_way_is_not_routed() {
        let routed = router("customers_shard(.*)", "all", true);
        assert!(matches!(
            routed.apply(&shard_record()).unwrap(),
            Outcome::Unchanged
        ));
    }

    #[test]
    fn without_schemas_and_with_a_key_field_rewrite() {
        let routed = TopicRouter::new(
            &RouterOptions {
                topic_regex: r"dbserver1\.public\.customers_shard(\d+)".into(),
                topic_replacement: "customers".into(),
                key_enforce_uniqueness: true,
                key_field_name: "shard".into(),
                key_field_regex: Some(r".*_shard(\d+)".into()),
                key_field_replacement: Some("s$1".into()),
            },
            false,
        )
        .unwrap();
        let record = OutputRecord {
            key: Some(br#"{"id":1}"#.to_vec()),
            value: None,
            ..shard_record()
        };
        let Outcome::Replaced(out) = routed.apply(&record).unwrap() else {
            panic!("routed")
        };
        assert_eq!(&*out.topic, "customers");
        assert_eq!(
            out.key.as_deref(),
            Some(br#"{"id":1,"shard":"s1"}"#.as_slice())
        );
        assert_eq!(out.value, None, "a tombstone stays a tombstone");
    }

    #[test]
    fn key_enforce_uniqueness_false_only_renames_the_key_schema() {
        let mut options = RouterOptions {
            topic_regex: "(.*)_shard1".into(),
            topic_replacement: "$1".into(),
            key_enforce_uniqueness: false,
            key_field_name: DEFAULT_KEY_FIELD_NAME.into(),
            key_field_regex: None,
            key_field_replacement: None,
        };
        let routed = TopicRouter::new(&options, true).unwrap();
        let Outcome::Replaced(out) = routed.apply(&shard_record()).unwrap() else {
            panic!("routed")
        };
        assert_eq!(
            String::from_utf8(out.key.unwrap()).unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"dbserver1.public.customers.Key"},"payload":{"id":1}}"#
        );
        options.key_field_regex = Some("x".into());
        assert!(TopicRouter::new(&options, true)
            .unwrap_err()
            .contains("key.field.replacement must be non-empty"));
    }

    #[test]
    fn java_replacements_are_understood() {
        assert_eq!(
            parse_java_replacement(r"a$1${n}\$$12", 11).unwrap(),
            vec![
                Piece::Text("a".into()),
                Piece::Group(1),
                Piece::Named("n".into()),
                Piece::Text("$".into()),
                Piece::Group(1),
                Piece::Text("2".into()),
            ]
        );
        // $12 is group 12 only when there are 12 groups; else group 1 and a "2".
        assert_eq!(
            parse_java_replacement("$12", 11).unwrap(),
            vec![Piece::Group(1), Piece::Text("2".into())]
        );
        assert_eq!(
            parse_java_replacement("$12", 12).unwrap(),
            vec![Piece::Group(12)]
        );
        assert!(parse_java_replacement("$x", 1).is_err());
        assert!(parse_java_replacement("$2", 1).is_err());
        let heartbeat = router("__debezium-heartbeat\\.(.*)", "hb.$1", true);
        assert_eq!(
            heartbeat.route("__debezium-heartbeat.dbserver1").as_deref(),
            Some("hb.dbserver1")
        );
    }
}
