-- The identity graph: every identifier (type, value) belongs to exactly one person.
CREATE TABLE persons (
    person_id   uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    merged_into uuid REFERENCES persons (person_id)
);

CREATE TABLE identifiers (
    type        text NOT NULL,
    value       text NOT NULL,
    person_id   uuid NOT NULL REFERENCES persons (person_id),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, value)
);
CREATE INDEX identifiers_person ON identifiers (person_id);
