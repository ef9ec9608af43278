//! Pairing: which of our records answers which of Debezium's.
//!
//! Two records can be partners only when they are about the same thing: the same table (topic
//! minus each side's prefix), the same operation (`c`, `u`, `d`, `t`, `m`, or a tombstone) and
//! the same key. Within such a group:
//!
//! 1. side by side (both read the same WAL), records with the same `source.lsn` pair first;
//! 2. the rest pair in the order each side wrote them (the first update of order 1001 with the
//!    first, the second with the second). Against a recording LSNs mean nothing, so all of a
//!    group pairs this way.
//!
//! Whatever is left over on either side has no partner and is a difference. Pairing ignores
//! order across groups; [`order_inversions`] then checks that within each table the pairs keep
//! Debezium's order (consumers rely on per-partition order).

use std::collections::BTreeMap;

use crate::field_diff::Baseline;
use crate::record::Record;
use crate::CompareOptions;

/// A Debezium record and ours, by their index in each list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub debezium: usize,
    pub ours: usize,
}

/// The outcome of pairing: the pairs, in Debezium's order, and the indices left over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairing {
    pub pairs: Vec<Pair>,
    pub only_debezium: Vec<usize>,
    pub only_ours: Vec<usize>,
}

/// What two records must share to be partners: (table, op, canonical key).
type GroupKey = (String, String, String);

fn group_key(record: &Record, prefix: &str) -> GroupKey {
    (
        record.table(prefix),
        record.op(),
        record.key_text_without_prefix(prefix),
    )
}

fn groups(records: &[Record], prefix: &str) -> BTreeMap<GroupKey, Vec<usize>> {
    let mut groups: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        groups
            .entry(group_key(record, prefix))
            .or_default()
            .push(index);
    }
    groups
}

/// Pairs Debezium's records with ours (see the module comment for the rules).
pub fn pair(debezium: &[Record], ours: &[Record], options: &CompareOptions) -> Pairing {
    let mut our_groups = groups(ours, &options.our_topic_prefix);
    let mut pairing = Pairing::default();
    for (key, dbz_indices) in groups(debezium, &options.debezium_topic_prefix) {
        let our_indices = our_groups.remove(&key).unwrap_or_default();
        let mut our_taken = vec![false; our_indices.len()];
        let mut dbz_unpaired = Vec::new();
        for &dbz_index in &dbz_indices {
            let same_lsn = match (options.baseline, debezium[dbz_index].source_lsn()) {
                (Baseline::SideBySide, Some(lsn)) => {
                    our_indices
                        .iter()
                        .enumerate()
                        .position(|(slot, &our_index)| {
                            !our_taken[slot] && ours[our_index].source_lsn() == Some(lsn)
                        })
                }
                _ => None,
            };
            match same_lsn {
                Some(slot) => {
                    our_taken[slot] = true;
                    pairing.pairs.push(Pair {
                        debezium: dbz_index,
                        ours: our_indices[slot],
                    });
                }
                None => dbz_unpaired.push(dbz_index),
            }
        }
        let mut our_unpaired = our_indices
            .iter()
            .zip(&our_taken)
            .filter(|(_, taken)| !**taken)
            .map(|(&index, _)| index);
        for dbz_index in dbz_unpaired {
            match our_unpaired.next() {
                Some(our_index) => pairing.pairs.push(Pair {
                    debezium: dbz_index,
                    ours: our_index,
                }),
                None => pairing.only_debezium.push(dbz_index),
            }
        }
        pairing.only_ours.extend(our_unpaired);
    }
    pairing.only_ours.extend(our_groups.into_values().flatten());
    pairing.pairs.sort_by_key(|pair| pair.debezium);
    pairing.only_debezium.sort_unstable();
    pairing.only_ours.sort_unstable();
    pairing
}

/// Within one table, a pair that our side wrote before a pair Debezium wrote earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inversion {
    pub table: String,
    /// The Debezium record whose partner came too early on our side.
    pub debezium_index: usize,
    pub ours_index: usize,
}

/// Per table, the pairs in Debezium's order must have increasing indices on our side too.
/// Reports each pair whose partner comes before the previous pair's partner.
pub fn order_inversions(
    debezium: &[Record],
    pairs: &[Pair],
    options: &CompareOptions,
) -> Vec<Inversion> {
    let mut last_ours_by_table: BTreeMap<String, usize> = BTreeMap::new();
    let mut inversions = Vec::new();
    let mut in_order: Vec<&Pair> = pairs.iter().collect();
    in_order.sort_by_key(|pair| pair.debezium);
    for pair in in_order {
        let Some(record) = debezium.get(pair.debezium) else {
            continue;
        };
        let table = record.table(&options.debezium_topic_prefix);
        match last_ours_by_table.get(&table) {
            Some(&last) if pair.ours < last => inversions.push(Inversion {
                table,
                debezium_index: pair.debezium,
                ours_index: pair.ours,
            }),
            _ => {
                last_ours_by_table.insert(table, pair.ours);
            }
        }
    }
    inversions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn change(prefix: &str, table: &str, op: &str, id: i64, lsn: i64) -> Record {
        Record {
            topic: format!("{prefix}.public.{table}"),
            key: json!({"schema": {}, "payload": {"id": id}}),
            value: json!({"schema": {}, "payload": {"op": op, "source": {"lsn": lsn}}}),
            headers: Default::default(),
        }
    }

    fn tombstone(prefix: &str, table: &str, id: i64) -> Record {
        Record {
            value: Value::Null,
            ..change(prefix, table, "d", id, 0)
        }
    }

    fn pairs_of(pairing: &Pairing) -> Vec<(usize, usize)> {
        pairing.pairs.iter().map(|p| (p.debezium, p.ours)).collect()
    }

    #[test]
    fn pairs_by_table_op_and_key_whatever_the_order_across_tables() {
        let dbz = [
            change("dbz", "orders", "c", 1, 10),
            change("dbz", "items", "c", 1, 20),
        ];
        let ours = [
            change("s1", "items", "c", 1, 20),
            change("s1", "orders", "c", 1, 10),
        ];
        let pairing = pair(&dbz, &ours, &CompareOptions::side_by_side("dbz", "s1"));
        assert_eq!(pairs_of(&pairing), [(0, 1), (1, 0)]);
        assert!(pairing.only_debezium.is_empty() && pairing.only_ours.is_empty());
        assert!(order_inversions(
            &dbz,
            &pairing.pairs,
            &CompareOptions::side_by_side("dbz", "s1")
        )
        .is_empty());
    }

    #[test]
    fn side_by_side_the_same_lsn_wins_over_order() {
        let dbz = [
            change("dbz", "orders", "u", 1, 10),
            change("dbz", "orders", "u", 1, 20),
        ];
        let ours = [
            change("s1", "orders", "u", 1, 20),
            change("s1", "orders", "u", 1, 10),
        ];
        let live = pair(&dbz, &ours, &CompareOptions::side_by_side("dbz", "s1"));
        assert_eq!(pairs_of(&live), [(0, 1), (1, 0)]);
        let options = CompareOptions::side_by_side("dbz", "s1");
        assert_eq!(order_inversions(&dbz, &live.pairs, &options).len(), 1);

        let recorded = pair(&dbz, &ours, &CompareOptions::against_recording("dbz", "s1"));
        assert_eq!(pairs_of(&recorded), [(0, 0), (1, 1)]);
    }

    #[test]
    fn leftovers_on_either_side_are_unpaired() {
        let dbz = [
            change("dbz", "orders", "d", 1, 10),
            tombstone("dbz", "orders", 1),
            change("dbz", "orders", "c", 2, 30),
        ];
        let ours = [
            change("s1", "orders", "d", 1, 10),
            change("s1", "orders", "c", 3, 30),
        ];
        let pairing = pair(&dbz, &ours, &CompareOptions::side_by_side("dbz", "s1"));
        assert_eq!(pairs_of(&pairing), [(0, 0)]);
        assert_eq!(pairing.only_debezium, [1, 2]);
        assert_eq!(pairing.only_ours, [1]);
    }

    #[test]
    fn a_topic_under_another_prefix_never_pairs() {
        let dbz = [change("dbz", "orders", "c", 1, 10)];
        let ours = [change("other", "orders", "c", 1, 10)];
        let pairing = pair(&dbz, &ours, &CompareOptions::side_by_side("dbz", "s1"));
        assert!(pairing.pairs.is_empty());
        assert_eq!(
            (pairing.only_debezium.len(), pairing.only_ours.len()),
            (1, 1)
        );
    }
}
