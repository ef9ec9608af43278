-- Scenario types: one column per PostgreSQL type cdc-reader maps, with typical, NULL and edge
-- values, then one update and one delete. Defaults on some columns show how Debezium puts
-- column defaults into the schema (a function default such as now() shows in orders_lifecycle:
-- orders.created_at). Fixed values everywhere, so two runs write the same data.
CREATE TYPE conformance_mood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE conformance_types (
    id              integer PRIMARY KEY,
    c_smallint      smallint NOT NULL DEFAULT 7,
    c_integer       integer,
    c_bigint        bigint DEFAULT -1,
    c_real          real,
    c_double        double precision,
    c_boolean       boolean NOT NULL DEFAULT false,
    c_text          text DEFAULT 'hello',
    c_varchar       varchar(20) NOT NULL DEFAULT 'v',
    c_char          char(3),
    c_numeric       numeric(12,2) DEFAULT 0.00,
    c_numeric_any   numeric,
    c_date          date DEFAULT '2020-02-29',
    c_timestamp     timestamp,
    c_timestamptz   timestamptz DEFAULT '2001-02-03 04:05:06.789+00',
    c_time          time,
    c_timetz        timetz,
    c_interval      interval,
    c_uuid          uuid,
    c_json          json,
    c_jsonb         jsonb,
    c_bytea         bytea,
    c_mood          conformance_mood DEFAULT 'ok',
    c_text_array    text[],
    c_int_array     integer[]
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

-- typical values
INSERT INTO conformance_types VALUES (
    1, 1, 42, 9000000000, 1.5, 2.25, true, 'plain text', 'short', 'abc', 1234.56, 3.14159,
    '2024-03-15', '2024-03-15 12:34:56', '2024-03-15 12:34:56+02', '12:34:56', '12:34:56+02',
    '1 day 2 hours 3 minutes', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}',
    '\xdeadbeef', 'happy', '{alpha,beta}', '{1,2,3}');

-- defaults only
INSERT INTO conformance_types (id) VALUES (2);

-- NULL in every nullable column
INSERT INTO conformance_types VALUES (
    3, 0, NULL, NULL, NULL, NULL, false, NULL, '', NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- edge values
INSERT INTO conformance_types VALUES (
    4, -32768, -2147483648, 9223372036854775807, -0.000123, 1e300, true,
    'Grüße, 世界 🎉 "quoted" \backslash', 'exactly twenty chars', 'a', -9999999999.99,
    -123456789012345678901234567890.123456789,
    '1969-07-20', '1969-07-20 20:17:40.123456', '1960-01-01 00:00:00.5+00', '23:59:59.999999', '00:00:00-05:30',
    '-1 year 2 mons -3 days 04:05:06.789', '00000000-0000-0000-0000-000000000000', '[]', '{"z": null, "a": "ü"}',
    '\x', 'sad', '{"with space","quo\"te",NULL,"comma,here",""}', '{}');

INSERT INTO conformance_types (id, c_numeric, c_numeric_any, c_timestamp, c_timestamptz, c_int_array, c_real, c_double)
VALUES (5, 0.01, 0, '2000-01-01 00:00:00', '2000-01-01 00:00:00+00', '{1,NULL,3}', 0, -0.5);

UPDATE conformance_types SET c_integer = 43, c_text = 'changed', c_numeric = 1234.57, c_jsonb = '{"b": [3]}' WHERE id = 1;

DELETE FROM conformance_types WHERE id = 3;
