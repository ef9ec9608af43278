-- Scenario unknown_types: columns of types Debezium 3.6.1 does not map (the geometric types other
-- than point, and arrays it leaves out: interval[], money[]). Under Debezium's default
-- include.unknown.datatypes=false they are left out of the events; the recording in
-- debezium/include_unknown_datatypes_true/ shows them with that option on.
CREATE TABLE conformance_unknown_types (
    id          integer PRIMARY KEY,
    c_text      text,
    c_box       box,
    c_circle    circle,
    c_line      line,
    c_intervals interval[],
    c_moneys    money[]
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_unknown_types VALUES
    (1, 'one', '((0,0),(1,2))', '<(1,2),3>', '{1,-1,0}', '{"1 day","-00:00:01.5"}', '{1.50,-2}');

INSERT INTO conformance_unknown_types (id, c_text) VALUES (2, 'nulls');

UPDATE conformance_unknown_types SET c_box = '((5,5),(-1,-1))', c_text = 'changed' WHERE id = 1;

DELETE FROM conformance_unknown_types WHERE id = 2;
