-- Scenario key_change: an UPDATE that changes the primary key. Debezium turns it into a delete
-- of the old key (plus its tombstone) and a create under the new key, under DEFAULT and FULL.
CREATE TABLE conformance_key (
    id    integer PRIMARY KEY,
    name  text NOT NULL
);
CREATE TABLE conformance_key_full (
    id    integer PRIMARY KEY,
    name  text NOT NULL
);
ALTER TABLE conformance_key_full REPLICA IDENTITY FULL;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_key VALUES (1, 'one');
INSERT INTO conformance_key_full VALUES (1, 'one');

UPDATE conformance_key SET id = 10 WHERE id = 1;
UPDATE conformance_key_full SET id = 10, name = 'ten' WHERE id = 1;
