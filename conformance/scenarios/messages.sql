-- Scenario messages: logical decoding messages (pg_logical_emit_message), transactional (inside a
-- transaction with a row change) and not (emitted at once, even if the transaction rolls back),
-- text and binary content. Debezium writes them to <prefix>.message.
CREATE TABLE conformance_messages (
    id  integer PRIMARY KEY,
    v   text
);

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

BEGIN;
INSERT INTO conformance_messages VALUES (1, 'with a message');
SELECT pg_logical_emit_message(true, 'conformance', 'transactional hello');
COMMIT;

SELECT pg_logical_emit_message(false, 'conformance', 'non-transactional hello');

SELECT pg_logical_emit_message(false, 'conformance.binary', '\x00ff10'::bytea);

SELECT pg_logical_emit_message(true, 'conformance', '');

BEGIN;
SELECT pg_logical_emit_message(false, 'conformance', 'sent although rolled back');
SELECT pg_logical_emit_message(true, 'conformance', 'never sent: rolled back');
ROLLBACK;
