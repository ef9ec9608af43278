//! The pgoutput decoder: logical replication messages as typed values (sans-IO).
//!
//! Where it sits: the replication connection ([`crate::replication`]) receives XLogData
//! messages; each one's payload is one pgoutput message, which [`decode`] turns into a
//! [`PgOutputMessage`]. The envelope builder then turns changes into Debezium events, looking
//! up table definitions in a [`RelationCache`] fed with the same messages.
//!
//! ```text
//! XLogData.data (Bytes) --decode--> PgOutputMessage --RelationCache--> envelope
//!   'B' Begin | 'R' Relation | 'Y' Type | 'I' Insert | 'U' Update | 'D' Delete
//!   'T' Truncate | 'M' Message | 'O' Origin | 'C' Commit   (+ protocol 2 stream messages)
//! ```
//!
//! The format is PostgreSQL's "Logical Replication Message Formats" (protocol version 1, as
//! the reader requests with `proto_version '1'`). Decoding is zero-copy for row values: they
//! are [`bytes::Bytes`] slices of the received buffer. Bad input yields a [`DecodeError`]
//! naming the message, field and byte offset; the decoder never panics.
//!
//! Files: [`mod@message`] (the types and their wire layouts), `decode` (bytes to values),
//! [`mod@tuple`] (row values), [`mod@encode`] (values to bytes, for tests), `relation_cache`,
//! `error`, and `cursor` (bounds-checked reads).

mod cursor;
mod decode;
pub mod encode;
mod error;
pub mod message;
mod relation_cache;
pub mod tuple;

pub use decode::{decode, decode_streamed};
pub use error::{DecodeError, DecodeErrorKind};
pub use message::{
    Begin, Column, Commit, Delete, Insert, LogicalMessage, Oid, OldTuple, OldTupleKind, Origin,
    PgOutputMessage, Relation, ReplicaIdentity, StreamAbort, StreamCommit, StreamStart, Truncate,
    Type, Update, Xid,
};
pub use relation_cache::{RelationCache, RelationCacheError};
pub use tuple::{ColumnValue, PgText, TupleData};

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::lsn::Lsn;
    use crate::replication::protocol::PgTimestamp;

    /// Builds a message from pieces, for readable hand-made fixtures.
    fn message(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    fn decode_ok(bytes: Bytes) -> PgOutputMessage {
        match decode(bytes.clone()) {
            Ok(message) => {
                // Every hand-built message must also survive a re-encode unchanged.
                assert_eq!(encode::encode(&message), bytes, "re-encoding {message:?}");
                message
            }
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn decodes_begin() {
        let bytes = message(&[
            b"B",
            &0x16_B374_D848u64.to_be_bytes(),
            &815_000_000_123_456i64.to_be_bytes(),
            &1234u32.to_be_bytes(),
        ]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Begin(Begin {
                final_lsn: Lsn(0x16_B374_D848),
                commit_timestamp: PgTimestamp(815_000_000_123_456),
                xid: 1234,
            })
        );
    }

    #[test]
    fn decodes_commit() {
        let bytes = message(&[
            b"C\0",
            &10u64.to_be_bytes(),
            &20u64.to_be_bytes(),
            &30i64.to_be_bytes(),
        ]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Commit(Commit {
                flags: 0,
                commit_lsn: Lsn(10),
                end_lsn: Lsn(20),
                commit_timestamp: PgTimestamp(30),
            })
        );
    }

    #[test]
    fn decodes_origin() {
        let bytes = message(&[b"O", &7u64.to_be_bytes(), b"node_a\0"]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Origin(Origin {
                commit_lsn: Lsn(7),
                name: "node_a".to_string(),
            })
        );
    }

    #[test]
    fn decodes_relation() {
        let bytes = message(&[
            b"R",
            &16_390u32.to_be_bytes(),
            b"\0orders\0d",
            &2i16.to_be_bytes(),
            b"\x01id\0",
            &23u32.to_be_bytes(),
            &(-1i32).to_be_bytes(),
            b"\x00total\0",
            &1700u32.to_be_bytes(),
            &655_366i32.to_be_bytes(),
        ]);
        let PgOutputMessage::Relation(relation) = decode_ok(bytes) else {
            panic!("not a Relation");
        };
        assert_eq!(relation.id, 16_390);
        assert_eq!(relation.namespace, "");
        assert_eq!(relation.schema(), "pg_catalog");
        assert_eq!(relation.name, "orders");
        assert_eq!(relation.replica_identity, ReplicaIdentity::Default);
        assert_eq!(
            relation.columns,
            vec![
                Column {
                    flags: 1,
                    name: "id".to_string(),
                    type_oid: 23,
                    type_modifier: -1
                },
                Column {
                    flags: 0,
                    name: "total".to_string(),
                    type_oid: 1700,
                    type_modifier: 655_366
                },
            ]
        );
        let keys: Vec<_> = relation.key_columns().map(|c| c.name.as_str()).collect();
        assert_eq!(keys, ["id"]);
    }

    #[test]
    fn decodes_type() {
        let bytes = message(&[b"Y", &16_400u32.to_be_bytes(), b"public\0mood\0"]);
        let PgOutputMessage::Type(pg_type) = decode_ok(bytes) else {
            panic!("not a Type");
        };
        assert_eq!(
            (pg_type.id, pg_type.schema(), pg_type.name.as_str()),
            (16_400, "public", "mood")
        );
    }

    #[test]
    fn decodes_insert() {
        let bytes = message(&[b"I", &16_390u32.to_be_bytes(), b"N\0\x02t\0\0\0\x011n"]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Insert(Insert {
                relation_id: 16_390,
                new: TupleData {
                    columns: vec![
                        ColumnValue::Text(PgText::from_static("1")),
                        ColumnValue::Null
                    ]
                },
            })
        );
    }

    #[test]
    fn decodes_update_with_and_without_old_tuple() {
        let id = 16_390u32.to_be_bytes();
        let plain = message(&[b"U", &id, b"N\0\x01u"]);
        let PgOutputMessage::Update(update) = decode_ok(plain) else {
            panic!("not an Update");
        };
        assert_eq!(update.old, None);
        assert_eq!(update.new.columns, vec![ColumnValue::UnchangedToast]);

        let with_key = message(&[b"U", &id, b"K\0\x01t\0\0\0\x011N\0\x01t\0\0\0\x012"]);
        let PgOutputMessage::Update(update) = decode_ok(with_key) else {
            panic!("not an Update");
        };
        let old = update.old.expect("old key");
        assert_eq!(old.kind, OldTupleKind::Key);
        assert_eq!(old.tuple.columns[0].as_text(), Some("1"));
        assert_eq!(update.new.columns[0].as_text(), Some("2"));

        let with_old_row = message(&[b"U", &id, b"O\0\x01n", b"N\0\x01n"]);
        let PgOutputMessage::Update(update) = decode_ok(with_old_row) else {
            panic!("not an Update");
        };
        assert_eq!(update.old.map(|old| old.kind), Some(OldTupleKind::Full));
    }

    #[test]
    fn decodes_delete() {
        let bytes = message(&[b"D", &5u32.to_be_bytes(), b"O\0\x01t\0\0\0\x02hi"]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Delete(Delete {
                relation_id: 5,
                old: OldTuple {
                    kind: OldTupleKind::Full,
                    tuple: TupleData {
                        columns: vec![ColumnValue::Text(PgText::from_static("hi"))]
                    },
                },
            })
        );
    }

    #[test]
    fn decodes_truncate() {
        let bytes = message(&[
            b"T",
            &2i32.to_be_bytes(),
            b"\x03",
            &5u32.to_be_bytes(),
            &6u32.to_be_bytes(),
        ]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Truncate(Truncate {
                cascade: true,
                restart_identity: true,
                relation_ids: vec![5, 6],
            })
        );
    }

    #[test]
    fn decodes_logical_message() {
        let bytes = message(&[
            b"M\x01",
            &99u64.to_be_bytes(),
            b"prefix\0",
            &3i32.to_be_bytes(),
            b"a\0b",
        ]);
        assert_eq!(
            decode_ok(bytes),
            PgOutputMessage::Message(LogicalMessage {
                transactional: true,
                lsn: Lsn(99),
                prefix: "prefix".to_string(),
                content: Bytes::from_static(b"a\0b"),
            })
        );
    }

    #[test]
    fn decodes_stream_messages() {
        let start = message(&[b"S", &77u32.to_be_bytes(), b"\x01"]);
        assert_eq!(
            decode_ok(start),
            PgOutputMessage::StreamStart(StreamStart {
                xid: 77,
                first_segment: true
            })
        );
        assert_eq!(
            decode_ok(Bytes::from_static(b"E")),
            PgOutputMessage::StreamStop
        );
        let abort = message(&[b"A", &77u32.to_be_bytes(), &78u32.to_be_bytes()]);
        assert_eq!(
            decode_ok(abort),
            PgOutputMessage::StreamAbort(StreamAbort {
                xid: 77,
                subtransaction_xid: 78
            })
        );
        let commit = message(&[
            b"c",
            &77u32.to_be_bytes(),
            b"\0",
            &1u64.to_be_bytes(),
            &2u64.to_be_bytes(),
            &3i64.to_be_bytes(),
        ]);
        assert!(matches!(
            decode_ok(commit),
            PgOutputMessage::StreamCommit(StreamCommit { xid: 77, .. })
        ));
    }

    #[test]
    fn streamed_changes_carry_the_xid() {
        let bytes = message(&[b"I", &77u32.to_be_bytes(), &5u32.to_be_bytes(), b"N\0\0"]);
        let (xid, decoded) = decode_streamed(bytes.clone()).expect("streamed insert");
        assert_eq!(xid, Some(77));
        assert_eq!(encode::encode_streamed(&decoded, 77), bytes);
        // Outside a stream the same bytes are a different (and here, over-long) Insert.
        assert!(decode(bytes).is_err());
        // Begin never carries one.
        let begin = message(&[b"B", &[0; 20]]);
        assert!(matches!(
            decode_streamed(begin),
            Ok((None, PgOutputMessage::Begin(_)))
        ));
    }

    #[test]
    fn reports_what_and_where() {
        let error = decode(Bytes::new()).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::Empty);

        let error = decode(Bytes::from_static(b"Z")).unwrap_err();
        assert_eq!(
            error.kind,
            DecodeErrorKind::UnknownMessageKind {
                tag: b'Z',
                printable: 'Z'
            }
        );

        let error = decode(message(&[b"I", &5u32.to_be_bytes(), b"X"])).unwrap_err();
        assert_eq!(error.message, "Insert ('I')");
        assert_eq!(error.field, "new tuple marker");
        assert_eq!(error.offset, 5);
        assert!(error.to_string().contains("expected 'N'"), "{error}");

        let error = decode(message(&[b"B", &[0; 19]])).unwrap_err();
        assert_eq!(error.field, "xid");
        assert_eq!(error.offset, 17);
        assert_eq!(
            error.kind,
            DecodeErrorKind::Truncated {
                needed: 4,
                available: 3
            }
        );

        let error = decode(message(&[b"B", &[0; 21]])).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::TrailingBytes { remaining: 1 });
        assert_eq!(error.offset, 21);

        let error = decode(message(&[b"R", &[0; 4], b"\0t\0x"])).unwrap_err();
        assert_eq!(error.field, "replica identity");
        assert_eq!(error.offset, 8);

        let error = decode(message(&[b"T", &(-1i32).to_be_bytes(), b"\0"])).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::NegativeLength { value: -1 });
    }
}
