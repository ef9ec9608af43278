//! Property tests for the sans-IO decoders: whatever bytes arrive, decoding returns `Ok` or
//! `Err` and never panics; and any message the encoder writes decodes back to itself.
//!
//! Inputs: arbitrary bytes, arbitrary bytes behind a valid message kind (to get past the first
//! check), real captured messages (`tests/fixtures/pgoutput/`) cut short and with flipped
//! bits, and randomly generated messages for the encode/decode round trip.

use bytes::Bytes;
use cdc_reader::lsn::Lsn;
use cdc_reader::pgoutput::{
    decode, decode_streamed, encode, Begin, Column, ColumnValue, Commit, Delete, Insert,
    LogicalMessage, OldTuple, OldTupleKind, Origin, PgOutputMessage, PgText, Relation,
    ReplicaIdentity, StreamAbort, StreamCommit, StreamStart, Truncate, TupleData, Type, Update,
};
use cdc_reader::replication::protocol::{PgTimestamp, ReplicationMessage, StandbyStatusUpdate};
use proptest::prelude::*;

const PROTO1: &str = include_str!("fixtures/pgoutput/proto1.tsv");
const PROTO1_BINARY: &str = include_str!("fixtures/pgoutput/proto1_binary.tsv");
const PROTO2_STREAM: &str = include_str!("fixtures/pgoutput/proto2_stream.tsv");

/// The captured messages' bytes.
fn captured_messages() -> Vec<Vec<u8>> {
    PROTO1
        .lines()
        .chain(PROTO1_BINARY.lines())
        .chain(PROTO2_STREAM.lines())
        .filter_map(|line| line.rsplit('\t').next())
        .map(|hex| {
            (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect()
        })
        .collect()
}

/// Decodes `bytes` every way the reader can; the property is simply that this returns.
fn decode_every_way(bytes: &[u8]) {
    let bytes = Bytes::copy_from_slice(bytes);
    let _ = decode(bytes.clone());
    let _ = decode_streamed(bytes.clone());
    let _ = ReplicationMessage::parse(bytes.clone());
    let _ = StandbyStatusUpdate::parse(&bytes);
}

const MESSAGE_KINDS: &[u8] = b"BCORYIUDTMSEcAw";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_every_way(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_known_kind_never_panic(
        kind in proptest::sample::select(MESSAGE_KINDS),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut bytes = vec![kind];
        bytes.extend(body);
        decode_every_way(&bytes);
    }

    #[test]
    fn damaged_captured_messages_never_panic(
        pick in any::<proptest::sample::Index>(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0..8u8), 0..4),
        cut in any::<proptest::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let messages = captured_messages();
        let mut bytes = pick.get(&messages).clone();
        for (position, bit) in flips {
            if !bytes.is_empty() {
                let index = position.index(bytes.len());
                bytes[index] ^= 1 << bit;
            }
        }
        if truncate {
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        decode_every_way(&bytes);
    }

    #[test]
    fn encoded_messages_decode_to_themselves(message in arb_message()) {
        let bytes = encode::encode(&message);
        prop_assert_eq!(decode(bytes), Ok(message));
    }

    #[test]
    fn streamed_messages_decode_to_themselves(message in arb_message(), xid in any::<u32>()) {
        let bytes = encode::encode_streamed(&message, xid);
        let (decoded_xid, decoded) = decode_streamed(bytes).expect("decodes");
        prop_assert_eq!(decoded, message.clone());
        let carries_xid = matches!(
            message,
            PgOutputMessage::Relation(_) | PgOutputMessage::Type(_) | PgOutputMessage::Insert(_)
                | PgOutputMessage::Update(_) | PgOutputMessage::Delete(_)
                | PgOutputMessage::Truncate(_) | PgOutputMessage::Message(_)
        );
        prop_assert_eq!(decoded_xid, carries_xid.then_some(xid));
    }

    #[test]
    fn every_prefix_of_an_encoded_message_is_rejected(message in arb_message()) {
        let bytes = encode::encode(&message);
        for len in 0..bytes.len() {
            prop_assert!(decode(bytes.slice(..len)).is_err());
        }
    }

    #[test]
    fn standby_status_updates_round_trip(
        write in any::<u64>(), flush in any::<u64>(), apply in any::<u64>(),
        clock in any::<i64>(), reply_requested in any::<bool>(),
    ) {
        let update = StandbyStatusUpdate {
            write: Lsn(write), flush: Lsn(flush), apply: Lsn(apply),
            clock: PgTimestamp(clock), reply_requested,
        };
        prop_assert_eq!(StandbyStatusUpdate::parse(&update.encode()), Ok(update));
    }

    #[test]
    fn lsn_text_round_trips(value in any::<u64>()) {
        let lsn = Lsn(value);
        prop_assert_eq!(lsn.to_string().parse::<Lsn>(), Ok(lsn));
    }
}

/// Names and prefixes: PostgreSQL strings cannot contain NUL.
fn arb_name() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn arb_tuple() -> impl Strategy<Value = TupleData> {
    let value = prop_oneof![
        Just(ColumnValue::Null),
        Just(ColumnValue::UnchangedToast),
        "\\PC{0,20}".prop_map(|text| ColumnValue::Text(
            PgText::new(Bytes::from(text)).expect("a String is UTF-8")
        )),
        proptest::collection::vec(any::<u8>(), 0..20)
            .prop_map(|bytes| ColumnValue::Binary(Bytes::from(bytes))),
    ];
    proptest::collection::vec(value, 0..6).prop_map(|columns| TupleData { columns })
}

fn arb_old_tuple() -> impl Strategy<Value = OldTuple> {
    (
        prop_oneof![Just(OldTupleKind::Key), Just(OldTupleKind::Full)],
        arb_tuple(),
    )
        .prop_map(|(kind, tuple)| OldTuple { kind, tuple })
}

fn arb_message() -> impl Strategy<Value = PgOutputMessage> {
    let lsn = || any::<u64>().prop_map(Lsn);
    let timestamp = || any::<i64>().prop_map(PgTimestamp);
    let identity = prop_oneof![
        Just(ReplicaIdentity::Default),
        Just(ReplicaIdentity::Nothing),
        Just(ReplicaIdentity::Full),
        Just(ReplicaIdentity::Index),
    ];
    let column = (any::<u8>(), arb_name(), any::<u32>(), any::<i32>()).prop_map(
        |(flags, name, type_oid, type_modifier)| Column {
            flags,
            name,
            type_oid,
            type_modifier,
        },
    );
    prop_oneof![
        (lsn(), timestamp(), any::<u32>()).prop_map(|(final_lsn, commit_timestamp, xid)| {
            PgOutputMessage::Begin(Begin {
                final_lsn,
                commit_timestamp,
                xid,
            })
        }),
        (any::<u8>(), lsn(), lsn(), timestamp()).prop_map(
            |(flags, commit_lsn, end_lsn, commit_timestamp)| {
                PgOutputMessage::Commit(Commit {
                    flags,
                    commit_lsn,
                    end_lsn,
                    commit_timestamp,
                })
            }
        ),
        (lsn(), arb_name())
            .prop_map(|(commit_lsn, name)| PgOutputMessage::Origin(Origin { commit_lsn, name })),
        (
            any::<u32>(),
            arb_name(),
            arb_name(),
            identity,
            proptest::collection::vec(column, 0..5)
        )
            .prop_map(|(id, namespace, name, replica_identity, columns)| {
                PgOutputMessage::Relation(Relation {
                    id,
                    namespace,
                    name,
                    replica_identity,
                    columns,
                })
            }),
        (any::<u32>(), arb_name(), arb_name()).prop_map(|(id, namespace, name)| {
            PgOutputMessage::Type(Type {
                id,
                namespace,
                name,
            })
        }),
        (any::<u32>(), arb_tuple())
            .prop_map(|(relation_id, new)| PgOutputMessage::Insert(Insert { relation_id, new })),
        (
            any::<u32>(),
            proptest::option::of(arb_old_tuple()),
            arb_tuple()
        )
            .prop_map(|(relation_id, old, new)| PgOutputMessage::Update(Update {
                relation_id,
                old,
                new
            })),
        (any::<u32>(), arb_old_tuple())
            .prop_map(|(relation_id, old)| PgOutputMessage::Delete(Delete { relation_id, old })),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(any::<u32>(), 0..5)
        )
            .prop_map(|(cascade, restart_identity, relation_ids)| {
                PgOutputMessage::Truncate(Truncate {
                    cascade,
                    restart_identity,
                    relation_ids,
                })
            }),
        (
            any::<bool>(),
            lsn(),
            arb_name(),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(transactional, lsn, prefix, content)| {
                PgOutputMessage::Message(LogicalMessage {
                    transactional,
                    lsn,
                    prefix,
                    content: Bytes::from(content),
                })
            }),
        (any::<u32>(), any::<bool>()).prop_map(|(xid, first_segment)| {
            PgOutputMessage::StreamStart(StreamStart { xid, first_segment })
        }),
        Just(PgOutputMessage::StreamStop),
        (any::<u32>(), any::<u8>(), lsn(), lsn(), timestamp()).prop_map(
            |(xid, flags, commit_lsn, end_lsn, commit_timestamp)| {
                PgOutputMessage::StreamCommit(StreamCommit {
                    xid,
                    flags,
                    commit_lsn,
                    end_lsn,
                    commit_timestamp,
                })
            }
        ),
        (any::<u32>(), any::<u32>()).prop_map(|(xid, subtransaction_xid)| {
            PgOutputMessage::StreamAbort(StreamAbort {
                xid,
                subtransaction_xid,
            })
        }),
    ]
}
