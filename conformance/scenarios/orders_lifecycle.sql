-- Scenario orders_lifecycle: the playground's own tables (REPLICA IDENTITY DEFAULT). An order with
-- two items and its outbox event in one transaction, a status change, a total change, then the
-- delete (which cascades to the items). Fixed ids and timestamps keep the recording repeatable.

-- conformance:changes (everything below is captured; everything above runs before the connector starts)

BEGIN;
INSERT INTO orders (id, customer_id, status, total, currency, created_at, updated_at)
VALUES (1001, 42, 'NEW', 47.40, 'EUR', '2024-05-01 10:00:00+00', '2024-05-01 10:00:00+00');
INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
VALUES (1001, 1, 'SKU-RED-MUG', 2, 6.25), (1001, 2, 'SKU-TEA', 1, 34.90);
INSERT INTO outbox_events (id, aggregatetype, aggregateid, type, payload, created_at)
VALUES ('6f1c2a4e-5b7d-4c3e-9f8a-1b2c3d4e5f60', 'order', '1001', 'OrderCreated',
        '{"orderId": 1001, "customerId": 42, "total": "47.40"}', '2024-05-01 10:00:00+00');
COMMIT;

UPDATE orders SET status = 'PAID', updated_at = '2024-05-01 10:05:00+00' WHERE id = 1001;

UPDATE orders SET total = 52.40, updated_at = '2024-05-01 10:06:30.25+00' WHERE id = 1001;

DELETE FROM orders WHERE id = 1001;
