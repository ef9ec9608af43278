-- Scenario replica_identity_full: updates and deletes on a table with REPLICA IDENTITY FULL, so
-- the WAL carries the whole old row and Debezium fills "before" completely (with DEFAULT, as in
-- orders_lifecycle, "before" of an update is null and "before" of a delete holds only the key).
CREATE TABLE conformance_full (
    id      integer PRIMARY KEY,
    name    text NOT NULL,
    amount  numeric(10,2),
    note    text DEFAULT 'none'
);
ALTER TABLE conformance_full REPLICA IDENTITY FULL;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_full VALUES (1, 'first', 10.00, 'created'), (2, 'second', NULL, NULL);

UPDATE conformance_full SET amount = 12.34 WHERE id = 1;

UPDATE conformance_full SET name = 'second, renamed', note = 'set' WHERE id = 2;

UPDATE conformance_full SET note = note WHERE id = 1;

DELETE FROM conformance_full WHERE id = 1;

DELETE FROM conformance_full WHERE id = 2;
