-- Scenario replica_identity_index: REPLICA IDENTITY USING INDEX on a unique column that is not the
-- primary key. The WAL carries the old value of that column only when it changes (and on delete),
-- while the Kafka key is still the primary key.
CREATE TABLE conformance_ri_index (
    id    integer PRIMARY KEY,
    code  text NOT NULL,
    v     text
);
CREATE UNIQUE INDEX conformance_ri_index_code ON conformance_ri_index (code);
ALTER TABLE conformance_ri_index REPLICA IDENTITY USING INDEX conformance_ri_index_code;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_ri_index VALUES (1, 'A', 'one');

UPDATE conformance_ri_index SET v = 'uno' WHERE id = 1;

UPDATE conformance_ri_index SET code = 'B' WHERE id = 1;

DELETE FROM conformance_ri_index WHERE id = 1;
