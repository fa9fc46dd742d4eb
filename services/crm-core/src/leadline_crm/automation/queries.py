"""SQL of the automation package: domain events, the loop, rules, runs, lists and notifications."""

from __future__ import annotations

# --- domain events (events.py) ---

# $6 is each event's chain as a comma-separated list ('' for none): asyncpg cannot pass an array of arrays of
# different lengths. A NOTIFY wakes the loop when the transaction commits.
EMIT = """
WITH e AS (
    INSERT INTO domain_events (type, person_id, subject, data, source_key, chain)
    SELECT t, p, s, d, k, CASE WHEN c = '' THEN '{}'::int[] ELSE string_to_array(c, ',')::int[] END
      FROM unnest($1::text[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::text[]) AS m(t, p, s, d, k, c)
    ON CONFLICT (type, source_key) DO NOTHING
)
SELECT pg_notify(left('automation_' || current_schema(), 63), '')
"""
