-- Scenario multi_table_tx: one transaction touching two tables, interleaved: the events keep the
-- transaction's order and share its txId.
CREATE TABLE conformance_a (
    id  integer PRIMARY KEY,
    v   text
);
CREATE TABLE conformance_b (
    id  bigint PRIMARY KEY,
    a_id integer,
    qty integer NOT NULL
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_b VALUES (100, NULL, 0);

BEGIN;
INSERT INTO conformance_a VALUES (1, 'a1');
INSERT INTO conformance_b VALUES (1, 1, 5);
UPDATE conformance_a SET v = 'a1 changed' WHERE id = 1;
INSERT INTO conformance_a VALUES (2, 'a2');
DELETE FROM conformance_b WHERE id = 100;
UPDATE conformance_b SET qty = 6 WHERE id = 1;
COMMIT;
