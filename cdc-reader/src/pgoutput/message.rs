//! The typed pgoutput messages (PostgreSQL docs: "Logical Replication Message Formats").
//!
//! One XLogData payload from a pgoutput slot is one of these. A transaction arrives as
//!
//! ```text
//! Begin, [Origin], [Relation / Type ...], Insert | Update | Delete | Truncate | Message ..., Commit
//! ```
//!
//! where a Relation (and, for user-defined column types, a Type) message precedes the first
//! change to a table in the session and is sent again after its definition changes. A
//! non-transactional logical message (`pg_logical_emit_message(false, ...)`) arrives alone.
//!
//! Protocol version 2 adds streaming of large in-progress transactions (Stream Start / Stop /
//! Commit / Abort); those are decoded too, but the reader requests version 1.

use bytes::Bytes;

use crate::lsn::Lsn;
use crate::replication::protocol::PgTimestamp;

use super::tuple::TupleData;

/// A PostgreSQL object identifier (table or type OID).
pub type Oid = u32;

/// A PostgreSQL transaction id.
pub type Xid = u32;

/// One decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutputMessage {
    /// `'B'`: a transaction starts.
    Begin(Begin),
    /// `'C'`: the transaction ends.
    Commit(Commit),
    /// `'O'`: the transaction came from another node through replication origin `name`.
    Origin(Origin),
    /// `'R'`: the definition of a table, sent before its first change.
    Relation(Relation),
    /// `'Y'`: the name of a user-defined type used by a column.
    Type(Type),
    /// `'I'`: a row was inserted.
    Insert(Insert),
    /// `'U'`: a row was updated.
    Update(Update),
    /// `'D'`: a row was deleted.
    Delete(Delete),
    /// `'T'`: tables were truncated.
    Truncate(Truncate),
    /// `'M'`: a message from `pg_logical_emit_message` (needs the `messages` option).
    Message(LogicalMessage),
    /// `'S'` (protocol 2): a block of a streamed in-progress transaction starts.
    StreamStart(StreamStart),
    /// `'E'` (protocol 2): the current streamed block ends.
    StreamStop,
    /// `'c'` (protocol 2): a streamed transaction committed.
    StreamCommit(StreamCommit),
    /// `'A'` (protocol 2): a streamed (sub)transaction aborted.
    StreamAbort(StreamAbort),
}

/// `'B'` Begin.
///
/// ```text
/// 'B' | Int64 final LSN | Int64 commit timestamp | Int32 xid
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begin {
    /// The LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// When the transaction committed.
    pub commit_timestamp: PgTimestamp,
    /// The transaction id.
    pub xid: Xid,
}

/// `'C'` Commit.
///
/// ```text
/// 'C' | Int8 flags (unused, 0) | Int64 commit LSN | Int64 end LSN | Int64 commit timestamp
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Currently always 0.
    pub flags: u8,
    /// The LSN of the commit record.
    pub commit_lsn: Lsn,
    /// The LSN just past the commit record: confirm this one once the transaction is delivered.
    pub end_lsn: Lsn,
    /// When the transaction committed.
    pub commit_timestamp: PgTimestamp,
}

/// `'O'` Origin.
///
/// ```text
/// 'O' | Int64 commit LSN on the origin server | String origin name
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The commit LSN on the origin server.
    pub commit_lsn: Lsn,
    /// The replication origin's name.
    pub name: String,
}

/// `'R'` Relation: a table's definition.
///
/// ```text
/// 'R' | Int32 relation OID | String namespace | String name | Int8 replica identity
///     | Int16 column count | per column: Int8 flags | String name | Int32 type OID | Int32 typmod
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The table's OID; changes refer to the table by it.
    pub id: Oid,
    /// The schema; empty means `pg_catalog` (see [`Relation::schema`]).
    pub namespace: String,
    /// The table name.
    pub name: String,
    /// Which old values Update and Delete carry.
    pub replica_identity: ReplicaIdentity,
    /// The columns, in the order tuples list their values.
    pub columns: Vec<Column>,
}

impl Relation {
    /// The schema name, with the wire's empty string spelled out as `pg_catalog`.
    pub fn schema(&self) -> &str {
        schema_name(&self.namespace)
    }

    /// The columns that make up the replica identity (primary key, by default).
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|column| column.is_key())
    }
}

/// A table's `REPLICA IDENTITY` setting: what identifies the old row in updates and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// `'d'`: the primary key (old key sent only when it changes, and on delete).
    Default,
    /// `'n'`: nothing (updates and deletes cannot be published).
    Nothing,
    /// `'f'`: all columns (the whole old row is sent).
    Full,
    /// `'i'`: the columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    /// The setting for its wire byte (`relreplident`), or `None` for an unknown byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'd' => Some(ReplicaIdentity::Default),
            b'n' => Some(ReplicaIdentity::Nothing),
            b'f' => Some(ReplicaIdentity::Full),
            b'i' => Some(ReplicaIdentity::Index),
            _ => None,
        }
    }

    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            ReplicaIdentity::Default => b'd',
            ReplicaIdentity::Nothing => b'n',
            ReplicaIdentity::Full => b'f',
            ReplicaIdentity::Index => b'i',
        }
    }
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Bit 1: the column is part of the replica identity key. Other bits are unused so far.
    pub flags: u8,
    /// The column name.
    pub name: String,
    /// The column type's OID (`pg_type.oid`), e.g. 23 for int4, 25 for text.
    pub type_oid: Oid,
    /// The type modifier (`atttypmod`), e.g. precision and scale of a numeric; -1 for none.
    pub type_modifier: i32,
}

impl Column {
    /// The flag bit for "part of the replica identity key".
    pub const KEY_FLAG: u8 = 1;

    /// True if the column is part of the replica identity key.
    pub fn is_key(&self) -> bool {
        self.flags & Self::KEY_FLAG != 0
    }
}

/// `'Y'` Type: the name of a non-built-in type, sent before a Relation that uses it.
///
/// ```text
/// 'Y' | Int32 type OID | String namespace | String name
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// The type's OID, as found in [`Column::type_oid`].
    pub id: Oid,
    /// The schema; empty means `pg_catalog` (see [`Type::schema`]).
    pub namespace: String,
    /// The type name.
    pub name: String,
}

impl Type {
    /// The schema name, with the wire's empty string spelled out as `pg_catalog`.
    pub fn schema(&self) -> &str {
        schema_name(&self.namespace)
    }
}

fn schema_name(namespace: &str) -> &str {
    if namespace.is_empty() {
        "pg_catalog"
    } else {
        namespace
    }
}

/// `'I'` Insert.
///
/// ```text
/// 'I' | Int32 relation OID | 'N' | TupleData new row
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// The table, as announced by a [`Relation`] message.
    pub relation_id: Oid,
    /// The inserted row.
    pub new: TupleData,
}

/// `'U'` Update.
///
/// ```text
/// 'U' | Int32 relation OID | ['K' | 'O' TupleData old row] | 'N' | TupleData new row
/// ```
///
/// The old row is sent only with `REPLICA IDENTITY FULL` (`'O'`, every column) or when the key
/// changed (`'K'`, key columns, the others null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The table, as announced by a [`Relation`] message.
    pub relation_id: Oid,
    /// The old row or key, when the server sent one.
    pub old: Option<OldTuple>,
    /// The new row. Unchanged TOASTed columns are [`super::ColumnValue::UnchangedToast`].
    pub new: TupleData,
}

/// `'D'` Delete.
///
/// ```text
/// 'D' | Int32 relation OID | 'K' | 'O' | TupleData old row
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// The table, as announced by a [`Relation`] message.
    pub relation_id: Oid,
    /// The deleted row's key (`'K'`) or whole old row (`'O'`).
    pub old: OldTuple,
}

/// The old values in an Update or Delete, and how much of the row they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldTuple {
    /// Key columns only, or the whole row.
    pub kind: OldTupleKind,
    /// The values, one per column of the relation.
    pub tuple: TupleData,
}

/// Which old values an [`OldTuple`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldTupleKind {
    /// `'K'`: the replica identity key columns; the other columns are null.
    Key,
    /// `'O'`: the whole old row (`REPLICA IDENTITY FULL`).
    Full,
}

impl OldTupleKind {
    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            OldTupleKind::Key => b'K',
            OldTupleKind::Full => b'O',
        }
    }
}

/// `'T'` Truncate.
///
/// ```text
/// 'T' | Int32 relation count | Int8 options (1 = CASCADE, 2 = RESTART IDENTITY) | Int32 OID ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// `TRUNCATE ... CASCADE`.
    pub cascade: bool,
    /// `TRUNCATE ... RESTART IDENTITY`.
    pub restart_identity: bool,
    /// The truncated tables.
    pub relation_ids: Vec<Oid>,
}

impl Truncate {
    /// Option bit for CASCADE.
    pub const CASCADE: u8 = 1;
    /// Option bit for RESTART IDENTITY.
    pub const RESTART_IDENTITY: u8 = 2;
}

/// `'M'` Message: written by `pg_logical_emit_message(transactional, prefix, content)`.
///
/// ```text
/// 'M' | Int8 flags (1 = transactional) | Int64 LSN | String prefix | Int32 length | content
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessage {
    /// Part of a transaction (between Begin and Commit), or sent at once on its own.
    pub transactional: bool,
    /// The message's LSN.
    pub lsn: Lsn,
    /// The prefix the writer chose, to tell message kinds apart.
    pub prefix: String,
    /// The content, as bytes (it need not be text).
    pub content: Bytes,
}

/// `'S'` Stream Start (protocol 2).
///
/// ```text
/// 'S' | Int32 xid | Int8 first segment (1 if this is the first block of the transaction)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    /// The streamed transaction.
    pub xid: Xid,
    /// The first block of this transaction.
    pub first_segment: bool,
}

/// `'c'` Stream Commit (protocol 2).
///
/// ```text
/// 'c' | Int32 xid | Int8 flags | Int64 commit LSN | Int64 end LSN | Int64 commit timestamp
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCommit {
    /// The streamed transaction.
    pub xid: Xid,
    /// Currently always 0.
    pub flags: u8,
    /// The LSN of the commit record.
    pub commit_lsn: Lsn,
    /// The LSN just past the commit record.
    pub end_lsn: Lsn,
    /// When the transaction committed.
    pub commit_timestamp: PgTimestamp,
}

/// `'A'` Stream Abort (protocol 2, PostgreSQL 15 layout).
///
/// ```text
/// 'A' | Int32 xid | Int32 subtransaction xid
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAbort {
    /// The streamed (top-level) transaction.
    pub xid: Xid,
    /// The aborted subtransaction (equal to `xid` when the whole transaction aborted).
    pub subtransaction_xid: Xid,
}
