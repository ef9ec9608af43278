//! The PostgreSQL target (`--to postgres://...`): Debezium JDBC sink semantics, exactly once.
//!
//! One batch = one transaction:
//!
//! ```text
//! BEGIN
//!   (schema evolution: CREATE TABLE / ALTER TABLE ADD COLUMN, when --schema-evolution basic)
//!   TRUNCATE / DELETE ... IN (unnest) / INSERT ... SELECT unnest ... ON CONFLICT DO UPDATE
//!   INSERT INTO table_sink_offsets (group_id, topic, partition, next_offset) ... ON CONFLICT
//! COMMIT
//! ```
//!
//! The offsets are rows of the target database, written in the same transaction as the rows
//! they stand for: a crash (of the sink or of PostgreSQL) leaves either both or neither, and the
//! sink starts again from `table_sink_offsets`. So the mirror holds every record exactly once.
//!
//! A statement that fails because of a value ([`is_record_error`]: a value that overflows its
//! column, a null in a NOT NULL column, a key the table cannot take, a missing table with
//! `--schema-evolution none`) rolls the batch back; the batch is then replayed one change at a
//! time to find the culprit, which the loop dead-letters ([`TargetError::Record`]). A lost
//! connection or a server shutting down is [`TargetError::Unavailable`]: wait, retry.
//!
//! - [`plan`]: a batch -> few set-based statements (last change per key wins).
//! - [`sql`]: the statements' text. [`types`]: FieldType -> column type, Value -> text.

pub mod plan;
pub mod sql;
pub mod types;

use std::collections::HashMap;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Row as _, Transaction};

use crate::change::{Field, Position, TableId};
use crate::config::{InsertMode, SchemaEvolution};
use crate::target::{Batch, OffsetStore, Target, TargetError};
use plan::Step;

/// The table of the target database where the sink keeps its offsets.
pub const OFFSETS_TABLE: &str = "table_sink_offsets";

const CREATE_OFFSETS: &str = "CREATE TABLE IF NOT EXISTS table_sink_offsets (
    group_id     text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    next_offset  bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition))";

/// The columns of one target table, as the catalog says.
#[derive(Debug, Clone, Default)]
struct TableColumns {
    /// (name, `format_type` of the column), in column order.
    columns: Vec<(String, String)>,
}

impl TableColumns {
    fn type_of(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }
}

/// The PostgreSQL target's settings.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub insert_mode: InsertMode,
    pub schema_evolution: SchemaEvolution,
}

/// Writes batches into one PostgreSQL database.
pub struct PostgresTarget {
    pool: PgPool,
    description: String,
    options: PostgresOptions,
    /// The tables seen so far; cleared when a transaction fails (its DDL went with it).
    tables: HashMap<TableId, TableColumns>,
}

/// Whether a failed statement failed because of the data it was given (dead-letter the
/// record) rather than the server (retry): SQLSTATE classes 22 (data exception: overflow,
/// bad text for the type), 23 (integrity: NOT NULL, unique, check), 42 (a missing table or
/// column, a type that does not match, no unique index for ON CONFLICT; but not 42501, a
/// missing privilege, which waiting and a GRANT fix).
pub fn is_record_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            (code.starts_with("22") || code.starts_with("23") || code.starts_with("42"))
                && code != "42501"
        }),
        _ => false,
    }
}

/// What failed in a step: a record's data, or the server.
enum StepError {
    Record { index: usize, message: String },
    Server(String),
}

fn step_error(index: usize, error: sqlx::Error) -> StepError {
    if is_record_error(&error) {
        StepError::Record {
            index,
            message: error.to_string(),
        }
    } else {
        StepError::Server(error.to_string())
    }
}

impl PostgresTarget {
    /// Connects to `url` and creates the offsets table (retrying while PostgreSQL is away is
    /// the caller's job: an error here is [`TargetError::Unavailable`]).
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, TargetError> {
        let connect_options: sqlx::postgres::PgConnectOptions = url
            .parse()
            .map_err(|e| TargetError::unavailable(format!("--to is not a postgres URL: {e}")))?;
        // No "already exists, skipping" notices in the log for every IF NOT EXISTS.
        let connect_options = connect_options.options([("client_min_messages", "warning")]);
        let description = format!("postgres://{}", db::describe(url));
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy_with(connect_options);
        let target = Self {
            pool,
            description,
            options,
            tables: HashMap::new(),
        };
        target.ensure_offsets_table().await?;
        Ok(target)
    }

    async fn ensure_offsets_table(&self) -> Result<(), TargetError> {
        sqlx::query(CREATE_OFFSETS)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                TargetError::unavailable(format!(
                    "cannot create {OFFSETS_TABLE} in {}: {e}",
                    self.description
                ))
            })?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn write_batch(
        &mut self,
        group_id: &str,
        batch: &Batch,
        steps: &[Step],
    ) -> Result<(), StepError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StepError::Server(format!("cannot begin a transaction: {e}")))?;
        for step in steps {
            self.apply_step(&mut tx, step).await?;
        }
        store_offsets(&mut tx, group_id, &batch.next_offsets).await?;
        tx.commit()
            .await
            .map_err(|e| StepError::Server(format!("COMMIT failed: {e}")))?;
        Ok(())
    }

    /// After a record error in a set-based statement: each change alone, in order, to find
    /// the first that fails. If none does, the batch is committed this way.
    async fn write_one_by_one(&mut self, group_id: &str, batch: &Batch) -> Result<(), StepError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| StepError::Server(format!("cannot begin a transaction: {e}")))?;
        for (i, change) in batch.changes.iter().enumerate() {
            let single = [change.clone()];
            for mut step in
                plan::plan_in_order(&single, self.options.insert_mode == InsertMode::Upsert)
            {
                renumber(&mut step, i);
                self.apply_step(&mut tx, &step).await?;
            }
        }
        store_offsets(&mut tx, group_id, &batch.next_offsets).await?;
        tx.commit()
            .await
            .map_err(|e| StepError::Server(format!("COMMIT failed: {e}")))?;
        Ok(())
    }

    async fn apply_step(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        step: &Step,
    ) -> Result<(), StepError> {
        let index = step.first_index();
        match step {
            Step::Truncate { table, .. } => {
                if self.columns(tx, table, None, index).await?.is_none() {
                    return Ok(()); // nothing to empty
                }
                execute(tx, sql::truncate(table))
                    .await
                    .map_err(|e| step_error(index, e))?;
            }
            Step::Delete { table, key, rows } => {
                let Some(columns) = self.columns(tx, table, None, index).await? else {
                    return Ok(()); // no table, no rows to delete
                };
                let typed = typed_columns(table, &columns, key, index)?;
                let names: Vec<(&str, &str)> = typed
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.as_str()))
                    .collect();
                let statement = sql::delete(table, &names);
                bind_rows(sqlx::query(sqlx::AssertSqlSafe(statement)), key.len(), rows)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| step_error(index, e))?;
            }
            Step::Insert {
                table,
                fields,
                key,
                upsert,
                rows,
            } => {
                let columns = self
                    .columns(tx, table, Some((fields, key)), index)
                    .await?
                    .ok_or_else(|| StepError::Record {
                        index,
                        message: format!(
                            "table {table} does not exist: create it, or run with --schema-evolution basic"
                        ),
                    })?;
                let typed = typed_columns(table, &columns, fields, index)?;
                let names: Vec<(&str, &str)> = typed
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.as_str()))
                    .collect();
                let statement = sql::insert(table, &names, key, *upsert);
                bind_rows(
                    sqlx::query(sqlx::AssertSqlSafe(statement)),
                    fields.len(),
                    rows,
                )
                .execute(&mut **tx)
                .await
                .map_err(|e| step_error(index, e))?;
            }
        }
        Ok(())
    }

    /// The table's columns; with `evolve = Some((fields, key))` and `--schema-evolution
    /// basic`, the table is created and missing columns added first. `None`: no such table.
    async fn columns(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        table: &TableId,
        evolve: Option<(&[Field], &[String])>,
        index: usize,
    ) -> Result<Option<TableColumns>, StepError> {
        if !self.tables.contains_key(table) {
            if let Some(found) = read_columns(tx, table)
                .await
                .map_err(|e| step_error(index, e))?
            {
                self.tables.insert(table.clone(), found);
            }
        }
        let basic = self.options.schema_evolution == SchemaEvolution::Basic;
        let Some((fields, key)) = evolve.filter(|_| basic) else {
            return Ok(self.tables.get(table).cloned());
        };
        match self.tables.get(table) {
            None => {
                if let Some(schema) = &table.schema {
                    execute(
                        tx,
                        format!("CREATE SCHEMA IF NOT EXISTS {}", sql::quote(schema)),
                    )
                    .await
                    .map_err(|e| step_error(index, e))?;
                }
                let columns: Vec<(&str, String, bool)> = fields
                    .iter()
                    .map(|f| (f.name.as_str(), types::column_type(&f.ty), f.optional))
                    .collect();
                execute(tx, sql::create_table(table, &columns, key))
                    .await
                    .map_err(|e| step_error(index, e))?;
                tracing::info!(%table, columns = fields.len(), "created table (--schema-evolution basic)");
            }
            Some(known) => {
                let missing: Vec<&Field> = fields
                    .iter()
                    .filter(|f| known.type_of(&f.name).is_none())
                    .collect();
                if missing.is_empty() {
                    return Ok(Some(known.clone()));
                }
                for field in missing {
                    let ty = types::column_type(&field.ty);
                    execute(tx, sql::add_column(table, &field.name, &ty))
                        .await
                        .map_err(|e| step_error(index, e))?;
                    tracing::info!(%table, column = %field.name, %ty, "added column (--schema-evolution basic)");
                }
            }
        }
        let found = read_columns(tx, table)
            .await
            .map_err(|e| step_error(index, e))?;
        if let Some(found) = &found {
            self.tables.insert(table.clone(), found.clone());
        }
        Ok(found)
    }
}

/// Runs one statement without parameters (DDL, TRUNCATE) in the transaction.
async fn execute(tx: &mut Transaction<'_, Postgres>, statement: String) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

fn renumber(step: &mut Step, index: usize) {
    match step {
        Step::Truncate { index: i, .. } => *i = index,
        Step::Delete { rows, .. } | Step::Insert { rows, .. } => {
            for row in rows {
                row.0 = index;
            }
        }
    }
}

/// Each field's column type in the table, or a record error naming the missing column.
fn typed_columns(
    table: &TableId,
    columns: &TableColumns,
    fields: &[Field],
    index: usize,
) -> Result<Vec<(String, String)>, StepError> {
    fields
        .iter()
        .map(|f| match columns.type_of(&f.name) {
            Some(ty) => Ok((f.name.clone(), ty.to_string())),
            None => Err(StepError::Record {
                index,
                message: format!(
                    "table {table} has no column `{}`: add it, or run with --schema-evolution basic",
                    f.name
                ),
            }),
        })
        .collect()
}

/// Binds one `text[]` per column (column-major) from the planned rows.
fn bind_rows<'q>(
    mut query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    width: usize,
    rows: &[(usize, Vec<Option<String>>)],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    for column in 0..width {
        let values: Vec<Option<String>> = rows
            .iter()
            .map(|(_, r)| r.get(column).cloned().flatten())
            .collect();
        query = query.bind(values);
    }
    query
}

async fn read_columns(
    tx: &mut Transaction<'_, Postgres>,
    table: &TableId,
) -> Result<Option<TableColumns>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2
            AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
    )
    .bind(table.schema.as_deref())
    .bind(&table.table)
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let columns = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(TableColumns { columns }))
}

async fn store_offsets(
    tx: &mut Transaction<'_, Postgres>,
    group_id: &str,
    next_offsets: &[Position],
) -> Result<(), StepError> {
    if next_offsets.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = next_offsets.iter().map(|p| p.topic.as_str()).collect();
    let partitions: Vec<i32> = next_offsets.iter().map(|p| p.partition).collect();
    let offsets: Vec<i64> = next_offsets.iter().map(|p| p.offset).collect();
    sqlx::query(
        "INSERT INTO table_sink_offsets (group_id, topic, partition, next_offset)
         SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, o)
         ON CONFLICT (group_id, topic, partition)
         DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
    )
    .bind(group_id)
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .execute(&mut **tx)
    .await
    .map_err(|e| StepError::Server(format!("cannot store the offsets: {e}")))?;
    Ok(())
}

impl Target for PostgresTarget {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn offset_store(&self) -> OffsetStore {
        OffsetStore::InTarget
    }

    async fn stored_offsets(&mut self, group_id: &str) -> Result<Vec<Position>, TargetError> {
        let rows = sqlx::query(
            "SELECT topic, partition, next_offset FROM table_sink_offsets WHERE group_id = $1",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| TargetError::unavailable(format!("cannot read {OFFSETS_TABLE}: {e}")))?;
        rows.iter()
            .map(|r| {
                Ok(Position {
                    topic: r.try_get(0)?,
                    partition: r.try_get(1)?,
                    offset: r.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| TargetError::unavailable(format!("cannot read {OFFSETS_TABLE}: {e}")))
    }

    async fn write(&mut self, group_id: &str, batch: &Batch) -> Result<(), TargetError> {
        let steps = plan::plan(&batch.changes, self.options.insert_mode);
        let first = self.write_batch(group_id, batch, &steps).await;
        let outcome = match first {
            Ok(()) => return Ok(()),
            Err(StepError::Server(message)) => Err(StepError::Server(message)),
            Err(StepError::Record { .. }) => {
                self.tables.clear();
                self.write_one_by_one(group_id, batch).await
            }
        };
        self.tables.clear();
        match outcome {
            Ok(()) => Ok(()),
            Err(StepError::Record { index, message }) => {
                Err(TargetError::Record { index, message })
            }
            Err(StepError::Server(message)) => Err(TargetError::Unavailable {
                message: format!("{}: {message}", self.description),
            }),
        }
    }
}
