-- projection_order_state.last_commit_lsn: the first half of the last applied change's
-- Debezium `source.sequence` (the end LSN of the transaction committed before it). With
-- last_lsn it orders changes by commit first, then LSN, which is what an incremental
-- snapshot's reads need (projections/src/order_state.rs, `is_newer`). NULL where the change
-- had none (a reader's first transaction after a start, the outbox and order-events routes).
ALTER TABLE projection_order_state ADD COLUMN last_commit_lsn bigint;
