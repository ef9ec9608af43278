//! Conformance diff against Debezium. (being written)
