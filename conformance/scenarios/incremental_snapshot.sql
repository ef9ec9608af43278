-- Scenario incremental_snapshot: Debezium's incremental snapshot, asked for with a signal row,
-- with changes to the tables interleaved while it reads them in chunks. Its recording with the
-- signal table configured is debezium/incremental_snapshot/ (options.properties:
-- signal.data.collection, a chunk size of 8); debezium/incremental_snapshot.jsonl is the same
-- scenario without it, where the signal row is a row like any other.
-- Compared (tests/conformance.rs, compare_incremental): the streamed changes in order, per key
-- the `r` records of keys no change touched (every field, source block included), and the
-- final state of every key. Which touched keys also get an `r` depends on timing, on both sides.
CREATE TABLE conformance_signal (
    id    varchar(42) PRIMARY KEY,
    type  varchar(32) NOT NULL,
    data  varchar(2048)
);
CREATE TABLE conformance_inc (
    id       integer PRIMARY KEY,
    name     text NOT NULL,
    amount   numeric(10,2),
    created  timestamptz NOT NULL,
    flag     boolean
);
INSERT INTO conformance_inc
SELECT i, 'row ' || i, i * 1.25, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 hour',
       CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END
FROM generate_series(1, 40) AS i;
CREATE TABLE conformance_inc_text (
    code   text PRIMARY KEY,
    label  varchar(20)
);
INSERT INTO conformance_inc_text
SELECT 'k' || lpad(i::text, 3, '0'), 'label ' || i FROM generate_series(1, 12) AS i;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_signal VALUES ('ad-hoc-1', 'execute-snapshot',
  '{"data-collections": ["public.conformance_inc", "public.conformance_inc_text"], "type": "incremental"}');
UPDATE conformance_inc SET name = 'changed 5' WHERE id = 5;
DELETE FROM conformance_inc WHERE id = 7;
INSERT INTO conformance_inc VALUES (100, 'new 100', 1.00, '2026-02-01 00:00:00+00', true);
UPDATE conformance_inc SET id = 200 WHERE id = 9;
UPDATE conformance_inc SET amount = 0.5 WHERE id = 33;
UPDATE conformance_inc_text SET label = 'changed' WHERE code = 'k011';
SELECT pg_sleep(0.5);
UPDATE conformance_inc SET name = 'late 38' WHERE id = 38;
DELETE FROM conformance_inc_text WHERE code = 'k002';
