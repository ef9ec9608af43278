-- Scenario truncate: TRUNCATE of one table, then of two tables in one statement. Debezium skips
-- truncates by default (skipped.operations=t); scripts/debezium sets skipped.operations=none.
CREATE TABLE conformance_truncate (
    id  integer PRIMARY KEY,
    v   text
);
CREATE TABLE conformance_truncate_other (
    id  integer PRIMARY KEY
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_truncate VALUES (1, 'a'), (2, 'b');
INSERT INTO conformance_truncate_other VALUES (1);

TRUNCATE conformance_truncate;

INSERT INTO conformance_truncate VALUES (3, 'c');

TRUNCATE conformance_truncate, conformance_truncate_other;
