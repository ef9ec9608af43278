//! [`PgOutputMessage`] back to bytes: the inverse of [`super::decode`].
//!
//! The reader never sends pgoutput messages; this exists so that tests (here and in other
//! modules) can build realistic messages from values, and so that round-trip tests can check
//! the decoder field by field.

use bytes::{BufMut, Bytes, BytesMut};

use super::message::*;
use super::tuple::{ColumnValue, TupleData};

/// Encodes a message as pgoutput sends it outside a stream (protocol 1 layout).
pub fn encode(message: &PgOutputMessage) -> Bytes {
    encode_with_xid(message, None)
}

/// Encodes a message as sent inside a streamed transaction: with `xid` after the kind byte for
/// the kinds that carry one (see [`super::decode_streamed`]).
pub fn encode_streamed(message: &PgOutputMessage, xid: Xid) -> Bytes {
    encode_with_xid(message, Some(xid))
}

fn encode_with_xid(message: &PgOutputMessage, xid: Option<Xid>) -> Bytes {
    let mut out = BytesMut::new();
    let start = |out: &mut BytesMut, tag: u8, carries_xid: bool| {
        out.put_u8(tag);
        if let (true, Some(xid)) = (carries_xid, xid) {
            out.put_u32(xid);
        }
    };
    match message {
        PgOutputMessage::Begin(begin) => {
            start(&mut out, b'B', false);
            out.put_u64(begin.final_lsn.0);
            out.put_i64(begin.commit_timestamp.0);
            out.put_u32(begin.xid);
        }
        PgOutputMessage::Commit(commit) => {
            start(&mut out, b'C', false);
            out.put_u8(commit.flags);
            out.put_u64(commit.commit_lsn.0);
            out.put_u64(commit.end_lsn.0);
            out.put_i64(commit.commit_timestamp.0);
        }
        PgOutputMessage::Origin(origin) => {
            start(&mut out, b'O', false);
            out.put_u64(origin.commit_lsn.0);
            put_string(&mut out, &origin.name);
        }
        PgOutputMessage::Relation(relation) => {
            start(&mut out, b'R', true);
            out.put_u32(relation.id);
            put_string(&mut out, &relation.namespace);
            put_string(&mut out, &relation.name);
            out.put_u8(relation.replica_identity.as_byte());
            put_count_i16(&mut out, relation.columns.len());
            for column in &relation.columns {
                out.put_u8(column.flags);
                put_string(&mut out, &column.name);
                out.put_u32(column.type_oid);
                out.put_i32(column.type_modifier);
            }
        }
        PgOutputMessage::Type(pg_type) => {
            start(&mut out, b'Y', true);
            out.put_u32(pg_type.id);
            put_string(&mut out, &pg_type.namespace);
            put_string(&mut out, &pg_type.name);
        }
        PgOutputMessage::Insert(insert) => {
            start(&mut out, b'I', true);
            out.put_u32(insert.relation_id);
            out.put_u8(b'N');
            put_tuple(&mut out, &insert.new);
        }
        PgOutputMessage::Update(update) => {
            start(&mut out, b'U', true);
            out.put_u32(update.relation_id);
            if let Some(old) = &update.old {
                out.put_u8(old.kind.as_byte());
                put_tuple(&mut out, &old.tuple);
            }
            out.put_u8(b'N');
            put_tuple(&mut out, &update.new);
        }
        PgOutputMessage::Delete(delete) => {
            start(&mut out, b'D', true);
            out.put_u32(delete.relation_id);
            out.put_u8(delete.old.kind.as_byte());
            put_tuple(&mut out, &delete.old.tuple);
        }
        PgOutputMessage::Truncate(truncate) => {
            start(&mut out, b'T', true);
            put_count_i32(&mut out, truncate.relation_ids.len());
            let mut options = 0;
            if truncate.cascade {
                options |= Truncate::CASCADE;
            }
            if truncate.restart_identity {
                options |= Truncate::RESTART_IDENTITY;
            }
            out.put_u8(options);
            for id in &truncate.relation_ids {
                out.put_u32(*id);
            }
        }
        PgOutputMessage::Message(message) => {
            start(&mut out, b'M', true);
            out.put_u8(u8::from(message.transactional));
            out.put_u64(message.lsn.0);
            put_string(&mut out, &message.prefix);
            put_count_i32(&mut out, message.content.len());
            out.put_slice(&message.content);
        }
        PgOutputMessage::StreamStart(stream_start) => {
            start(&mut out, b'S', false);
            out.put_u32(stream_start.xid);
            out.put_u8(u8::from(stream_start.first_segment));
        }
        PgOutputMessage::StreamStop => start(&mut out, b'E', false),
        PgOutputMessage::StreamCommit(commit) => {
            start(&mut out, b'c', false);
            out.put_u32(commit.xid);
            out.put_u8(commit.flags);
            out.put_u64(commit.commit_lsn.0);
            out.put_u64(commit.end_lsn.0);
            out.put_i64(commit.commit_timestamp.0);
        }
        PgOutputMessage::StreamAbort(abort) => {
            start(&mut out, b'A', false);
            out.put_u32(abort.xid);
            out.put_u32(abort.subtransaction_xid);
        }
    }
    out.freeze()
}

/// A NUL-terminated string. (A NUL inside `text` cannot be represented; PostgreSQL names never
/// contain one.)
fn put_string(out: &mut BytesMut, text: &str) {
    out.put_slice(text.as_bytes());
    out.put_u8(0);
}

/// Counts beyond the wire type's range cannot be sent by PostgreSQL; they are clamped so that
/// the encoder stays total, and the decoder then rejects the message.
fn put_count_i16(out: &mut BytesMut, count: usize) {
    out.put_i16(i16::try_from(count).unwrap_or(i16::MAX));
}

fn put_count_i32(out: &mut BytesMut, count: usize) {
    out.put_i32(i32::try_from(count).unwrap_or(i32::MAX));
}

fn put_tuple(out: &mut BytesMut, tuple: &TupleData) {
    put_count_i16(out, tuple.columns.len());
    for value in &tuple.columns {
        match value {
            ColumnValue::Null => out.put_u8(b'n'),
            ColumnValue::UnchangedToast => out.put_u8(b'u'),
            ColumnValue::Text(text) => {
                out.put_u8(b't');
                put_count_i32(out, text.as_bytes().len());
                out.put_slice(text.as_bytes());
            }
            ColumnValue::Binary(bytes) => {
                out.put_u8(b'b');
                put_count_i32(out, bytes.len());
                out.put_slice(bytes);
            }
        }
    }
}
