-- Outbox rows Kafka refused outright (too large for the topic, or malformed): moved here by the relay so that one
-- bad row does not hold up every message behind it. Kept for an operator to inspect, fix and re-queue
-- (INSERT INTO outbox (topic, key, value) SELECT topic, key, value FROM outbox_dead WHERE id = ...).
-- depends: 0005.outbox
CREATE TABLE outbox_dead (
    id          bigint PRIMARY KEY,            -- the row's id in the outbox
    topic       text NOT NULL,
    key         bytea NOT NULL,
    value       bytea,
    created_at  timestamptz NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    error       text NOT NULL                  -- the Kafka error's name, never the message's content
);
