"""SQL of ingestion and of the events API."""

from __future__ import annotations

UPSERT_PERSONS = """
INSERT INTO persons (person_id, first_seen, last_seen)
SELECT p, f, l FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS x(p, f, l)
ON CONFLICT (person_id) DO UPDATE
   SET first_seen = LEAST(persons.first_seen, EXCLUDED.first_seen),
       last_seen = GREATEST(persons.last_seen, EXCLUDED.last_seen)
"""

INSERT_TOUCHPOINTS = """
INSERT INTO touchpoints (event_id, person_id, anon_id, type, source, occurred_at, received_at, url, event)
SELECT e, p, a, t, s, o, r, u, j::jsonb
  FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
              $7::timestamptz[], $8::text[], $9::text[]) AS x(e, p, a, t, s, o, r, u, j)
ON CONFLICT (event_id) DO NOTHING
"""

EVENTS_PAGE = """
SELECT event_id, person_id::text AS person_id, occurred_at, event
  FROM touchpoints
 WHERE ({column} = $1)
   AND ($2::timestamptz IS NULL OR (occurred_at, event_id) < ($2, $3))
 ORDER BY occurred_at DESC, event_id DESC
 LIMIT $4
"""

TOKEN_ROLE = "SELECT role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"  # noqa: S105
INSERT_TOKEN = "INSERT INTO api_tokens (token_hash, name, role) VALUES ($1, $2, $3)"  # noqa: S105
