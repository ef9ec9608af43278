//! Catalog facts that pgoutput does not send, read with an ordinary SQL connection.
//!
//! A pgoutput Relation message names a table's columns, their type OIDs and which are part of
//! the key, but Debezium's schemas also say whether a column is NOT NULL (`"optional": false`),
//! its constant DEFAULT, an enum's allowed labels, and an array's element type. cdc-reader asks
//! `pg_attribute` / `pg_type` / `pg_enum` for these once per Relation message (so a schema
//! change mid-stream is picked up) and the envelope builder turns them into schemas.
//!
//! The catalog is read "now", while the Relation message describes the table as of its WAL
//! position. Columns are matched by name, so an `ALTER TABLE` between the two only costs the
//! newer column's facts, never a wrong type: types always come from the Relation message.

use std::collections::HashMap;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// What the catalog says about one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnFacts {
    pub not_null: bool,
    /// `pg_get_expr` of the column default, e.g. `'NEW'::text` or `now()`.
    pub default_expr: Option<String>,
    /// The type's name (`numeric`, `_text`, the enum's name, ...).
    pub type_name: String,
    /// For arrays: the element type's OID.
    pub element_type_oid: Option<u32>,
    /// For enums (and arrays of enums): the labels in order.
    pub enum_values: Option<Vec<String>>,
    /// For a domain: its base type (Debezium maps a domain as its base type).
    pub domain_base: Option<DomainBase>,
}

/// The base type of a domain column: `pg_type.typbasetype`, `typtypmod` and the base's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainBase {
    pub type_oid: u32,
    /// The domain's type modifier (`numeric(10,2)` of `CREATE DOMAIN price AS numeric(10,2)`).
    pub type_modifier: i32,
    pub type_name: String,
}

/// What the catalog says about one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFacts {
    /// Per column, by name.
    pub columns: HashMap<String, ColumnFacts>,
    /// The primary key's columns in key order (Debezium's message key), or else the columns of
    /// a `REPLICA IDENTITY USING INDEX` index; empty when the table has neither.
    pub key_columns: Vec<String>,
}

/// Errors reading the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot connect to PostgreSQL at {target} to read the catalog: {source}")]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error("reading the catalog for {table} failed: {source}")]
    Query {
        table: String,
        source: tokio_postgres::Error,
    },
    /// The connection closed under the reader (a server restart, `pg_terminate_backend`).
    #[error("the catalog connection to PostgreSQL was lost: {0}")]
    Lost(String),
}

/// The catalog connection's `application_name` (unless the URL sets one).
pub const APPLICATION_NAME: &str = "cdc-reader catalog";

/// An ordinary (non-replication) SQL connection for catalog look-ups.
pub struct Catalog {
    client: Client,
}

const COLUMNS_SQL: &str = "
SELECT a.attname::text,
       a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       t.typname::text,
       -- Only true arrays: `name`, `point` and a few others have a typelem too.
       CASE WHEN t.typcategory = 'A' THEN NULLIF(t.typelem, 0) END::oid AS element_type_oid,
       (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
          FROM pg_enum e
         WHERE e.enumtypid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END) AS enum_values,
       b.oid AS base_type_oid, t.typtypmod AS base_type_modifier, b.typname::text AS base_type_name
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped";

const KEY_SQL: &str = "
SELECT a.attname::text
  FROM pg_index i
  JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = $1::oid
   AND i.indexrelid = (SELECT indexrelid FROM pg_index
                        WHERE indrelid = $1::oid AND (indisprimary OR indisreplident)
                        ORDER BY indisprimary DESC LIMIT 1)
 ORDER BY k.position";

impl Catalog {
    /// Connects to `url` (a `postgres://` URL).
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        Self::connect_with_timeout(url, Duration::from_secs(60)).await
    }

    /// Connects to `url` within `timeout`, with TCP keepalives (and a TCP user timeout of
    /// `timeout`), so a server that vanished is noticed instead of waited for forever. After a
    /// restart the reader connects a new catalog for each replication session.
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<Self, CatalogError> {
        let connect_error = |source| CatalogError::Connect {
            target: db::describe(url),
            source,
        };
        let mut config: tokio_postgres::Config = url.parse().map_err(connect_error)?;
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME); // what pg_stat_activity shows
        }
        #[cfg(target_os = "linux")]
        config.tcp_user_timeout(timeout);
        let (client, connection) = config.connect(NoTls).await.map_err(connect_error)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                let reason = error
                    .as_db_error()
                    .map(|db| format!("{}: {}", db.code().code(), db.message()))
                    .unwrap_or_else(|| error.to_string());
                tracing::warn!(%reason, "the catalog connection closed (the reader starts a new session with a new one when it next needs it)");
            }
        });
        Ok(Catalog { client })
    }

    /// Facts for relation `relation_id` (named `table` in error messages).
    pub async fn table(&self, relation_id: u32, table: &str) -> Result<TableFacts, CatalogError> {
        let key_rows = self
            .client
            .query(KEY_SQL, &[&relation_id])
            .await
            .map_err(|source| CatalogError::Query {
                table: table.to_string(),
                source,
            })?;
        let key_columns = key_rows.iter().map(|row| row.get::<_, String>(0)).collect();
        Ok(TableFacts {
            columns: self.columns(relation_id, table).await?,
            key_columns,
        })
    }

    /// Facts for every column of relation `relation_id`, by column name.
    pub async fn columns(
        &self,
        relation_id: u32,
        table: &str,
    ) -> Result<HashMap<String, ColumnFacts>, CatalogError> {
        let rows = self
            .client
            .query(COLUMNS_SQL, &[&relation_id])
            .await
            .map_err(|source| CatalogError::Query {
                table: table.to_string(),
                source,
            })?;
        let mut facts = HashMap::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0);
            facts.insert(
                name,
                ColumnFacts {
                    not_null: row.get(1),
                    default_expr: row.get(2),
                    type_name: row.get(3),
                    element_type_oid: row.get(4),
                    enum_values: row.get(5),
                    domain_base: row.get::<_, Option<u32>>(6).map(|type_oid| DomainBase {
                        type_oid,
                        type_modifier: row.get(7),
                        type_name: row.get(8),
                    }),
                },
            );
        }
        Ok(facts)
    }

    /// The underlying client, for other catalog questions (e.g. the snapshot).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the connection is gone (queries would fail with "connection closed").
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
