-- Domain events a handler kept failing on, set aside so the automation loop goes on with the rest (issue 16): the
-- event as it was and the error's class name (never its message, which may quote data).
-- depends: 0050.automation

CREATE TABLE domain_events_dead (
    id           bigint PRIMARY KEY,
    type         text NOT NULL,
    person_id    uuid,
    subject      text,
    data         jsonb NOT NULL,
    source_key   text NOT NULL,
    chain        int[] NOT NULL,
    occurred_at  timestamptz NOT NULL,
    error        text NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now()
);
