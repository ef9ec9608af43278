-- Scenario toast_types: unchanged TOASTed values of other types than text under REPLICA IDENTITY
-- DEFAULT: bytea, jsonb and text[] stored out of line (STORAGE EXTERNAL), then an UPDATE that
-- touches none of them. Debezium's placeholder takes each type's own form.
CREATE TABLE conformance_toast_types (
    id         integer PRIMARY KEY,
    status     text NOT NULL,
    big_bytea  bytea,
    big_jsonb  jsonb,
    big_array  text[]
);
ALTER TABLE conformance_toast_types ALTER COLUMN big_bytea SET STORAGE EXTERNAL;
ALTER TABLE conformance_toast_types ALTER COLUMN big_jsonb SET STORAGE EXTERNAL;
ALTER TABLE conformance_toast_types ALTER COLUMN big_array SET STORAGE EXTERNAL;

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_toast_types
SELECT 1, 'NEW', decode(string_agg(md5(i::text), ''), 'hex'),
       jsonb_build_object('k', string_agg(md5(i::text), '')), array_agg(md5(i::text))
  FROM generate_series(1, 1000) AS i;

UPDATE conformance_toast_types SET status = 'PAID' WHERE id = 1;

DELETE FROM conformance_toast_types WHERE id = 1;
