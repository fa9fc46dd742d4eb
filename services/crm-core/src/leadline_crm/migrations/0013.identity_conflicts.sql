-- Identity conflicts a rep can review, and the merges a rep asked for (issue 12). The identity graph announces
-- every event that carries identifiers of two persons it will not merge automatically (a `conflict` change on
-- identity.changes.v1); crm-core keeps one open row per pair of persons, with the identifier's TYPE only (no
-- value: an erasure leaves nothing personal here) and the last event's id. A merge of the pair resolves it.
-- depends: 0009.persons_title_address
CREATE TABLE identity_conflicts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_a         uuid NOT NULL,
    person_b         uuid NOT NULL,
    identifier_type  text NOT NULL,
    event_id         text NOT NULL,                  -- the last event that hit the rule
    seen             integer NOT NULL DEFAULT 1,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    resolved_at      timestamptz,
    resolution       text CHECK (resolution IN ('merged', 'erased')),
    change_id        text,                           -- the merge or erase change that resolved it
    CHECK (person_a < person_b),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX identity_conflicts_open ON identity_conflicts (person_a, person_b) WHERE resolved_at IS NULL;
CREATE INDEX identity_conflicts_a ON identity_conflicts (person_a);
CREATE INDEX identity_conflicts_b ON identity_conflicts (person_b);

-- A merge a rep confirmed, sent to the identity graph through the outbox (a `merge` raw event whose event_id is
-- request_id); change_id and merged_at are set when the graph's merge change is applied.
CREATE TABLE merge_requests (
    request_id    text PRIMARY KEY,
    survivor      uuid NOT NULL,
    merged        uuid NOT NULL,
    requested_by  text NOT NULL,                     -- the caller's label, as in the stage log (user:<id>, token:<name>)
    requester     text NOT NULL,                     -- the caller's name, for the merge history
    requested_at  timestamptz NOT NULL DEFAULT now(),
    change_id     text,
    merged_at     timestamptz
);
CREATE INDEX merge_requests_change ON merge_requests (change_id) WHERE change_id IS NOT NULL;
CREATE INDEX merge_requests_pending ON merge_requests (survivor) WHERE change_id IS NULL;
CREATE INDEX merge_requests_merged_pending ON merge_requests (merged) WHERE change_id IS NULL;
CREATE INDEX IF NOT EXISTS person_merges_person ON person_merges (person_id);
