-- Scenario special_values: values PostgreSQL accepts at the edges of each type's range, and the
-- special values: numeric NaN and +-Infinity (PostgreSQL 14+), float NaN, +-Infinity and -0,
-- `infinity` dates, BC dates and timestamps, the last representable date and timestamp,
-- time 24:00:00, interval and money extremes, empty strings and arrays, NULLs inside arrays,
-- multi-dimensional arrays and arrays with explicit bounds, a long value.
-- Under decimal.handling.mode=precise Debezium cannot write numeric NaN/Infinity as a Decimal:
-- it writes the field null and logs a warning (event.converting.failure.handling.mode=warn).
CREATE TABLE conformance_special_values (
    id             integer PRIMARY KEY,
    c_numeric      numeric,
    c_numeric_10_2 numeric(10,2),
    c_numeric_arr  numeric[],
    c_float4       real,
    c_float8       double precision,
    c_date         date,
    c_timestamp    timestamp,
    c_timestamptz  timestamptz,
    c_time         time,
    c_timetz       timetz,
    c_interval     interval,
    c_money        money,
    c_text         text,
    c_int_arr      integer[],
    c_text_arr     text[]
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

-- numeric NaN and the infinities: null fields under precise decimals
INSERT INTO conformance_special_values (id, c_numeric, c_numeric_10_2, c_numeric_arr)
    VALUES (1, 'NaN', 'NaN', '{1.5,NaN}');
-- (a numeric(p,s) column cannot hold an infinity)
INSERT INTO conformance_special_values (id, c_numeric, c_numeric_arr) VALUES (2, 'Infinity', '{-Infinity}');
INSERT INTO conformance_special_values (id, c_numeric, c_numeric_10_2) VALUES (4, '-Infinity', '99999999.99');
INSERT INTO conformance_special_values (id, c_numeric, c_numeric_10_2) VALUES (3, '-0', '-0.00');

-- floats: NaN, infinities, negative zero, the extremes
INSERT INTO conformance_special_values (id, c_float4, c_float8) VALUES (10, 'NaN', 'Infinity');
INSERT INTO conformance_special_values (id, c_float4, c_float8) VALUES (11, '-Infinity', '-0');
INSERT INTO conformance_special_values (id, c_float4, c_float8) VALUES (12, '3.4028235e+38', '-1.7976931348623157e+308');
INSERT INTO conformance_special_values (id, c_float4, c_float8) VALUES (13, '-0', '4.9e-324');

-- dates and timestamps at the ends of PostgreSQL's range, and BC
INSERT INTO conformance_special_values (id, c_date, c_timestamp, c_timestamptz)
    VALUES (20, '4713-11-24 BC', '4713-11-24 00:00:00 BC', '4713-11-24 00:00:00+00 BC');
INSERT INTO conformance_special_values (id, c_date, c_timestamp, c_timestamptz)
    VALUES (21, '5874897-12-31', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00');
INSERT INTO conformance_special_values (id, c_date, c_timestamp, c_timestamptz)
    VALUES (22, '0044-03-15 BC', '0001-01-01 00:00:00 BC', '0001-12-31 23:59:59+00 BC');
INSERT INTO conformance_special_values (id, c_date, c_timestamp, c_timestamptz)
    VALUES (23, '-infinity', '-infinity', 'infinity');

-- times: 24:00:00 is a valid time
INSERT INTO conformance_special_values (id, c_time, c_timetz) VALUES (30, '24:00:00', '24:00:00+00');
INSERT INTO conformance_special_values (id, c_time, c_timetz) VALUES (31, '00:00:00', '23:59:59.999999-15:59');

-- interval and money extremes
INSERT INTO conformance_special_values (id, c_interval, c_money) VALUES (40, '178000000 years', '92233720368547758.07');
INSERT INTO conformance_special_values (id, c_interval, c_money) VALUES (41, '-178000000 years', '-92233720368547758.08');
-- (not here: '2147483647 days 2562047788:00:54.775807', the largest interval; Debezium 3.6.1
-- stops streaming at it. cdc-reader writes it; see the unit tests in envelope/value.rs.)
INSERT INTO conformance_special_values (id, c_interval, c_money) VALUES (42, '2147483647 days', '0');
INSERT INTO conformance_special_values (id, c_interval) VALUES (43, '-1 mons 3 days -04:05:06.000007');

-- empty strings and arrays, NULLs inside arrays, explicit bounds. (Not here: multi-dimensional
-- arrays. Debezium 3.6.1 writes '{{1,2},{3,4}}' as [null,null] and '{{a,b},{c,NULL}}' as Java
-- object names like "[Ljava.lang.String;@2bd7deb9"; cdc-reader writes null and a warning.)
INSERT INTO conformance_special_values (id, c_text, c_int_arr, c_text_arr) VALUES (50, '', '{}', '{}');
INSERT INTO conformance_special_values (id, c_text, c_int_arr, c_text_arr) VALUES (51, ' ', '{NULL,NULL}', '{NULL,"",NULL}');
INSERT INTO conformance_special_values (id, c_int_arr, c_text_arr) VALUES (53, '[0:2]={7,8,9}', '[2:2]={x}');

-- a long value (100 000 characters)
INSERT INTO conformance_special_values (id, c_text) VALUES (60, repeat('abcdefghij', 10000));

UPDATE conformance_special_values SET c_numeric = 'NaN', c_float8 = 'NaN' WHERE id = 3;
DELETE FROM conformance_special_values WHERE id = 1;
