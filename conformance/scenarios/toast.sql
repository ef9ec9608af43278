-- Scenario toast: a text column far over the TOAST threshold (about 2 kB), stored out of line
-- uncompressed (STORAGE EXTERNAL, 32 kB of md5 hex), then an UPDATE that does not touch it. The
-- WAL does not carry unchanged TOASTed values: Debezium puts a placeholder in their place.
-- Under DEFAULT and under FULL.
CREATE TABLE conformance_toast (
    id      integer PRIMARY KEY,
    status  text NOT NULL,
    big     text
);
ALTER TABLE conformance_toast ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE conformance_toast_full (
    id      integer PRIMARY KEY,
    status  text NOT NULL,
    big     text
);
ALTER TABLE conformance_toast_full ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE conformance_toast_full REPLICA IDENTITY FULL;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_toast
SELECT 1, 'NEW', string_agg(md5(i::text), '') FROM generate_series(1, 1000) AS i;
INSERT INTO conformance_toast_full
SELECT 1, 'NEW', string_agg(md5(i::text), '') FROM generate_series(1, 1000) AS i;

UPDATE conformance_toast SET status = 'PAID' WHERE id = 1;
UPDATE conformance_toast_full SET status = 'PAID' WHERE id = 1;

UPDATE conformance_toast SET big = 'short now' WHERE id = 1;

DELETE FROM conformance_toast WHERE id = 1;
DELETE FROM conformance_toast_full WHERE id = 1;
