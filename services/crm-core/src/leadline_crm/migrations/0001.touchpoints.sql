-- People as crm-core knows them, and every touchpoint (one row per event, deduplicated by event_id).
CREATE TABLE persons (
    person_id   uuid PRIMARY KEY,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE touchpoints (
    event_id     text PRIMARY KEY,
    person_id    uuid NOT NULL REFERENCES persons (person_id),
    anon_id      text,
    type         text NOT NULL,
    source       text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    url          text,
    event        jsonb NOT NULL
);
CREATE INDEX touchpoints_person_time ON touchpoints (person_id, occurred_at DESC, event_id DESC);
CREATE INDEX touchpoints_anon_time ON touchpoints (anon_id, occurred_at DESC, event_id DESC)
    WHERE anon_id IS NOT NULL;

-- API tokens: only a SHA-256 of the token is stored; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    token_hash  bytea PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'sales', 'marketing', 'service', 'read_only')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
