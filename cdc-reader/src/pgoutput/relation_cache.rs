//! Table and type definitions seen so far in the stream.
//!
//! Insert, Update and Delete name their table only by OID; the table's schema, name and
//! columns came earlier in a Relation message (and the names of user-defined column types in
//! Type messages). pgoutput sends a Relation before the first change to a table in each
//! session, and again whenever its definition changes (e.g. after `ALTER TABLE ... ADD
//! COLUMN`), so the cache must be updated in stream order, replacing older definitions.

use std::collections::HashMap;

use super::message::{Oid, PgOutputMessage, Relation, Type};
use super::tuple::TupleData;

/// The latest Relation and Type definitions, by OID.
#[derive(Debug, Clone, Default)]
pub struct RelationCache {
    relations: HashMap<Oid, Relation>,
    types: HashMap<Oid, Type>,
}

/// A change that cannot be matched to a known table definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationCacheError {
    /// No Relation message announced this OID before a change used it.
    #[error("change for unknown relation OID {relation_id}: no Relation message announced it earlier in the stream (was the stream started mid-transaction?)")]
    UnknownRelation {
        /// The OID the change named.
        relation_id: Oid,
    },
    /// The row has a different number of values than the table has columns.
    #[error("row for {schema}.{table} has {found} values but the relation has {expected} columns")]
    ColumnCountMismatch {
        /// The table's schema.
        schema: String,
        /// The table's name.
        table: String,
        /// Columns in the Relation message.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
}

impl RelationCache {
    /// An empty cache, for a new replication session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the definitions a message carries (Relation and Type); other messages are
    /// ignored. Call it for every message, in stream order.
    pub fn observe(&mut self, message: &PgOutputMessage) {
        match message {
            PgOutputMessage::Relation(relation) => {
                self.insert_relation(relation.clone());
            }
            PgOutputMessage::Type(pg_type) => {
                self.insert_type(pg_type.clone());
            }
            _ => {}
        }
    }

    /// Stores a table definition, replacing (and returning) the previous one for its OID.
    pub fn insert_relation(&mut self, relation: Relation) -> Option<Relation> {
        self.relations.insert(relation.id, relation)
    }

    /// Stores a type definition, replacing (and returning) the previous one for its OID.
    pub fn insert_type(&mut self, pg_type: Type) -> Option<Type> {
        self.types.insert(pg_type.id, pg_type)
    }

    /// The table definition for `relation_id`.
    pub fn relation(&self, relation_id: Oid) -> Result<&Relation, RelationCacheError> {
        self.relations
            .get(&relation_id)
            .ok_or(RelationCacheError::UnknownRelation { relation_id })
    }

    /// The table definition for a row of `relation_id`, checking that the row has one value
    /// per column.
    pub fn relation_for_tuple(
        &self,
        relation_id: Oid,
        tuple: &TupleData,
    ) -> Result<&Relation, RelationCacheError> {
        let relation = self.relation(relation_id)?;
        if relation.columns.len() != tuple.columns.len() {
            return Err(RelationCacheError::ColumnCountMismatch {
                schema: relation.schema().to_string(),
                table: relation.name.clone(),
                expected: relation.columns.len(),
                found: tuple.columns.len(),
            });
        }
        Ok(relation)
    }

    /// The user-defined type with this OID, if a Type message announced it. Built-in types
    /// (OIDs below 16384) are never announced.
    pub fn type_by_oid(&self, type_oid: Oid) -> Option<&Type> {
        self.types.get(&type_oid)
    }

    /// How many tables are known.
    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::{Column, ColumnValue, ReplicaIdentity};

    fn relation(id: Oid, column_names: &[&str]) -> Relation {
        Relation {
            id,
            namespace: "public".to_string(),
            name: "orders".to_string(),
            replica_identity: ReplicaIdentity::Default,
            columns: column_names
                .iter()
                .map(|name| Column {
                    flags: 0,
                    name: name.to_string(),
                    type_oid: 25,
                    type_modifier: -1,
                })
                .collect(),
        }
    }

    #[test]
    fn unknown_relation_is_an_error() {
        let cache = RelationCache::new();
        assert_eq!(
            cache.relation(42),
            Err(RelationCacheError::UnknownRelation { relation_id: 42 })
        );
    }

    #[test]
    fn later_relation_messages_replace_earlier_ones() {
        let mut cache = RelationCache::new();
        cache.observe(&PgOutputMessage::Relation(relation(42, &["id"])));
        cache.observe(&PgOutputMessage::Relation(relation(42, &["id", "note"])));
        assert_eq!(cache.relation_count(), 1);
        let row = TupleData {
            columns: vec![ColumnValue::Null, ColumnValue::Null],
        };
        let found = cache.relation_for_tuple(42, &row).map(|r| r.columns.len());
        assert_eq!(found, Ok(2));
    }

    #[test]
    fn rows_must_match_the_column_count() {
        let mut cache = RelationCache::new();
        cache.insert_relation(relation(7, &["id", "note"]));
        let row = TupleData {
            columns: vec![ColumnValue::Null],
        };
        assert_eq!(
            cache.relation_for_tuple(7, &row),
            Err(RelationCacheError::ColumnCountMismatch {
                schema: "public".to_string(),
                table: "orders".to_string(),
                expected: 2,
                found: 1
            })
        );
    }

    #[test]
    fn remembers_types() {
        let mut cache = RelationCache::new();
        cache.observe(&PgOutputMessage::Type(Type {
            id: 16_500,
            namespace: "public".to_string(),
            name: "mood".to_string(),
        }));
        assert_eq!(
            cache.type_by_oid(16_500).map(|t| t.name.as_str()),
            Some("mood")
        );
        assert_eq!(cache.type_by_oid(23), None);
    }
}
