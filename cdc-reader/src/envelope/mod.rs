//! Debezium envelope builder. (being written)
