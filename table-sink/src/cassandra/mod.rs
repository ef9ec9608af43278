//! The Cassandra target: `--to cassandra://host:port/keyspace`, with the `scylla` driver
//! (a maintained CQL driver that speaks to Apache Cassandra as well as to ScyllaDB).
//!
//! ```text
//! Batch of RowChanges ─> tables known? (system_schema; --auto-create: CREATE KEYSPACE / TABLE,
//!                        ALTER TABLE ADD for a new field) ─> plan (pure: last change per row,
//!                        groups by partition) ─> prepared INSERT / DELETE, one unlogged batch
//!                        per partition group, groups sent concurrently ─> all acknowledged
//!                        ─> Ok: the loop commits the offsets to the Kafka group
//! ```
//!
//! **Delivery, in plain words.** Cassandra has no transaction that could hold the rows and
//! the Kafka offsets together, so the offsets are committed to the consumer group only after
//! Cassandra acknowledged every write of the batch (at the `--consistency` asked for). A crash
//! between the two means the batch is read and written again: delivery is at-least-once. But
//! every write is an upsert or a delete by primary key, so writing a change twice leaves the
//! same row as writing it once: the *effect* is exactly-once. (One visible trace: a row written
//! again with `--ttl` starts its time to live again.)
//!
//! Errors: a value that does not fit its column, a key that is missing or null, a table that
//! does not exist without `--auto-create` -> [`TargetError::Record`] (dead letter); Cassandra
//! down, timing out or overloaded -> [`TargetError::Unavailable`] (the loop waits, retries the
//! same batch and commits nothing past it).
//!
//! The pure parts: [`types`] (the type map) and [`plan`] (statements, grouping, CQL text).

pub mod plan;
pub mod types;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use scylla::statement::batch::{Batch as CqlBatch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;

use self::plan::{KeyLayout, Statement, Step, TableSchema};
use self::types::{cql_type_for, CqlType};
use crate::change::RowChange;
use crate::target::{Batch, OffsetStore, Target, TargetError};

/// How many partition groups of a batch are in flight at once.
const CONCURRENT_GROUPS: usize = 32;

/// The Cassandra target's flags (after `--to cassandra://...`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CassandraArgs {
    /// Cassandra: time to live of every row written, in seconds (`INSERT ... USING TTL`).
    #[arg(long, env = "TABLE_SINK_TTL", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub ttl: Option<u32>,

    /// Cassandra: the consistency level of the writes (one, quorum, local_quorum, all).
    #[arg(
        long,
        env = "TABLE_SINK_CONSISTENCY",
        value_enum,
        default_value = "local_quorum",
        global = true
    )]
    pub consistency: ConsistencyLevel,

    /// Cassandra: create the keyspace (SimpleStrategy, replication factor 1) and missing
    /// tables from the records' schemas, and add missing columns.
    #[arg(long, env = "TABLE_SINK_AUTO_CREATE", global = true)]
    pub auto_create: bool,

    /// Cassandra: the partition key columns of a table --auto-create makes, comma-separated
    /// [default: the record's key].
    #[arg(
        long,
        env = "TABLE_SINK_PARTITION_KEY",
        value_delimiter = ',',
        global = true
    )]
    pub partition_key: Vec<String>,

    /// Cassandra: the clustering columns of a table --auto-create makes, comma-separated.
    #[arg(
        long,
        env = "TABLE_SINK_CLUSTERING_KEY",
        value_delimiter = ',',
        global = true
    )]
    pub clustering_key: Vec<String>,
}

/// `--consistency`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ConsistencyLevel {
    One,
    Quorum,
    #[default]
    LocalQuorum,
    All,
}

impl ConsistencyLevel {
    fn driver(self) -> Consistency {
        match self {
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::Quorum => Consistency::Quorum,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::All => Consistency::All,
        }
    }
}

/// What the target needs besides the URL.
#[derive(Debug, Clone, Default)]
pub struct CassandraOptions {
    pub ttl: Option<u32>,
    pub consistency: ConsistencyLevel,
    /// Create the keyspace and tables, add columns (`--auto-create`, or
    /// `--schema-evolution basic`).
    pub auto_create: bool,
    pub layout: KeyLayout,
}

impl CassandraOptions {
    pub fn from_args(args: &CassandraArgs, schema_evolution: bool) -> Self {
        CassandraOptions {
            ttl: args.ttl,
            consistency: args.consistency,
            auto_create: args.auto_create || schema_evolution,
            layout: KeyLayout {
                partition_key: trimmed(&args.partition_key),
                clustering_key: trimmed(&args.clustering_key),
            },
        }
    }
}

fn trimmed(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// A connected Cassandra target.
pub struct CassandraTarget {
    session: Session,
    url: String,
    keyspace: String,
    options: CassandraOptions,
    /// Tables of the keyspace as last read (or made); dropped on a schema error.
    schemas: HashMap<String, TableSchema>,
    prepared: HashMap<String, PreparedStatement>,
    keyspace_checked: bool,
}

impl CassandraTarget {
    /// Connects to the contact points of `url` (`cassandra://host:port/keyspace`).
    pub async fn connect(url: &str, options: CassandraOptions) -> Result<Self, TargetError> {
        let (hosts, keyspace) = plan::parse_url(url).map_err(TargetError::unavailable)?;
        let session = SessionBuilder::new()
            .known_nodes(&hosts)
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .map_err(|e| {
                TargetError::unavailable(format!(
                    "cannot connect to Cassandra at {}: {e}",
                    hosts.join(",")
                ))
            })?;
        Ok(CassandraTarget {
            session,
            url: url.trim().to_string(),
            keyspace,
            options,
            schemas: HashMap::new(),
            prepared: HashMap::new(),
            keyspace_checked: false,
        })
    }

    /// The keyspace rows go to.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// The driver session (tests read the tables back through it).
    pub fn session(&self) -> &Session {
        &self.session
    }

    async fn ddl(&self, cql: &str) -> Result<(), TargetError> {
        tracing::info!(cql, "cassandra schema change");
        match self.session.query_unpaged(cql, &[]).await {
            Ok(_) => Ok(()),
            // Another sink made it first: fine.
            Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                DbError::AlreadyExists { .. },
                _,
            ))) => Ok(()),
            // Refused (a name Cassandra does not take...): the plan then names the change
            // that needs it, and that record is dead-lettered.
            Err(error) if is_record_error(&error) => {
                tracing::warn!(cql, %error, "Cassandra refused a schema change");
                Ok(())
            }
            Err(error) => Err(classify(error, None)),
        }
    }

    /// Reads a table's columns and key from `system_schema` (`None`: no such table).
    async fn load_schema(&self, table: &str) -> Result<Option<TableSchema>, TargetError> {
        let result = self
            .session
            .query_unpaged(
                "SELECT column_name, kind, position, type FROM system_schema.columns \
                 WHERE keyspace_name = ? AND table_name = ?",
                (&self.keyspace, table),
            )
            .await
            .map_err(|e| classify(e, None))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| TargetError::unavailable(format!("reading system_schema.columns: {e}")))?;
        let mut schema = TableSchema::default();
        let mut partition = Vec::new();
        let mut clustering = Vec::new();
        let typed = rows
            .rows::<(String, String, i32, String)>()
            .map_err(|e| TargetError::unavailable(format!("reading system_schema.columns: {e}")))?;
        for row in typed {
            let (name, kind, position, ty) = row.map_err(|e| {
                TargetError::unavailable(format!("reading system_schema.columns: {e}"))
            })?;
            match kind.as_str() {
                "partition_key" => partition.push((position, name.clone())),
                "clustering" => clustering.push((position, name.clone())),
                _ => {}
            }
            schema.columns.insert(name, CqlType::parse(&ty));
        }
        if schema.columns.is_empty() {
            return Ok(None);
        }
        partition.sort();
        clustering.sort();
        schema.partition_key = partition.into_iter().map(|(_, n)| n).collect();
        schema.clustering_key = clustering.into_iter().map(|(_, n)| n).collect();
        Ok(Some(schema))
    }

    /// Makes sure every table of the batch is known, and (with --auto-create) exists and has
    /// every column of the batch's rows. What cannot be made is left to the plan, which
    /// names the change it cannot write.
    async fn prepare_tables(&mut self, batch: &Batch) -> Result<(), TargetError> {
        if self.options.auto_create && !self.keyspace_checked {
            self.ddl(&plan::create_keyspace(&self.keyspace)).await?;
            self.keyspace_checked = true;
        }
        let mut seen = HashSet::new();
        for (_, change) in &batch.changes {
            let table = change.table().table.clone();
            if seen.insert(table.clone()) && !self.schemas.contains_key(&table) {
                if let Some(schema) = self.load_schema(&table).await? {
                    self.schemas.insert(table.clone(), schema);
                }
            }
            let RowChange::Upsert { row, .. } = change else {
                continue;
            };
            if !self.options.auto_create {
                continue;
            }
            let Some(schema) = self.schemas.get(&table) else {
                // Created from the first row that reaches it; a row that cannot make one is
                // the plan's to refuse (it names the change).
                let Ok(cql) = plan::create_table(&self.keyspace, &table, row, &self.options.layout)
                else {
                    continue;
                };
                self.ddl(&cql).await?;
                if let Some(schema) = self.load_schema(&table).await? {
                    self.schemas.insert(table.clone(), schema);
                }
                continue;
            };
            let missing: Vec<(String, CqlType)> = row
                .fields
                .iter()
                .filter(|f| !schema.columns.contains_key(&f.name))
                .map(|f| (f.name.clone(), cql_type_for(&f.ty)))
                .collect();
            if missing.is_empty() {
                continue;
            }
            for (name, ty) in &missing {
                self.ddl(&plan::add_column(&self.keyspace, &table, name, ty))
                    .await?;
            }
            if let Some(schema) = self.load_schema(&table).await? {
                self.schemas.insert(table.clone(), schema);
            }
        }
        Ok(())
    }

    async fn prepared(
        &mut self,
        cql: &str,
        index: usize,
    ) -> Result<PreparedStatement, TargetError> {
        if let Some(statement) = self.prepared.get(cql) {
            return Ok(statement.clone());
        }
        let mut statement = self
            .session
            .prepare(cql)
            .await
            .map_err(|e| classify_prepare(e, cql, index))?;
        statement.set_consistency(self.options.consistency.driver());
        statement.set_is_idempotent(true);
        self.prepared.insert(cql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Runs one partition group: a single statement, or an unlogged batch of them.
    async fn run_group(
        session: &Session,
        consistency: Consistency,
        group: &[(PreparedStatement, &Statement)],
    ) -> Result<(), (usize, ExecutionError)> {
        if let [(prepared, statement)] = group {
            return session
                .execute_unpaged(prepared, &statement.values)
                .await
                .map(drop)
                .map_err(|e| (statement.index, e));
        }
        let mut batch = CqlBatch::new(BatchType::Unlogged);
        batch.set_consistency(consistency);
        batch.set_is_idempotent(true);
        let mut values = Vec::with_capacity(group.len());
        for (prepared, statement) in group {
            batch.append_statement(prepared.clone());
            values.push(&statement.values);
        }
        match session.batch(&batch, values).await {
            Ok(_) => Ok(()),
            Err(error) if is_record_error(&error) => {
                // Which statement? One at a time, the first that fails is the one.
                for (prepared, statement) in group {
                    if let Err(error) = session.execute_unpaged(prepared, &statement.values).await {
                        return Err((statement.index, error));
                    }
                }
                Err((group[0].1.index, error))
            }
            Err(error) => Err((group[0].1.index, error)),
        }
    }
}

impl Target for CassandraTarget {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn offset_store(&self) -> OffsetStore {
        OffsetStore::KafkaGroup
    }

    async fn stored_offsets(
        &mut self,
        _group_id: &str,
    ) -> Result<Vec<crate::change::Position>, TargetError> {
        Ok(Vec::new())
    }

    async fn write(&mut self, _group_id: &str, batch: &Batch) -> Result<(), TargetError> {
        if batch.changes.is_empty() {
            return Ok(());
        }
        self.prepare_tables(batch).await?;
        let steps = plan::plan(
            &self.keyspace,
            &batch.changes,
            &self.schemas,
            self.options.ttl,
        )
        .map_err(|e| TargetError::Record {
            index: e.index,
            message: e.message,
        })?;
        for step in &steps {
            match step {
                Step::Truncate { index, cql } => {
                    self.session
                        .query_unpaged(cql.as_str(), &[])
                        .await
                        .map_err(|e| classify(e, Some(*index)))?;
                }
                Step::Writes(groups) => {
                    let mut prepared_groups = Vec::with_capacity(groups.len());
                    for group in groups {
                        let mut prepared = Vec::with_capacity(group.len());
                        for statement in group {
                            prepared.push((
                                self.prepared(&statement.cql, statement.index).await?,
                                statement,
                            ));
                        }
                        prepared_groups.push(prepared);
                    }
                    // Partitions on the same replicas share a batch (plan::merge_by_replicas).
                    let ring = self.session.get_cluster_state();
                    let replicas = prepared_groups
                        .iter()
                        .map(|group| {
                            let (prepared, statement) = group.first()?;
                            let token = prepared.calculate_token(&statement.values).ok()??;
                            let table = prepared.get_table_spec()?;
                            let mut hosts: Vec<_> = ring
                                .get_token_endpoints(table.ks_name(), table.table_name(), token)
                                .iter()
                                .map(|(node, _)| node.host_id)
                                .collect();
                            hosts.sort();
                            Some(hosts)
                        })
                        .collect();
                    let prepared_groups = plan::merge_by_replicas(prepared_groups, replicas);
                    let session = &self.session;
                    let consistency = self.options.consistency.driver();
                    // Up to CONCURRENT_GROUPS groups in flight; the first failure ends the step.
                    let mut groups = prepared_groups.iter();
                    let mut in_flight = FuturesUnordered::new();
                    for group in groups.by_ref().take(CONCURRENT_GROUPS) {
                        in_flight.push(Self::run_group(session, consistency, group));
                    }
                    let mut outcome = Ok(());
                    while let Some(result) = in_flight.next().await {
                        if let Err(failed) = result {
                            outcome = Err(failed);
                            break;
                        }
                        if let Some(group) = groups.next() {
                            in_flight.push(Self::run_group(session, consistency, group));
                        }
                    }
                    drop(in_flight);
                    if let Err((index, error)) = outcome {
                        let error = classify(error, Some(index));
                        if matches!(error, TargetError::Record { .. }) {
                            // The table may have changed under us: read it again next time.
                            self.schemas.clear();
                        }
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether Cassandra refused the statement itself (a retry would fail the same way).
fn is_record_error(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::BadQuery(_) => true,
        ExecutionError::LastAttemptError(attempt) => is_record_attempt_error(attempt),
        _ => false,
    }
}

fn is_record_attempt_error(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::SerializationError(_)
        | RequestAttemptError::CqlRequestSerialization(_) => true,
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Invalid | DbError::SyntaxError | DbError::FunctionFailure { .. }
        ),
        _ => false,
    }
}

/// A driver error as the loop needs it: the record's fault (with the change index) or
/// Cassandra's (wait and retry).
fn classify(error: ExecutionError, index: Option<usize>) -> TargetError {
    match index {
        Some(index) if is_record_error(&error) => TargetError::Record {
            index,
            message: format!("Cassandra refused the write: {error}"),
        },
        _ => TargetError::unavailable(format!("Cassandra: {error}")),
    }
}

fn classify_prepare(error: PrepareError, cql: &str, index: usize) -> TargetError {
    match &error {
        PrepareError::AllAttemptsFailed { first_attempt }
            if is_record_attempt_error(first_attempt) =>
        {
            TargetError::Record {
                index,
                message: format!("Cassandra refused `{cql}`: {error}"),
            }
        }
        _ => TargetError::unavailable(format!("Cassandra could not prepare `{cql}`: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn cassandra_flags_parse_with_their_defaults() {
        let cli = crate::Cli::parse_from([
            "table-sink",
            "--topics",
            "a",
            "--to",
            "cassandra://h:9042/ks",
        ]);
        assert_eq!(
            cli.sink.cassandra.consistency,
            ConsistencyLevel::LocalQuorum
        );
        assert_eq!(cli.sink.cassandra.ttl, None);
        let cli = crate::Cli::parse_from([
            "table-sink",
            "--topics",
            "a",
            "--to",
            "cassandra://h:9042/ks",
            "--ttl",
            "3600",
            "--consistency",
            "local_quorum",
            "--auto-create",
            "--partition-key",
            "customer_id",
            "--clustering-key",
            "id",
        ]);
        let options = CassandraOptions::from_args(&cli.sink.cassandra, false);
        assert_eq!(options.ttl, Some(3600));
        assert!(options.auto_create);
        assert_eq!(options.layout.partition_key, vec!["customer_id"]);
        assert_eq!(options.layout.clustering_key, vec!["id"]);
        assert!(crate::Cli::try_parse_from(["table-sink", "--consistency", "two"]).is_err());
    }
}
