-- Who may write the projections, and which writer applied which offsets.
--
--   projection_writer   ONE row: the current projection writer's claim. A consumer claims it
--                       after taking the session advisory lock `order-projections`: it bumps
--                       `epoch`, draws a fresh `token`, and records the backend pid of the
--                       connection that holds the lock. Every batch transaction then locks this
--                       row (FOR SHARE) and checks that the claim is still its own and that its
--                       lock connection still holds the advisory lock (a fencing token: a
--                       consumer whose lock vanished with a PostgreSQL restart, or that another
--                       consumer superseded, finds out before it writes anything).
--   projection_batches  one row per partition per applied batch: the offset range and the epoch
--                       of the writer that applied it, so "every offset was applied once, by
--                       one writer at a time" can be checked with SQL. Pruned to the most
--                       recent 100,000 rows by the consumer.

CREATE TABLE projection_writer (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch        bigint      NOT NULL,
    token        uuid        NOT NULL,
    owner        text        NOT NULL,
    backend_pid  integer     NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projection_batches (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer      text        NOT NULL,
    topic         text        NOT NULL,
    partition     integer     NOT NULL,
    first_offset  bigint      NOT NULL,
    next_offset   bigint      NOT NULL CHECK (next_offset > first_offset),
    writer_epoch  bigint      NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now()
);
