-- Scenario name_type: a column of PostgreSQL's internal type `name` (63-byte identifiers, what
-- the catalogs use). pg_type gives `name` an element type (char) although it is not an array.
CREATE TABLE conformance_name_type (
    id      integer PRIMARY KEY,
    c_name  name
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

INSERT INTO conformance_name_type VALUES (1, 'a_name'), (2, ''), (3, NULL);

UPDATE conformance_name_type SET c_name = 'renamed' WHERE id = 1;
