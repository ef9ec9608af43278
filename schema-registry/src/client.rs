//! The schema registry's Confluent REST API, the three calls a record needs, cached.
//!
//! ```text
//! POST {base}/subjects/{subject}/versions  {"schema":"<Avro schema text>"}  -> {"id":7}
//!      409: incompatible with the subject's latest version (the compatibility rule refuses it)
//! GET  {base}/schemas/ids/{id}                                              -> {"schema":"..."}
//! GET  {base}/schemas/ids/{id}/versions                                     -> [{"subject":..,"version":..}]
//! ```
//!
//! `base` is what a Confluent client is given: `http://127.0.0.1:58081/apis/ccompat/v7` for the
//! stack's Apicurio Registry. A schema is registered once per subject and content (the registry
//! answers the same id for the same schema: registering is idempotent, so a restarted reader
//! just asks again), and a writer schema is fetched once per id.
//!
//! Errors say whether waiting helps: [`RegistryError::is_transient`] is true when the registry
//! did not answer (down, restarting, a 5xx), false when it answered no.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use serde_json::{json, Value as Json};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What went wrong talking to the registry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("the schema registry at {url} does not answer ({reason}). Start it with `scripts/stack up`, or set SCHEMA_REGISTRY_URL / --schema-registry-url")]
    Unreachable { url: String, reason: String },
    #[error("the schema registry refuses the new schema of subject `{subject}` as incompatible: {message}")]
    Incompatible { subject: String, message: String },
    #[error("the schema registry has no schema with id {id}")]
    UnknownId { id: u32 },
    #[error("the schema registry refused {what}: HTTP {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    #[error("the schema registry's answer to {what} is not what the Confluent API says: {reason}")]
    BadAnswer { what: String, reason: String },
}

impl RegistryError {
    /// True when the registry did not answer: waiting and asking again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}

/// A writer schema fetched by id, with the Connect schema a reader of JSON records needs
/// (worked out once here, not once per record).
#[derive(Debug, Clone)]
pub struct WriterSchema {
    pub id: u32,
    pub text: String,
    pub schema: Schema,
    /// The Connect schema (as `JsonConverter` writes it) of this Avro schema.
    pub connect: serde_json::Value,
    /// [`Self::connect`] as JSON text.
    pub connect_text: String,
    /// How its datums read as JSON payloads without a value tree (`None`: a schema the view
    /// does not handle; the reference path reads its datums).
    pub view: Option<crate::datum_view::DatumView>,
}

impl WriterSchema {
    /// The writer schema `id` of Avro schema `text` (parsed as `schema`).
    pub fn new(id: u32, text: String, schema: Schema) -> WriterSchema {
        let avro: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let connect = crate::avro_json::connect_schema(&avro);
        let connect_text = connect.to_string();
        let view = crate::datum_view::DatumView::new(&schema).ok();
        WriterSchema {
            id,
            text,
            schema,
            connect,
            connect_text,
            view,
        }
    }
}

/// A client of one registry, with its caches.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    ids: HashMap<(String, String), u32>,
    schemas: HashMap<u32, Arc<WriterSchema>>,
}

impl RegistryClient {
    /// A client of the registry at `base` (e.g. `http://127.0.0.1:58081/apis/ccompat/v7`).
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        RegistryClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            ids: HashMap::new(),
            schemas: HashMap::new(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Fails with [`RegistryError::Unreachable`] unless the registry answers `GET /subjects`.
    pub async fn check_reachable(&self) -> Result<(), RegistryError> {
        self.get_json(&format!("{}/subjects", self.base), "the subject list")
            .await
            .map(|_| ())
    }

    /// The id of `schema` under `subject`, registering it when the subject lacks it (cached).
    pub async fn register(&mut self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.get(&key) {
            return Ok(*id);
        }
        let url = format!("{}/subjects/{}/versions", self.base, encode_path(subject));
        let what = format!("the schema of subject `{subject}`");
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(json!({ "schema": schema }).to_string())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.unreachable(e))?;
        if status.as_u16() == 409 {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                message: error_message(&body),
            });
        }
        let answer = self.check_status(status, &body, &what)?;
        let id = answer
            .get("id")
            .and_then(Json::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| RegistryError::BadAnswer {
                what,
                reason: format!("no id in {body}"),
            })?;
        tracing::info!(subject, id, "schema registered");
        self.ids.insert(key, id);
        Ok(id)
    }

    /// The writer schema with this id (cached).
    pub async fn schema_by_id(&mut self, id: u32) -> Result<Arc<WriterSchema>, RegistryError> {
        if let Some(schema) = self.schemas.get(&id) {
            return Ok(schema.clone());
        }
        let url = format!("{}/schemas/ids/{id}", self.base);
        let what = format!("schema id {id}");
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.unreachable(e))?;
        if status.as_u16() == 404 {
            return Err(RegistryError::UnknownId { id });
        }
        let answer = self.check_status(status, &body, &what)?;
        let text = answer
            .get("schema")
            .and_then(Json::as_str)
            .ok_or_else(|| RegistryError::BadAnswer {
                what: what.clone(),
                reason: format!("no schema in {body}"),
            })?
            .to_string();
        let schema = Schema::parse_str(&text).map_err(|e| RegistryError::BadAnswer {
            what,
            reason: format!("not an Avro schema: {e}"),
        })?;
        let schema = Arc::new(WriterSchema::new(id, text, schema));
        self.schemas.insert(id, schema.clone());
        Ok(schema)
    }

    /// The subjects (and versions) that hold schema `id`: `[("t-value", 1)]`.
    pub async fn subjects_of(&self, id: u32) -> Result<Vec<(String, u64)>, RegistryError> {
        let answer = self
            .get_json(
                &format!("{}/schemas/ids/{id}/versions", self.base),
                &format!("the subjects of schema id {id}"),
            )
            .await?;
        Ok(answer
            .as_array()
            .map(|versions| {
                versions
                    .iter()
                    .filter_map(|v| {
                        Some((
                            v.get("subject")?.as_str()?.to_string(),
                            v.get("version")?.as_u64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The versions a subject has: `[1, 2]`.
    pub async fn versions(&self, subject: &str) -> Result<Vec<u64>, RegistryError> {
        let answer = self
            .get_json(
                &format!("{}/subjects/{}/versions", self.base, encode_path(subject)),
                &format!("the versions of `{subject}`"),
            )
            .await?;
        Ok(answer
            .as_array()
            .map(|v| v.iter().filter_map(Json::as_u64).collect())
            .unwrap_or_default())
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<Json, RegistryError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.unreachable(e))?;
        self.check_status(status, &body, what)
    }

    fn check_status(
        &self,
        status: reqwest::StatusCode,
        body: &str,
        what: &str,
    ) -> Result<Json, RegistryError> {
        if status.is_server_error() {
            return Err(RegistryError::Unreachable {
                url: self.base.clone(),
                reason: format!("HTTP {status}: {}", error_message(body)),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Refused {
                what: what.to_string(),
                status: status.as_u16(),
                message: error_message(body),
            });
        }
        serde_json::from_str(body).map_err(|e| RegistryError::BadAnswer {
            what: what.to_string(),
            reason: format!("not JSON ({e}): {body}"),
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> RegistryError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            reason = format!("{reason}: {inner}");
            source = inner.source();
        }
        RegistryError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }
}

/// The `message` of a Confluent error body (`{"error_code":409,"message":"..."}`), or the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Json>(body)
        .ok()
        .and_then(|j| j.get("message").and_then(Json::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(500).collect())
}

/// Subjects are topic names plus `-key`/`-value`: letters, digits, `.`, `_`, `-`; anything
/// else is percent-encoded.
fn encode_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"message":"Incompatible artifact: t-value","error_code":409}"#),
            "Incompatible artifact: t-value"
        );
        assert_eq!(error_message("gateway down"), "gateway down");
    }

    #[test]
    fn subjects_are_path_safe() {
        assert_eq!(
            encode_path("dbserver1.public.orders-value"),
            "dbserver1.public.orders-value"
        );
        assert_eq!(encode_path("a b/c"), "a%20b%2Fc");
    }

    #[tokio::test]
    async fn a_registry_that_does_not_listen_is_unreachable_and_transient() {
        let client = RegistryClient::new("http://127.0.0.1:9/apis/ccompat/v7");
        let error = client.check_reachable().await.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(error.to_string().contains("scripts/stack up"), "{error}");
    }
}
