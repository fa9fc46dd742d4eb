"""The identity graph's SQL, in one place (tables in migrations/)."""

from __future__ import annotations

LOOKUP = """
SELECT q.type, q.value, i.person_id::text, t.digest IS NOT NULL
FROM unnest($1::text[], $2::text[], $3::bytea[]) AS q(type, value, digest)
LEFT JOIN identifiers i ON i.type = q.type AND i.value = q.value
LEFT JOIN tombstones t ON t.type = q.type AND t.digest = q.digest
WHERE i.person_id IS NOT NULL OR t.digest IS NOT NULL
"""

OWNERS = """
SELECT i.type, i.value, i.person_id::text
FROM identifiers i JOIN unnest($1::text[], $2::text[]) AS q(type, value) ON i.type = q.type AND i.value = q.value
"""

# A person id taken over from the CRM may have been created by another replica meanwhile: its row is then left
# alone, its crm_contact_id is not inserted, the count falls short and the batch is retried (identity.RaceLost).
CREATE_PERSONS = """
WITH p AS (INSERT INTO persons (person_id) SELECT DISTINCT unnest($4::uuid[]) ON CONFLICT (person_id) DO NOTHING)
INSERT INTO identifiers (type, value, person_id)
SELECT u.type, u.value, u.person_id FROM unnest($1::text[], $2::text[], $3::uuid[]) AS u(type, value, person_id)
WHERE NOT EXISTS (
    SELECT 1 FROM persons m WHERE m.person_id = u.person_id AND (m.merged_into IS NOT NULL OR m.erased_at IS NOT NULL)
)
ON CONFLICT (type, value) DO NOTHING
"""

ATTACH = """
INSERT INTO identifiers (type, value, person_id) SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT (type, value) DO NOTHING
"""

NEW_PERSON = "INSERT INTO persons (person_id) VALUES ($1)"

ADOPT_PERSON = (
    "INSERT INTO persons (person_id) VALUES ($1) ON CONFLICT (person_id) DO NOTHING RETURNING person_id"
)

# crm_contact_id values that name a person of the graph (crm-core's persons mostly carry the enricher's ids):
# that person, or the one it was merged into, owns the value without a row in ``identifiers``; an erased one
# counts as a tombstone.
CONTACT_PERSONS = """
SELECT person_id::text, coalesce(merged_into, person_id)::text, erased_at IS NOT NULL
FROM persons WHERE person_id = ANY($1::uuid[])
"""

DROP_PERSON = "DELETE FROM persons WHERE person_id = $1"

CLAIM = """
INSERT INTO identifiers (type, value, person_id) VALUES ($1, $2, $3)
ON CONFLICT (type, value) DO NOTHING RETURNING person_id
"""

LOCK_PERSONS = "SELECT person_id FROM persons WHERE person_id = ANY($1::uuid[]) ORDER BY person_id FOR UPDATE"

CHECK_PERSONS = """
SELECT person_id::text, NULL, 0::bigint FROM persons
WHERE person_id = ANY($1::uuid[]) AND (merged_into IS NOT NULL OR erased_at IS NOT NULL)
UNION ALL
SELECT person_id::text, type, count(*) FROM identifiers WHERE person_id = ANY($1::uuid[]) GROUP BY person_id, type
"""

COUNTS = """
SELECT person_id::text, type, count(*) FROM identifiers
WHERE person_id = ANY($1::uuid[]) GROUP BY person_id, type
"""

OWNERS_AND_COUNTS = """
SELECT i.type, i.value, i.person_id::text, 0::bigint
FROM identifiers i JOIN unnest($1::text[], $2::text[]) AS q(type, value) ON i.type = q.type AND i.value = q.value
UNION ALL
SELECT type, NULL, person_id::text, count(*) FROM identifiers
WHERE person_id = ANY($3::uuid[]) GROUP BY person_id, type
"""

MERGE = """
WITH i AS (UPDATE identifiers SET person_id = $1 WHERE person_id = ANY($2::uuid[])),
     p AS (UPDATE persons SET merged_into = $1 WHERE person_id = ANY($2::uuid[]) OR merged_into = ANY($2::uuid[]))
INSERT INTO changes (change_id, kind, person_id, merged, at) VALUES ($3, 'merge', $1, $2::uuid[], $4)
"""

CONFLICT = """
INSERT INTO conflicts (person_a, person_b, identifier_type, event_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (person_a, person_b) DO UPDATE SET seen = conflicts.seen + 1, last_seen = now()
"""

RECORD_CHANGE = """
INSERT INTO changes (change_id, kind, person_id, merged, at) VALUES ($1, $2, $3, $4::uuid[], $5::timestamptz)
"""

RECORD_IDENTIFIER_CHANGE = """
INSERT INTO changes (change_id, kind, person_id, at, identifier)
VALUES ($1, $2, $3, $4::timestamptz, $5::text::jsonb)
"""

# Let identifiers go that the CRM no longer gives this person (only if this person holds them).
DETACH = """
DELETE FROM identifiers i USING unnest($2::text[], $3::text[]) AS q(type, value)
WHERE i.person_id = $1 AND i.type = q.type AND i.value = q.value
RETURNING i.type, i.value
"""

UNPUBLISHED = """
SELECT change_id::text, kind, person_id::text, merged::text[], at, identifier::text, other::text, event_id
FROM changes WHERE published_at IS NULL ORDER BY at LIMIT $1
"""

# A conflict for crm-core's reps (kind 'conflict'; the identifier's type only, never its value).
RECORD_CONFLICT_CHANGE = """
INSERT INTO changes (change_id, kind, person_id, other, at, identifier, event_id)
VALUES ($1, 'conflict', $2, $3, $4::timestamptz, $5::text::jsonb, $6)
"""

# A merge a rep asked for (crm-core's merge request $5): like MERGE, and the pair's conflicts are resolved.
FORCED_MERGE = """
WITH i AS (UPDATE identifiers SET person_id = $1 WHERE person_id = ANY($2::uuid[])),
     p AS (UPDATE persons SET merged_into = $1 WHERE person_id = ANY($2::uuid[]) OR merged_into = ANY($2::uuid[])),
     c AS (UPDATE conflicts SET resolved_at = now(), resolution = 'merged'
            WHERE resolved_at IS NULL AND person_a = ANY($2::uuid[] || $1) AND person_b = ANY($2::uuid[] || $1))
INSERT INTO changes (change_id, kind, person_id, merged, at, event_id) VALUES ($3, 'merge', $1, $2::uuid[], $4, $5)
"""

MARK_PUBLISHED = "UPDATE changes SET published_at = now() WHERE change_id = ANY($1::uuid[])"

PERSON_OF = "SELECT person_id::text FROM identifiers WHERE type = $1 AND value = $2"

SURVIVOR = "SELECT coalesce(merged_into, person_id)::text FROM persons WHERE person_id = $1"

PERSON_AND_MERGED = "SELECT person_id FROM persons WHERE person_id = $1 OR merged_into = $1"

ERASE_IDENTIFIERS = "DELETE FROM identifiers WHERE person_id = ANY($1::uuid[]) RETURNING type, value"

TOMBSTONE = """
INSERT INTO tombstones (type, digest) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING
"""

MARK_ERASED = "UPDATE persons SET erased_at = now() WHERE person_id = ANY($1::uuid[])"

# Link changes written before they stopped carrying values (migration 0003 on) may still hold one.
SCRUB_CHANGES = (
    "UPDATE changes SET identifier = NULL WHERE person_id = ANY($1::uuid[]) AND identifier IS NOT NULL"
)
