//! JSON objects whose values stay exactly as written: the transforms rearrange records the
//! reader already wrote, and must not re-print a single value on the way.
//!
//! A JsonConverter record is nested objects (`{"schema":..,"payload":..}`, the envelope, the
//! row). A transform takes some of them apart, moves whole values around and puts them back
//! together; the values it does not look into (a row's columns, a column's default, a
//! `double` written as Java writes it) are kept as raw text ([`RawValue`]), so they come out
//! byte for byte as they went in. The order of keys is kept too: Kafka Connect writes fields
//! in schema order, and so do we.
//!
//! ```text
//! {"id":1,"price":1.0E-5}  ->  RawObject [("id", 1), ("price", 1.0E-5)]   (values untouched)
//! ```

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object as an ordered list of keys and raw values.
#[derive(Debug, Clone, Default)]
pub struct RawObject {
    entries: Vec<(String, Box<RawValue>)>,
}

/// Why a record is not the JSON a transform expects (a bug upstream, not bad user input).
#[derive(Debug, thiserror::Error)]
pub enum RawJsonError {
    #[error("not JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("`{0}` is missing or not an object")]
    NotAnObject(String),
}

impl RawObject {
    /// Parses a JSON object; anything else is an error.
    pub fn parse(text: &str) -> Result<Self, RawJsonError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let entries = deserializer.deserialize_map(EntriesVisitor)?;
        deserializer.end()?;
        Ok(RawObject { entries })
    }

    /// Parses bytes the reader wrote.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, RawJsonError> {
        let text =
            std::str::from_utf8(bytes).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        Self::parse(text)
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The object under `key`; None when the key is missing or null.
    pub fn object(&self, key: &str) -> Result<Option<RawObject>, RawJsonError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if is_null(raw) => Ok(None),
            Some(raw) => RawObject::parse(raw.get()).map(Some),
        }
    }

    /// The object under `key`, which must be there.
    pub fn required_object(&self, key: &str) -> Result<RawObject, RawJsonError> {
        self.object(key)?
            .ok_or_else(|| RawJsonError::NotAnObject(key.to_string()))
    }

    /// The string under `key`, None when missing, null or not a string.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }

    /// Replaces the value of `key` where it is, or appends it.
    pub fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// Appends `key` (Kafka Connect adds new fields at the end).
    pub fn push(&mut self, key: &str, value: Box<RawValue>) {
        self.entries.push((key.to_string(), value));
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The object as compact JSON.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(
            self.entries
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 2,
        );
        out.push('{');
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&string_json(key));
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }

    pub fn into_raw(self) -> Box<RawValue> {
        raw(self.to_json())
    }
}

/// The elements of a JSON array, each kept raw.
pub fn array(raw: &RawValue) -> Result<Vec<Box<RawValue>>, RawJsonError> {
    Ok(serde_json::from_str(raw.get())?)
}

/// A JSON array from raw elements.
pub fn array_json(elements: &[Box<RawValue>]) -> Box<RawValue> {
    let parts: Vec<&str> = elements.iter().map(|e| e.get()).collect();
    raw(format!("[{}]", parts.join(",")))
}

pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// JSON text we built ourselves as a raw value.
pub fn raw(json: String) -> Box<RawValue> {
    // Only called with JSON assembled from parsed parts, which is valid by construction.
    RawValue::from_string(json).unwrap_or_else(|_| null())
}

pub fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_string()).expect("null is JSON")
}

/// `s` as a JSON string value.
pub fn string(s: &str) -> Box<RawValue> {
    raw(string_json(s))
}

pub fn boolean(b: bool) -> Box<RawValue> {
    raw(b.to_string())
}

fn string_json(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(String, Box<RawValue>)>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
            entries.push((key, value));
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_order_survive_a_round_trip() {
        let text = r#"{"z":1.0E-5,"a":{"n":[1, 2]},"s":"é\n","b":null}"#;
        let object = RawObject::parse(text).unwrap();
        assert_eq!(object.keys().collect::<Vec<_>>(), ["z", "a", "s", "b"]);
        assert_eq!(
            object.to_json(),
            r#"{"z":1.0E-5,"a":{"n":[1, 2]},"s":"é\n","b":null}"#
        );
        assert_eq!(object.object("b").unwrap().map(|o| o.to_json()), None);
        assert_eq!(object.string("s").as_deref(), Some("é\n"));
    }

    #[test]
    fn set_replaces_in_place_and_push_appends() {
        let mut object = RawObject::parse(r#"{"a":1,"b":2}"#).unwrap();
        object.set("a", string("x"));
        object.push("c", boolean(true));
        object.remove("b");
        assert_eq!(object.to_json(), r#"{"a":"x","c":true}"#);
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert!(RawObject::parse("[1]").is_err());
        assert!(RawObject::parse(r#"{"a":1} x"#).is_err());
    }
}
