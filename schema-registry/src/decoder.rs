//! A record in the Confluent wire format -> its JSON payload (and Connect schema): what a
//! reader of Avro records does before the code that reads JSON records runs.
//!
//! ```text
//! 00 <id> <datum> ──wire::decode──> id ──registry (once per id)──> writer schema
//!                                   datum ──Avro binary, writer schema──> value ──> JSON payload
//! ```

use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::avro_json;
use crate::client::{RegistryClient, RegistryError, WriterSchema};
use crate::wire::{self, WireError};

/// Why bytes did not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the datum does not match its writer schema (id {id}): {reason}")]
    Datum { id: u32, reason: String },
}

impl DecodeError {
    /// True when the registry did not answer: wait and decode the same bytes again (never
    /// dead-letter for this).
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::Registry(e) if e.is_transient())
    }
}

/// One decoded record.
#[derive(Debug, Clone)]
pub struct DecodedRecord {
    pub writer: Arc<WriterSchema>,
    /// The payload as `JsonConverter` would have written it.
    pub payload: Json,
}

impl DecodedRecord {
    pub fn schema_id(&self) -> u32 {
        self.writer.id
    }

    /// `{"schema":<Connect schema>,"payload":<payload>}`: the JSON record with schemas.
    pub fn connect_json(&self) -> Json {
        json!({"schema": self.writer.connect, "payload": self.payload})
    }

    /// [`Self::connect_json`] as bytes, the schema part the same bytes for every record of a
    /// writer schema (so a reader that caches by those bytes parses only the payload).
    pub fn connect_json_bytes(&self) -> Vec<u8> {
        let payload = self.payload.to_string();
        let mut out = Vec::with_capacity(self.writer.connect_text.len() + payload.len() + 24);
        out.extend_from_slice(br#"{"schema":"#);
        out.extend_from_slice(self.writer.connect_text.as_bytes());
        out.extend_from_slice(br#","payload":"#);
        out.extend_from_slice(payload.as_bytes());
        out.push(b'}');
        out
    }
}

/// Decodes records, fetching each writer schema once.
#[derive(Debug, Clone)]
pub struct AvroDecoder {
    client: RegistryClient,
}

impl AvroDecoder {
    pub fn new(client: RegistryClient) -> Self {
        AvroDecoder { client }
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    pub async fn decode(&mut self, bytes: &[u8]) -> Result<DecodedRecord, DecodeError> {
        let (writer, datum) = self.writer_of(bytes).await?;
        let payload = decode_datum(&writer, datum)?;
        Ok(DecodedRecord { writer, payload })
    }

    /// The writer schema a record names (fetched once per id) and the datum's bytes, for a
    /// reader that reads the datum itself ([`WriterSchema::view`]).
    pub async fn writer_of<'b>(
        &mut self,
        bytes: &'b [u8],
    ) -> Result<(Arc<WriterSchema>, &'b [u8]), DecodeError> {
        let (id, datum) = wire::decode(bytes)?;
        Ok((self.client.schema_by_id(id).await?, datum))
    }
}

/// The datum under its writer schema, as JSON; every byte must be used.
pub fn decode_datum(writer: &WriterSchema, mut datum: &[u8]) -> Result<Json, DecodeError> {
    let bad = |reason: String| DecodeError::Datum {
        id: writer.id,
        reason,
    };
    let value = apache_avro::reader::datum::GenericDatumReader::builder(&writer.schema)
        .build()
        .and_then(|reader| reader.read_value(&mut datum))
        .map_err(|e| bad(e.to_string()))?;
    if !datum.is_empty() {
        return Err(bad(format!("{} bytes left after the datum", datum.len())));
    }
    Ok(avro_json::payload_json(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(text: &str) -> WriterSchema {
        WriterSchema::new(
            3,
            text.into(),
            apache_avro::Schema::parse_str(text).unwrap(),
        )
    }

    #[test]
    fn a_datum_decodes_and_leftovers_are_an_error() {
        let schema =
            writer(r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}"#);
        assert_eq!(decode_datum(&schema, &[0x54]).unwrap(), json!({"id": 42}));
        let error = decode_datum(&schema, &[0x54, 0x00]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the datum does not match its writer schema (id 3): 1 bytes left after the datum"
        );
        assert!(decode_datum(&schema, &[]).is_err());
    }
}
