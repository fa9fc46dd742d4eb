"""SQL of the parts every domain shares: scoring and stage moves (stages.py), and the outbox (outbox.py)."""

from __future__ import annotations

# --- scoring and stage moves (see stages.py) ---

SCORING = "SELECT half_life_days, prospect_threshold, repeat_visit_days FROM scoring"

ACTIVE_RULES = "SELECT event_type, url_contains, points FROM score_rules WHERE active"

SIGNALS = """
SELECT person_id::text AS person_id, stage, identified, score, clicked, rep_contacted, visit_days, purchases,
       NULL::text AS cause
  FROM persons WHERE person_id = ANY($1::uuid[]) AND erased_at IS NULL
"""

# $7: now; $8: when each move happened (its cause's own time, stages.event_time), never before the last move.
MOVE_STAGES = """
WITH moves AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::timestamptz[])
        AS m(person_id, from_stage, to_stage, cause_event_id, cause_user, reason, at)
), updated AS (
    UPDATE persons AS p SET stage = m.to_stage, stage_at = GREATEST(m.at, p.stage_at), updated_at = $7
      FROM moves AS m WHERE p.person_id = m.person_id
    RETURNING p.person_id, p.stage_at
)
INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, cause_event_id, cause_user, reason)
SELECT m.person_id, m.from_stage, m.to_stage, u.stage_at, m.cause_event_id, m.cause_user, m.reason
  FROM moves AS m JOIN updated AS u ON u.person_id = m.person_id
"""

# --- the outbox (see outbox.py) ---

# The messages in the order given ($1 kinds, $2 keys, $3 values), and a wake-up for the relay: NOTIFY is
# delivered when the transaction commits, and not at all when it rolls back.
OUTBOX_WRITE = """
WITH w AS (
    INSERT INTO outbox (topic, key, value)
    SELECT t, k, v FROM unnest($1::text[], $2::bytea[], $3::bytea[]) WITH ORDINALITY AS m(t, k, v, n) ORDER BY n
)
SELECT pg_notify(left('outbox_' || current_schema(), 63), '')
"""

OUTBOX_NEXT = "SELECT id, topic, key, value FROM outbox ORDER BY id LIMIT $1"

OUTBOX_DONE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

# A row Kafka refused outright moves to outbox_dead (the relay then goes on with the rows after it).
OUTBOX_BURY = """
WITH gone AS (DELETE FROM outbox WHERE id = $1 RETURNING id, topic, key, value, created_at)
INSERT INTO outbox_dead (id, topic, key, value, created_at, error)
SELECT id, topic, key, value, created_at, $2 FROM gone
"""

OUTBOX_AGE = "SELECT extract(epoch FROM now() - min(created_at))::float8 FROM outbox"
