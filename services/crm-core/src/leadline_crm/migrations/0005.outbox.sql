-- Kafka messages crm-core owes (an outbox): each is inserted in the same transaction as the change it announces,
-- so a change never commits without its message nor a message without its change. The relay (outbox.py) sends
-- them in id order and deletes each once Kafka acknowledged it.
-- depends: 0004.touchpoints_lean_writes
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text NOT NULL CHECK (topic IN ('config', 'raw')),  -- kind of topic; the name gets the prefix
    key         bytea NOT NULL,
    value       bytea,                                              -- NULL: a tombstone
    created_at  timestamptz NOT NULL DEFAULT now()
);
