-- Erasure requests made in crm-core (issue 14): who asked, when, under which request reference, for which person
-- id. No personal data: the person's facts are gone, the reference is the request's ticket number. One per person:
-- a second request for an erased person answers 409.
CREATE TABLE erasures (
    person_id     uuid PRIMARY KEY,
    request_id    text NOT NULL UNIQUE,
    reference     text NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    requested_by  text NOT NULL,                 -- the caller's label (user:…, token:…)
    via           text NOT NULL,                 -- api or ui
    requested_at  timestamptz NOT NULL DEFAULT now()
);
