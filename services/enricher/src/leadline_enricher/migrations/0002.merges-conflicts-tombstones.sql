-- Merges, conflicts for review and erasure tombstones (ARCHITECTURE.md §4).
ALTER TABLE persons ADD COLUMN erased_at timestamptz;
CREATE INDEX persons_merged_into ON persons (merged_into) WHERE merged_into IS NOT NULL;

-- Every merge and erasure, written in the same PostgreSQL transaction as the graph change (an outbox):
-- rows not yet on identity.changes.v1 are published again after a crash, so no change is ever lost.
CREATE TABLE changes (
    change_id    uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('merge', 'link', 'erase')),
    person_id    uuid NOT NULL,
    merged       uuid[] NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX changes_unpublished ON changes (at) WHERE published_at IS NULL;

-- Two persons that each hold a different email or user_id, seen together: never merged automatically.
CREATE TABLE conflicts (
    person_a        uuid NOT NULL,
    person_b        uuid NOT NULL,
    identifier_type text NOT NULL,
    event_id        text NOT NULL,
    seen            integer NOT NULL DEFAULT 1,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    PRIMARY KEY (person_a, person_b),
    CHECK (person_a < person_b)
);

-- Erased identifiers, kept only as a hash, so that a later event cannot rebuild the erased person.
CREATE TABLE tombstones (
    type      text NOT NULL,
    digest    bytea NOT NULL,
    erased_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, digest)
);
