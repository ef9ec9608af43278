-- Scenario extension_types: the types of Debezium's data-type tables that the scenarios `types`
-- and `more_types` do not hold: bit strings (bit(1) is a boolean, longer ones io.debezium.data.Bits),
-- point (io.debezium.data.geometry.Point), tsvector, the contrib
-- extensions hstore (io.debezium.data.Json by default), ltree (io.debezium.data.Ltree) and citext,
-- domains over several base types, and arrays of these. (Not here: box, circle, line: Debezium
-- 3.6.1 leaves them out of its events (include.unknown.datatypes=false); cdc-reader writes their
-- text and a warning at start.)
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE DOMAIN conformance_positive_int AS integer CHECK (VALUE > 0);
CREATE DOMAIN conformance_price AS numeric(10,2);
CREATE DOMAIN conformance_email AS text;
CREATE DOMAIN conformance_stamp AS timestamptz;
CREATE TABLE conformance_extension_types (
    id              integer PRIMARY KEY,
    c_bit1          bit(1),
    c_bit8          bit(8),
    c_bit12         bit(12),
    c_varbit        bit varying(33),
    c_varbit1       bit varying(1),
    c_point         point,
    c_tsvector      tsvector,
    c_hstore        hstore,
    c_ltree         ltree,
    c_citext        citext,
    c_domain_int    conformance_positive_int,
    c_domain_price  conformance_price,
    c_domain_text   conformance_email,
    c_domain_stamp  conformance_stamp,
    c_citext_arr    citext[],
    c_ltree_arr     ltree[],
    c_hstore_arr    hstore[],
    c_bytea_arr     bytea[],
    c_int8_arr      bigint[],
    c_int2_arr      smallint[],
    c_bool_arr      boolean[],
    c_float_arr     double precision[],
    c_json_arr      jsonb[],
    c_time_arr      time[],
    c_timestamp_arr timestamp[]
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_extension_types VALUES (
    1, B'1', B'10100101', B'101000000001', B'101', B'1', '(1.5,-2.25)', 'a fat cat sat', '"a"=>"1", "b"=>NULL', 'Top.Science.Astronomy',
    'MixedCase', 7, 12.5, 'me@example.com', '2024-03-15 12:34:56+02', '{A,b}',
    '{Top.a,Top.b}', '{"\"k\"=>\"v\""}', '{"\\xdead",NULL}', '{9000000000,-1}', '{1,NULL}',
    '{t,f,NULL}', '{1.5,NaN,-Infinity}', '{"{\"a\": 1}",null}', '{12:34:56,NULL}',
    '{"2024-03-15 12:34:56.5",infinity}');

INSERT INTO conformance_extension_types (id, c_bit1, c_bit8, c_varbit, c_varbit1, c_point, c_hstore, c_ltree, c_citext)
    VALUES (2, B'0', B'00000000', B'', B'0', '(0,0)', '', '', '');

INSERT INTO conformance_extension_types (id) VALUES (3);

UPDATE conformance_extension_types SET c_varbit = B'111111111111111111111111111111111', c_point = '(-1e10,1e-10)' WHERE id = 2;
