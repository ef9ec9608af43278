-- Scenario more_types: the types cdc-reader maps that the scenario `types` does not hold: time and
-- timestamp with a precision of 0..3 (Debezium's adaptive mode makes them millisecond types),
-- timestamptz(3), money, network addresses, xml, ranges, oid, "char", arrays of dates, uuids,
-- numerics and timestamptz; then infinities, typical and NULL values. (`name`: see name_type.sql.)
CREATE TABLE conformance_more_types (
    id               integer PRIMARY KEY,
    c_time0          time(0),
    c_time3          time(3),
    c_time6          time(6),
    c_timestamp0     timestamp(0),
    c_timestamp3     timestamp(3),
    c_timestamptz3   timestamptz(3),
    c_timetz3        timetz(3),
    c_date           date,
    c_money          money,
    c_inet           inet,
    c_cidr           cidr,
    c_macaddr        macaddr,
    c_macaddr8       macaddr8,
    c_xml            xml,
    c_int4range      int4range,
    c_int8range      int8range,
    c_numrange       numrange,
    c_tsrange        tsrange,
    c_tstzrange      tstzrange,
    c_daterange      daterange,
    c_oid            oid,
    c_char           "char",
    c_date_array     date[],
    c_uuid_array     uuid[],
    c_numeric_array  numeric(5,2)[],
    c_tstz_array     timestamptz[]
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

-- typical values
INSERT INTO conformance_more_types VALUES (
    1, '12:34:56', '12:34:56.789', '12:34:56.789012', '2024-03-15 12:34:56', '2024-03-15 12:34:56.789',
    '2024-03-15 12:34:56.789+02', '12:34:56.789+02', '2024-03-15', 1234.56, '192.168.0.1/24', '10.0.0.0/8',
    '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '<a b="c">text</a>', '[1,10)', '[1,10]',
    '(1.5,2.5]', '[2024-01-01 00:00,2024-02-01 00:00)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)',
    '[2024-01-01,2024-02-01)', 12345, 'x', '{2024-01-01,1969-12-31}',
    '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{1.5,-2.25}', '{"2024-03-15 12:34:56+00"}');

-- edge values: infinities, empty ranges, negative money, IPv6, the last microsecond of a day
INSERT INTO conformance_more_types VALUES (
    2, '00:00:00', '23:59:59.999', '23:59:59.999999', 'infinity', '-infinity',
    'infinity', '00:00:00-05:30', 'infinity', -0.01, '::1', '2001:db8::/32',
    'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00', '<empty/>', 'empty', '(,5)',
    'empty', '(,2024-01-01 00:00)', '[2024-01-01 00:00+00,)', '(,)', 0, 'Z', '{}',
    '{}', '{NULL}', '{infinity,-infinity}');

INSERT INTO conformance_more_types (id, c_date, c_timestamptz3) VALUES (3, '-infinity', '-infinity');

-- NULL everywhere
INSERT INTO conformance_more_types (id) VALUES (4);

UPDATE conformance_more_types SET c_money = 99.99, c_time3 = '01:02:03.004' WHERE id = 1;

DELETE FROM conformance_more_types WHERE id = 2;
