-- What the consumer keeps next to its projections, all written in ONE transaction per batch
-- (the projection rows, the per-order state, the offsets), so a crash never splits them.
--
--   consumer_offsets           per consumer and partition, the next Kafka offset to read: the
--                              consumer seeks there on start (Kafka's committed offsets are
--                              only informational)
--   projection_order_state     per order, what the projections last saw (a KTable): its row and
--                              the LSN of the last change applied; a deleted order keeps a row
--                              (present = false) so a late duplicate cannot revive it
--   projection_outbox_events   the outbox event ids applied (the outbox route's idempotency)
--   order_status_totals        the second projection: per status, count and sum

CREATE TABLE consumer_offsets (
    consumer     text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    next_offset  bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

CREATE TABLE projection_order_state (
    order_id     bigint  PRIMARY KEY,
    present      boolean NOT NULL,
    customer_id  bigint,
    status       text,
    total_cents  bigint,
    last_lsn     bigint,
    CHECK (present = (customer_id IS NOT NULL AND status IS NOT NULL AND total_cents IS NOT NULL))
);

CREATE TABLE projection_outbox_events (
    event_id     text        PRIMARY KEY,
    applied_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_status_totals (
    status        text    PRIMARY KEY,
    order_count   bigint  NOT NULL,
    total_amount  numeric NOT NULL
);
