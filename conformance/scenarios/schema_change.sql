-- Scenario schema_change: columns added, dropped and retyped while the connector streams. Each
-- change arrives with a new Relation message; the records after it carry the new schema. The
-- pg_sleep calls (no WAL, nothing captured) let both connectors read each schema before the next
-- DDL, as both also look column details up in the catalog.
CREATE TABLE conformance_evolving (
    id  integer PRIMARY KEY,
    a   text
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_evolving VALUES (1, 'before');
SELECT pg_sleep(0.5);

ALTER TABLE conformance_evolving ADD COLUMN b integer NOT NULL DEFAULT 5;
INSERT INTO conformance_evolving VALUES (2, 'after add', 7);
UPDATE conformance_evolving SET a = 'updated' WHERE id = 1;
SELECT pg_sleep(0.5);

ALTER TABLE conformance_evolving DROP COLUMN a;
INSERT INTO conformance_evolving VALUES (3, 9);
SELECT pg_sleep(0.5);

ALTER TABLE conformance_evolving ALTER COLUMN b TYPE bigint;
INSERT INTO conformance_evolving VALUES (4, 10000000000);
DELETE FROM conformance_evolving WHERE id = 2;
