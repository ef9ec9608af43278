//! The replication slot and the publication: what the server must have before streaming.
//!
//! - The **publication** says which tables' changes pgoutput sends. cdc-reader creates it when
//!   missing (`FOR TABLE <the captured tables>` or `FOR ALL TABLES`) and adds a captured table
//!   that is missing from it (after `db reset`, for example), saying so in the log.
//! - The **slot** remembers how far the reader got (`confirmed_flush_lsn`) and keeps the WAL
//!   after it. cdc-reader creates it when missing; it never drops or alters a slot it did not
//!   create in this run (`--drop-slot-on-exit` drops the one it created).
//!
//! When the server refuses, the error says what to change: `wal_level`, the REPLICATION role
//! attribute, a slot another reader holds, a `pg_hba.conf` line.

use crate::lsn::Lsn;

use super::connection::{ConnectionError, ReplicationConnection, ServerError};

/// Errors while preparing replication, each with the fix in its message.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error(
        "wal_level is '{0}' on {1}, but logical replication needs 'logical'. Fix: ALTER SYSTEM SET wal_level = logical; \
         then restart PostgreSQL (scripts/stack sets it for the playground cluster)"
    )]
    WalLevel(String, String),
    #[error(
        "role {0} may not use replication on {1}: {2}. Fix: ALTER ROLE {0} REPLICATION; (as a superuser), \
         and make sure pg_hba.conf has a `host replication {0} <address> scram-sha-256` line"
    )]
    NoReplicationPrivilege(String, String, String),
    #[error(
        "slot {slot} is in use by another process (pid {pid}): another cdc-reader is attached. Stop it, or use \
         another slot with --slot-name"
    )]
    SlotBusy { slot: String, pid: String },
    #[error("slot {slot} exists but uses plugin {plugin}; cdc-reader needs a pgoutput slot. Use another --slot-name")]
    WrongPlugin { slot: String, plugin: String },
    #[error("slot {slot} belongs to database {other}, not {database}. Use another --slot-name")]
    WrongDatabase {
        slot: String,
        other: String,
        database: String,
    },
    #[error(
        "slot {0} was invalidated: it fell further behind than max_slot_wal_keep_size allows, and the WAL \
         it needed is gone. Its changes cannot be streamed any more. Fix: drop it \
         (SELECT pg_drop_replication_slot('{0}')) and start again: a new slot takes a fresh snapshot"
    )]
    Lost(String),
    #[error(
        "slot {0} was dropped while the reader ran, so the position it kept is gone. Changes \
         committed since the reader last confirmed may not be on the topics. Fix: start the reader \
         again: it creates a new slot and takes a fresh snapshot (--snapshot-mode initial)"
    )]
    Dropped(String),
    #[error(
        "publication {publication} is gone (dropped while slot {slot} streamed): {reason}. The slot \
         cannot decode past the point where it went missing, even if it is created again. Fix: \
         drop the slot (SELECT pg_drop_replication_slot('{slot}')) and start the reader again: it \
         creates both and takes a fresh snapshot"
    )]
    PublicationGone {
        publication: String,
        slot: String,
        reason: String,
    },
    #[error("table {0} does not exist; create it (cargo run -p db -- migrate) or leave it out of --tables")]
    MissingTable(String),
    #[error(
        "publication {publication} lacks table {table} and cannot be altered by this role: {reason}. Fix: \
         ALTER PUBLICATION {publication} ADD TABLE {table};"
    )]
    PublicationLacksTable {
        publication: String,
        table: String,
        reason: String,
    },
    #[error(
        "cannot create publication {publication}: {reason}. Fix: list the tables with --tables (a \
         FOR ALL TABLES publication needs a superuser), or have a superuser create it: \
         CREATE PUBLICATION {publication} FOR ALL TABLES;"
    )]
    PublicationNotAllowed { publication: String, reason: String },
    #[error(
        "the server has no free replication slot: {0}. Fix: raise max_replication_slots, or drop an unused slot \
         (SELECT pg_drop_replication_slot('<name>'))"
    )]
    NoFreeSlot(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("unexpected reply from the server: {0}")]
    Unexpected(String),
}

/// Which tables the publication covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedTables {
    /// `FOR ALL TABLES`.
    All,
    /// `FOR TABLE ...`, each `schema.table`.
    List(Vec<String>),
}

/// A slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone)]
pub struct SlotState {
    pub confirmed_flush_lsn: Lsn,
}

/// A slot this run created.
#[derive(Debug, Clone)]
pub struct CreatedSlot {
    /// Where streaming starts: changes committed after this point come through the slot.
    pub consistent_point: Lsn,
    /// The exported snapshot (when asked for), valid while the creating connection stays idle.
    pub snapshot_name: Option<String>,
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `schema.table` quoted, from `table` (schema `public`) or `schema.table`.
pub fn quote_table(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => format!("public.{}", quote_ident(name)),
    }
}

/// Checks `wal_level` over the replication connection.
pub async fn check_wal_level(connection: &mut ReplicationConnection) -> Result<(), SlotError> {
    let rows = connection.simple_query("SHOW wal_level").await?;
    let level = rows
        .first()
        .and_then(|r| r.values.first().cloned().flatten())
        .unwrap_or_default();
    if level != "logical" {
        return Err(SlotError::WalLevel(level, connection.target().describe()));
    }
    Ok(())
}

/// Creates the publication when missing, and adds captured tables it lacks.
pub async fn ensure_publication(
    connection: &mut ReplicationConnection,
    publication: &str,
    tables: &PublishedTables,
) -> Result<(), SlotError> {
    if let PublishedTables::List(list) = tables {
        for table in list {
            let rows = connection
                .simple_query(&format!(
                    "SELECT to_regclass({}) IS NOT NULL AS present",
                    quote_literal(&quote_table(table))
                ))
                .await?;
            if rows.first().and_then(|r| r.get("present")) != Some("t") {
                return Err(SlotError::MissingTable(table.clone()));
            }
        }
    }
    let exists = connection
        .simple_query(&format!(
            "SELECT puballtables FROM pg_publication WHERE pubname = {}",
            quote_literal(publication)
        ))
        .await?;
    let Some(existing) = exists.first() else {
        let target = match tables {
            PublishedTables::All => "ALL TABLES".to_string(),
            PublishedTables::List(list) => {
                format!(
                    "TABLE {}",
                    list.iter()
                        .map(|t| quote_table(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        tracing::info!(publication, %target, "creating publication");
        connection
            .simple_query(&format!(
                "CREATE PUBLICATION {} FOR {target}",
                quote_ident(publication)
            ))
            .await
            .map_err(|error| match error {
                ConnectionError::Server(ServerError { code, message, .. }) if code == "42501" => {
                    SlotError::PublicationNotAllowed {
                        publication: publication.to_string(),
                        reason: message,
                    }
                }
                other => SlotError::Connection(other),
            })?;
        return Ok(());
    };
    let PublishedTables::List(list) = tables else {
        return Ok(());
    };
    if existing.get("puballtables") == Some("t") {
        return Ok(());
    }
    let published = connection
        .simple_query(&format!(
            "SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = {}",
            quote_literal(publication)
        ))
        .await?;
    for table in list {
        let qualified = if table.contains('.') {
            table.clone()
        } else {
            format!("public.{table}")
        };
        if published
            .iter()
            .any(|row| row.get("name") == Some(qualified.as_str()))
        {
            continue;
        }
        tracing::info!(publication, table = %qualified, "adding a captured table the publication lacks");
        connection
            .simple_query(&format!(
                "ALTER PUBLICATION {} ADD TABLE {}",
                quote_ident(publication),
                quote_table(table)
            ))
            .await
            .map_err(|e| SlotError::PublicationLacksTable {
                publication: publication.to_string(),
                table: qualified.clone(),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

/// The slot's state, or None when it does not exist. Fails when it is not usable by us.
pub async fn slot_state(
    connection: &mut ReplicationConnection,
    slot: &str,
) -> Result<Option<SlotState>, SlotError> {
    let rows = connection
        .simple_query(&format!(
            "SELECT plugin, database, active_pid::text AS active_pid, confirmed_flush_lsn::text AS confirmed, \
             wal_status \
             FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(slot)
        ))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let plugin = row.get("plugin").unwrap_or_default();
    if plugin != "pgoutput" {
        return Err(SlotError::WrongPlugin {
            slot: slot.into(),
            plugin: plugin.into(),
        });
    }
    let database = row.get("database").unwrap_or_default();
    if database != connection.target().database {
        return Err(SlotError::WrongDatabase {
            slot: slot.into(),
            other: database.into(),
            database: connection.target().database.clone(),
        });
    }
    if row.get("wal_status") == Some("lost") {
        return Err(SlotError::Lost(slot.into()));
    }
    if let Some(pid) = row.get("active_pid") {
        return Err(SlotError::SlotBusy {
            slot: slot.into(),
            pid: pid.into(),
        });
    }
    let confirmed = row
        .get("confirmed")
        .unwrap_or("0/0")
        .parse::<Lsn>()
        .map_err(|e| SlotError::Unexpected(format!("confirmed_flush_lsn: {e}")))?;
    Ok(Some(SlotState {
        confirmed_flush_lsn: confirmed,
    }))
}

/// `CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput`, exporting a snapshot when asked.
pub async fn create_slot(
    connection: &mut ReplicationConnection,
    slot: &str,
    export_snapshot: bool,
) -> Result<CreatedSlot, SlotError> {
    let snapshot = if export_snapshot {
        "EXPORT_SNAPSHOT"
    } else {
        "NOEXPORT_SNAPSHOT"
    };
    let command = format!(
        "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {snapshot}",
        quote_ident(slot)
    );
    let rows = match connection.simple_query(&command).await {
        Ok(rows) => rows,
        Err(error) => {
            let target = connection.target();
            return Err(explain_connect_error(
                &target.user,
                &target.describe(),
                error,
            ));
        }
    };
    let row = rows
        .first()
        .ok_or_else(|| SlotError::Unexpected("CREATE_REPLICATION_SLOT returned no row".into()))?;
    let consistent_point = row
        .get("consistent_point")
        .ok_or_else(|| SlotError::Unexpected("no consistent_point".into()))?
        .parse::<Lsn>()
        .map_err(|e| SlotError::Unexpected(format!("consistent_point: {e}")))?;
    Ok(CreatedSlot {
        consistent_point,
        snapshot_name: row.get("snapshot_name").map(str::to_string),
    })
}

/// Drops a slot (only ever one this run created).
pub async fn drop_slot(
    connection: &mut ReplicationConnection,
    slot: &str,
) -> Result<(), SlotError> {
    connection
        .simple_query(&format!("DROP_REPLICATION_SLOT {} WAIT", quote_ident(slot)))
        .await?;
    Ok(())
}

/// The `START_REPLICATION` command for pgoutput protocol version 1.
pub fn start_replication_command(
    slot: &str,
    start: Lsn,
    publication: &str,
    messages: bool,
) -> String {
    format!(
        "START_REPLICATION SLOT {} LOGICAL {start} (proto_version '1', publication_names {}, messages '{}')",
        quote_ident(slot),
        quote_literal(&quote_ident(publication)),
        if messages { "true" } else { "false" }
    )
}

/// Maps the server's refusals to the errors that carry their fix: no REPLICATION privilege
/// (or no `pg_hba.conf` line for it), no free slot. Anything else stays as the server said it.
pub fn explain_connect_error(user: &str, target: &str, error: ConnectionError) -> SlotError {
    match error {
        ConnectionError::Server(ServerError { code, message, .. })
            if code == "28000" || code == "42501" =>
        {
            SlotError::NoReplicationPrivilege(user.to_string(), target.to_string(), message)
        }
        ConnectionError::Server(ServerError { code, message, .. }) if code == "53400" => {
            SlotError::NoFreeSlot(message)
        }
        other => SlotError::Connection(other),
    }
}

/// Maps the server's refusals of START_REPLICATION, and errors while streaming, to the errors
/// that carry their fix: the slot held by someone else (55006), dropped (42704 naming the slot),
/// invalidated (55000), the publication gone (42704 naming it). Anything else stays as it was
/// (and [`crate::retry::classify`] decides whether it is worth a new connection).
pub fn explain_stream_error(slot: &str, publication: &str, error: ConnectionError) -> SlotError {
    let ConnectionError::Server(server) = &error else {
        return SlotError::Connection(error);
    };
    let message = server.message.as_str();
    match server.code.as_str() {
        "55006" => SlotError::SlotBusy {
            slot: slot.to_string(),
            pid: message
                .rsplit(' ')
                .next()
                .unwrap_or("?")
                .trim_end_matches('.')
                .to_string(),
        },
        "42704" if message.contains("publication") => SlotError::PublicationGone {
            publication: publication.to_string(),
            slot: slot.to_string(),
            reason: message.to_string(),
        },
        "42704" if message.contains("replication slot") => SlotError::Dropped(slot.to_string()),
        "55000" if message.contains("slot") => SlotError::Lost(slot.to_string()),
        _ => SlotError::Connection(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str, message: &str) -> ConnectionError {
        ConnectionError::Server(ServerError {
            severity: "ERROR".into(),
            code: code.into(),
            message: message.into(),
            ..ServerError::default()
        })
    }

    #[test]
    fn streaming_refusals_become_errors_with_fixes() {
        let busy = explain_stream_error(
            "s",
            "p",
            server("55006", "replication slot \"s\" is active for PID 4242"),
        );
        assert!(
            matches!(&busy, SlotError::SlotBusy { pid, .. } if pid == "4242"),
            "{busy:?}"
        );
        let dropped = explain_stream_error(
            "s",
            "p",
            server("42704", "replication slot \"s\" does not exist"),
        );
        assert!(matches!(dropped, SlotError::Dropped(_)), "{dropped:?}");
        let gone = explain_stream_error(
            "s",
            "p",
            server("42704", "publication \"p\" does not exist"),
        );
        assert!(
            gone.to_string().contains("pg_drop_replication_slot('s')"),
            "{gone}"
        );
        let lost = explain_stream_error(
            "s",
            "p",
            server(
                "55000",
                "can no longer get changes from replication slot \"s\"",
            ),
        );
        assert!(matches!(lost, SlotError::Lost(_)), "{lost:?}");
        assert!(matches!(
            explain_stream_error("s", "p", ConnectionError::Closed),
            SlotError::Connection(ConnectionError::Closed)
        ));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("my\"slot"), "\"my\"\"slot\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_table("orders"), "public.\"orders\"");
        assert_eq!(quote_table("shop.orders"), "\"shop\".\"orders\"");
    }

    #[test]
    fn start_replication_names_the_publication_as_a_quoted_identifier_inside_a_literal() {
        assert_eq!(
            start_replication_command(
                "playground_slot",
                Lsn(0x16_B374_D848),
                "playground_pub",
                true
            ),
            "START_REPLICATION SLOT \"playground_slot\" LOGICAL 16/B374D848 \
             (proto_version '1', publication_names '\"playground_pub\"', messages 'true')"
        );
    }
}
