-- Scenario no_primary_key: tables without a primary key get a null Kafka key. With REPLICA
-- IDENTITY DEFAULT such a table cannot even be updated while it is published (PostgreSQL refuses),
-- so only inserts there; with FULL, updates and deletes carry the whole old row.
CREATE TABLE conformance_nopk (
    a  integer,
    b  text
);
CREATE TABLE conformance_nopk_full (
    a  integer,
    b  text
);
ALTER TABLE conformance_nopk_full REPLICA IDENTITY FULL;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_nopk VALUES (1, 'one'), (1, 'one');

INSERT INTO conformance_nopk_full VALUES (1, 'one'), (2, 'two');

UPDATE conformance_nopk_full SET b = 'two, changed' WHERE a = 2;

DELETE FROM conformance_nopk_full WHERE a = 1;
