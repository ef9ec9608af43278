-- Scenario odd_names: table and column names that are not valid Avro names (a dash, a space, a
-- leading digit, non-ASCII letters). With Debezium's default schema.name.adjustment.mode=none
-- and field.name.adjustment.mode=none they are written as they are; the recordings in
-- debezium/*_name_adjustment_mode_avro*/ show how `avro` and `avro_unicode` rewrite them.
CREATE TABLE "conformance_odd-names" (
    id            integer PRIMARY KEY,
    "1st value"   text,
    "naïve-ö"     integer,
    "$dollar"     boolean,
    plain_name    text
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO "conformance_odd-names" VALUES (1, 'first', 2, true, 'plain');

UPDATE "conformance_odd-names" SET "naïve-ö" = 3 WHERE id = 1;

DELETE FROM "conformance_odd-names" WHERE id = 1;
