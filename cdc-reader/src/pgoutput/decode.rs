//! Bytes to [`PgOutputMessage`]: one function per message kind, each reading the fields in
//! wire order (see the layouts on the types in [`super::message`]).

use bytes::Bytes;

use crate::lsn::Lsn;
use crate::replication::protocol::PgTimestamp;

use super::cursor::Cursor;
use super::error::{DecodeError, DecodeErrorKind};
use super::message::*;
use super::tuple::TupleData;

/// Decodes one pgoutput message: the payload of an XLogData, or the `data` column of
/// `pg_logical_slot_peek_binary_changes`.
///
/// `data` is taken as [`Bytes`] so that row values and message contents are slices of it.
/// Truncated, over-long or garbage input returns an error; it never panics.
pub fn decode(data: Bytes) -> Result<PgOutputMessage, DecodeError> {
    decode_message(data, false).map(|(_, message)| message)
}

/// Decodes a message that arrived between Stream Start and Stream Stop (protocol 2), where
/// Relation, Type, Insert, Update, Delete, Truncate and Message carry the streamed
/// transaction's xid right after the kind byte. Returns that xid, if the kind carries one.
pub fn decode_streamed(data: Bytes) -> Result<(Option<Xid>, PgOutputMessage), DecodeError> {
    decode_message(data, true)
}

fn decode_message(
    data: Bytes,
    streamed: bool,
) -> Result<(Option<Xid>, PgOutputMessage), DecodeError> {
    let mut cursor = Cursor::new(data);
    let Some(tag) = cursor.u8("message kind").ok() else {
        return Err(cursor.error("message kind", DecodeErrorKind::Empty));
    };
    cursor.set_message(message_name(tag));
    let carries_xid = streamed && matches!(tag, b'R' | b'Y' | b'I' | b'U' | b'D' | b'T' | b'M');
    let xid = if carries_xid {
        Some(cursor.u32("streamed transaction xid")?)
    } else {
        None
    };
    let message = match tag {
        b'B' => PgOutputMessage::Begin(decode_begin(&mut cursor)?),
        b'C' => PgOutputMessage::Commit(decode_commit(&mut cursor)?),
        b'O' => PgOutputMessage::Origin(decode_origin(&mut cursor)?),
        b'R' => PgOutputMessage::Relation(decode_relation(&mut cursor)?),
        b'Y' => PgOutputMessage::Type(decode_type(&mut cursor)?),
        b'I' => PgOutputMessage::Insert(decode_insert(&mut cursor)?),
        b'U' => PgOutputMessage::Update(decode_update(&mut cursor)?),
        b'D' => PgOutputMessage::Delete(decode_delete(&mut cursor)?),
        b'T' => PgOutputMessage::Truncate(decode_truncate(&mut cursor)?),
        b'M' => PgOutputMessage::Message(decode_logical_message(&mut cursor)?),
        b'S' => PgOutputMessage::StreamStart(StreamStart {
            xid: cursor.u32("xid")?,
            first_segment: cursor.u8("first segment")? == 1,
        }),
        b'E' => PgOutputMessage::StreamStop,
        b'c' => PgOutputMessage::StreamCommit(decode_stream_commit(&mut cursor)?),
        b'A' => PgOutputMessage::StreamAbort(StreamAbort {
            xid: cursor.u32("xid")?,
            subtransaction_xid: cursor.u32("subtransaction xid")?,
        }),
        other => {
            return Err(cursor.error(
                "message kind",
                DecodeErrorKind::UnknownMessageKind {
                    tag: other,
                    printable: char::from(other),
                },
            ))
        }
    };
    cursor.finish()?;
    Ok((xid, message))
}

/// The message kind's name for error messages.
fn message_name(tag: u8) -> &'static str {
    match tag {
        b'B' => "Begin ('B')",
        b'C' => "Commit ('C')",
        b'O' => "Origin ('O')",
        b'R' => "Relation ('R')",
        b'Y' => "Type ('Y')",
        b'I' => "Insert ('I')",
        b'U' => "Update ('U')",
        b'D' => "Delete ('D')",
        b'T' => "Truncate ('T')",
        b'M' => "Message ('M')",
        b'S' => "Stream Start ('S')",
        b'E' => "Stream Stop ('E')",
        b'c' => "Stream Commit ('c')",
        b'A' => "Stream Abort ('A')",
        _ => "(unknown kind)",
    }
}

fn lsn(cursor: &mut Cursor, field: &'static str) -> Result<Lsn, DecodeError> {
    cursor.u64(field).map(Lsn)
}

fn timestamp(cursor: &mut Cursor, field: &'static str) -> Result<PgTimestamp, DecodeError> {
    cursor.i64(field).map(PgTimestamp)
}

fn decode_begin(cursor: &mut Cursor) -> Result<Begin, DecodeError> {
    Ok(Begin {
        final_lsn: lsn(cursor, "final LSN")?,
        commit_timestamp: timestamp(cursor, "commit timestamp")?,
        xid: cursor.u32("xid")?,
    })
}

fn decode_commit(cursor: &mut Cursor) -> Result<Commit, DecodeError> {
    Ok(Commit {
        flags: cursor.u8("flags")?,
        commit_lsn: lsn(cursor, "commit LSN")?,
        end_lsn: lsn(cursor, "end LSN")?,
        commit_timestamp: timestamp(cursor, "commit timestamp")?,
    })
}

fn decode_origin(cursor: &mut Cursor) -> Result<Origin, DecodeError> {
    Ok(Origin {
        commit_lsn: lsn(cursor, "origin commit LSN")?,
        name: cursor.string("origin name")?,
    })
}

fn decode_relation(cursor: &mut Cursor) -> Result<Relation, DecodeError> {
    let id = cursor.u32("relation id")?;
    let namespace = cursor.string("namespace")?;
    let name = cursor.string("relation name")?;
    let identity_byte = cursor.u8("replica identity")?;
    let replica_identity = ReplicaIdentity::from_byte(identity_byte).ok_or_else(|| {
        cursor.unexpected_byte(identity_byte, "replica identity", "'d', 'n', 'f' or 'i'")
    })?;
    let count = cursor.count_i16("column count")?;
    // A column takes at least 10 bytes: never reserve more than the message can hold.
    let mut columns = Vec::with_capacity(count.min(cursor.remaining() / 10));
    for _ in 0..count {
        columns.push(Column {
            flags: cursor.u8("column flags")?,
            name: cursor.string("column name")?,
            type_oid: cursor.u32("column type OID")?,
            type_modifier: cursor.i32("column type modifier")?,
        });
    }
    Ok(Relation {
        id,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn decode_type(cursor: &mut Cursor) -> Result<Type, DecodeError> {
    Ok(Type {
        id: cursor.u32("type OID")?,
        namespace: cursor.string("namespace")?,
        name: cursor.string("type name")?,
    })
}

fn expect_new_tuple_marker(cursor: &mut Cursor) -> Result<(), DecodeError> {
    match cursor.u8("new tuple marker")? {
        b'N' => Ok(()),
        other => Err(cursor.unexpected_byte(other, "new tuple marker", "'N'")),
    }
}

fn decode_insert(cursor: &mut Cursor) -> Result<Insert, DecodeError> {
    let relation_id = cursor.u32("relation id")?;
    expect_new_tuple_marker(cursor)?;
    Ok(Insert {
        relation_id,
        new: TupleData::decode(cursor)?,
    })
}

fn decode_update(cursor: &mut Cursor) -> Result<Update, DecodeError> {
    let relation_id = cursor.u32("relation id")?;
    let marker = cursor.u8("old or new tuple marker")?;
    let old_kind = match marker {
        b'K' => Some(OldTupleKind::Key),
        b'O' => Some(OldTupleKind::Full),
        b'N' => None,
        other => {
            return Err(cursor.unexpected_byte(other, "old or new tuple marker", "'K', 'O' or 'N'"))
        }
    };
    let old = match old_kind {
        Some(kind) => {
            let tuple = TupleData::decode(cursor)?;
            expect_new_tuple_marker(cursor)?;
            Some(OldTuple { kind, tuple })
        }
        None => None,
    };
    Ok(Update {
        relation_id,
        old,
        new: TupleData::decode(cursor)?,
    })
}

fn decode_delete(cursor: &mut Cursor) -> Result<Delete, DecodeError> {
    let relation_id = cursor.u32("relation id")?;
    let kind = match cursor.u8("old tuple marker")? {
        b'K' => OldTupleKind::Key,
        b'O' => OldTupleKind::Full,
        other => return Err(cursor.unexpected_byte(other, "old tuple marker", "'K' or 'O'")),
    };
    Ok(Delete {
        relation_id,
        old: OldTuple {
            kind,
            tuple: TupleData::decode(cursor)?,
        },
    })
}

fn decode_truncate(cursor: &mut Cursor) -> Result<Truncate, DecodeError> {
    let count = cursor.count_i32("relation count")?;
    let options = cursor.u8("options")?;
    let mut relation_ids = Vec::with_capacity(count.min(cursor.remaining() / 4));
    for _ in 0..count {
        relation_ids.push(cursor.u32("relation id")?);
    }
    Ok(Truncate {
        cascade: options & Truncate::CASCADE != 0,
        restart_identity: options & Truncate::RESTART_IDENTITY != 0,
        relation_ids,
    })
}

fn decode_logical_message(cursor: &mut Cursor) -> Result<LogicalMessage, DecodeError> {
    let flags = cursor.u8("flags")?;
    let lsn = lsn(cursor, "message LSN")?;
    let prefix = cursor.string("prefix")?;
    let len = cursor.count_i32("content length")?;
    Ok(LogicalMessage {
        transactional: flags & 1 != 0,
        lsn,
        prefix,
        content: cursor.bytes(len, "content")?,
    })
}

fn decode_stream_commit(cursor: &mut Cursor) -> Result<StreamCommit, DecodeError> {
    Ok(StreamCommit {
        xid: cursor.u32("xid")?,
        flags: cursor.u8("flags")?,
        commit_lsn: lsn(cursor, "commit LSN")?,
        end_lsn: lsn(cursor, "end LSN")?,
        commit_timestamp: timestamp(cursor, "commit timestamp")?,
    })
}
