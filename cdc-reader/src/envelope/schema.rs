//! Kafka Connect schemas, and how `JsonConverter` writes them (`schemas.enable=true`).
//!
//! Every record carries the schema of its key and value next to the payload. The schema text
//! never changes for a table, so the builder renders it once. `JsonConverter` writes a schema's
//! attributes in a fixed order, leaving out those that are unset, and adds `field` (the field's
//! name) last when the schema sits inside a struct:
//!
//! ```text
//! {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,
//!  "parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"total"}
//!
//!  type, fields | items, optional, name, version, doc, parameters, default, field
//! ```

use super::json;

/// One Kafka Connect schema (a struct, an array or a primitive, possibly a logical type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnectSchema {
    /// `struct`, `array`, `string`, `int64`, `bytes`, `float`, `double`, ...
    pub type_name: &'static str,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<&'static str>,
    /// Written in this order.
    pub parameters: Vec<(&'static str, String)>,
    /// The default value, already rendered as JSON text.
    pub default_json: Option<String>,
    /// Struct fields, in order.
    pub fields: Vec<(String, ConnectSchema)>,
    /// Array element schema.
    pub items: Option<Box<ConnectSchema>>,
    /// Map key and value schemas.
    pub map: Option<Box<(ConnectSchema, ConnectSchema)>>,
}

impl ConnectSchema {
    /// A required primitive (`int64`, `string`, ...).
    pub fn primitive(type_name: &'static str) -> Self {
        ConnectSchema {
            type_name,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: Vec::new(),
            default_json: None,
            fields: Vec::new(),
            items: None,
            map: None,
        }
    }

    /// A required logical type: a primitive with a name and version 1.
    pub fn logical(type_name: &'static str, name: &str) -> Self {
        ConnectSchema {
            name: Some(name.to_string()),
            version: Some(1),
            ..Self::primitive(type_name)
        }
    }

    /// A required struct with these fields.
    pub fn structure(name: Option<String>, fields: Vec<(String, ConnectSchema)>) -> Self {
        ConnectSchema {
            name,
            fields,
            ..Self::primitive("struct")
        }
    }

    /// A required array of `items`.
    pub fn array(items: ConnectSchema) -> Self {
        ConnectSchema {
            items: Some(Box::new(items)),
            ..Self::primitive("array")
        }
    }

    /// A required map from `keys` to `values`.
    pub fn map(keys: ConnectSchema, values: ConnectSchema) -> Self {
        ConnectSchema {
            map: Some(Box::new((keys, values))),
            ..Self::primitive("map")
        }
    }

    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    pub fn with_version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    pub fn with_parameter(mut self, key: &'static str, value: String) -> Self {
        self.parameters.push((key, value));
        self
    }

    /// Renders the schema as `JsonConverter` does; `field` is the name it has inside a struct.
    pub fn write_json(&self, out: &mut String, field: Option<&str>) {
        out.push_str("{\"type\":\"");
        out.push_str(self.type_name);
        out.push('"');
        if self.type_name == "struct" {
            out.push_str(",\"fields\":[");
            for (index, (name, schema)) in self.fields.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                schema.write_json(out, Some(name));
            }
            out.push(']');
        }
        if let Some(items) = &self.items {
            out.push_str(",\"items\":");
            items.write_json(out, None);
        }
        if let Some(map) = &self.map {
            out.push_str(",\"keys\":");
            map.0.write_json(out, None);
            out.push_str(",\"values\":");
            map.1.write_json(out, None);
        }
        out.push_str(if self.optional {
            ",\"optional\":true"
        } else {
            ",\"optional\":false"
        });
        if let Some(name) = &self.name {
            out.push_str(",\"name\":");
            json::push_str(out, name);
        }
        if let Some(version) = self.version {
            out.push_str(&format!(",\"version\":{version}"));
        }
        if let Some(doc) = self.doc {
            out.push_str(",\"doc\":");
            json::push_str(out, doc);
        }
        if !self.parameters.is_empty() {
            out.push_str(",\"parameters\":{");
            for (index, (key, value)) in self.parameters.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                json::push_str(out, key);
                out.push(':');
                json::push_str(out, value);
            }
            out.push('}');
        }
        if let Some(default) = &self.default_json {
            out.push_str(",\"default\":");
            out.push_str(default);
        }
        if let Some(field) = field {
            out.push_str(",\"field\":");
            json::push_str(out, field);
        }
        out.push('}');
    }

    /// The schema as JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, None);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_order_matches_json_converter() {
        let mut decimal = ConnectSchema::logical("bytes", "org.apache.kafka.connect.data.Decimal")
            .with_parameter("scale", "2".into())
            .with_parameter("connect.decimal.precision", "12".into());
        decimal.default_json = Some("\"AA==\"".into());
        let key = ConnectSchema::structure(
            Some("dbz.public.orders.Key".into()),
            vec![
                ("id".into(), ConnectSchema::primitive("int64")),
                ("total".into(), decimal.optional()),
            ],
        );
        assert_eq!(
            key.to_json(),
            r#"{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"default":"AA==","field":"total"}],"optional":false,"name":"dbz.public.orders.Key"}"#
        );
    }

    #[test]
    fn arrays_have_items_before_optional() {
        let array = ConnectSchema::array(ConnectSchema::primitive("string").optional()).optional();
        assert_eq!(
            array.to_json(),
            r#"{"type":"array","items":{"type":"string","optional":true},"optional":true}"#
        );
    }
}
