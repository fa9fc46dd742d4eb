"""SQL of the automation package: domain events, the loop, rules, runs, lists and notifications."""

from __future__ import annotations

# --- domain events (events.py) ---

# $6 is each event's chain as a comma-separated list ('' for none): asyncpg cannot pass an array of arrays of
# different lengths. A NOTIFY wakes the loop when the transaction commits.
EMIT = """
WITH e AS (
    INSERT INTO domain_events (type, person_id, subject, data, source_key, chain)
    SELECT t, p, s, d::jsonb, k, CASE WHEN c = '' THEN '{}'::int[] ELSE string_to_array(c, ',')::int[] END
      FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[]) AS m(t, p, s, d, k, c)
    ON CONFLICT (type, source_key) DO NOTHING
)
SELECT pg_notify(left('automation_' || current_schema(), 63), '')
"""

# The event types somebody listens to: an enabled rule's trigger or an enabled webhook subscription's types (as
# EMIT_INGESTED's ``wanted``), for writers of many events at once (imports) to leave the others out.
LISTENED_TYPES = """
SELECT trigger_type FROM workflow_rules WHERE enabled
UNION SELECT unnest(event_types) FROM webhook_subscriptions WHERE enabled
"""

# --- the loop (runner.py) ---

# The oldest $1 events, taken and deleted in one statement: the delete commits with what the handlers did, or is
# rolled back with it (the loop sorts them by id: RETURNING keeps no order).
TAKE_EVENTS = """
WITH t AS (SELECT id FROM domain_events ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
DELETE FROM domain_events d USING t WHERE d.id = t.id
RETURNING d.id, d.type, d.person_id, d.subject, d.data, d.source_key, d.chain, d.occurred_at
"""

# The oldest event (the one the loop just failed on alone) moved to domain_events_dead with the error's name ($1).
BURY_EVENT = """
WITH d AS (
    DELETE FROM domain_events WHERE id = (SELECT id FROM domain_events ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING *
)
INSERT INTO domain_events_dead (id, type, person_id, subject, data, source_key, chain, occurred_at, error)
SELECT id, type, person_id, subject, data, source_key, chain, occurred_at, $1 FROM d
RETURNING id, type
"""

# Cases past their due time and not resolved, each announced once: case_breaches remembers the announced ones
# (the domain event itself is deleted once handled).
BREACHES = """
WITH b AS (
    INSERT INTO case_breaches (case_id)
    SELECT id FROM cases WHERE status IN ('new', 'open', 'waiting') AND due_at < now()
    ORDER BY due_at LIMIT $1
    ON CONFLICT (case_id) DO NOTHING
    RETURNING case_id
)
SELECT c.id, c.tracking_number, c.person_id, c.type, c.status, c.assignee_id, c.due_at
  FROM cases c JOIN b ON b.case_id = c.id
"""

# --- rules (rules.py) ---

RULES_SIGNATURE = "SELECT count(*), max(updated_at) FROM workflow_rules"

ALL_RULES = """
SELECT id, name, enabled, trigger_type, trigger_params, conditions, actions, delay_seconds, unless_activity
  FROM workflow_rules ORDER BY id
"""

_FACTS = """
SELECT p.person_id, p.stage, p.score, p.country, split_part(p.emails[1], '@', 2) AS email_domain,
       p.owner_id AS owner, p.attributes, (p.consent -> 'marketing' ->> 'granted') = 'true' AS marketing_consent,
       c.industry AS company_industry, c.size AS company_size,
       c.country AS company_country,
       {lists} AS lists
  FROM persons p LEFT JOIN companies c ON c.id = p.company_id
 WHERE p.person_id = ANY($1::uuid[]) AND p.erased_at IS NULL
"""

PERSON_FACTS = _FACTS.format(
    lists="ARRAY(SELECT list_id FROM list_members m WHERE m.person_id = p.person_id)"
)

# The same without the static lists (a lookup per person), for when no enabled rule's condition reads them.
PERSON_FACTS_NO_LISTS = _FACTS.format(lists="'{}'::int[]")

INSERT_RUNS = """
INSERT INTO rule_runs (rule_id, trigger_key, event_type, person_id, subject, data, chain, status, due_at, reason,
                       actions_done, finished_at)
SELECT r, k, t, p, s, d::jsonb, CASE WHEN c = '' THEN '{}'::int[] ELSE string_to_array(c, ',')::int[] END, st, due,
       why, done::jsonb, CASE WHEN st IN ('stopped', 'skipped', 'done') THEN now() END
  FROM unnest($1::int[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::timestamptz[], $10::text[], $11::text[]) AS m(r, k, t, p, s, d, c, st, due, why, done)
ON CONFLICT (rule_id, trigger_key) DO NOTHING
RETURNING id, rule_id, trigger_key
"""

FINISH_RUN = """
UPDATE rule_runs SET status = $2, reason = $3, actions_done = $4::text::jsonb, finished_at = now() WHERE id = $1
"""

DUE_RUNS = """
SELECT id, rule_id, trigger_key, event_type, person_id, subject, data, chain, created_at
  FROM rule_runs WHERE status = 'waiting' AND due_at <= now()
 ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
"""

ACTIVITY_SINCE = "SELECT EXISTS (SELECT 1 FROM activities WHERE person_id = $1 AND kind = $2 AND at >= $3)"

# --- actions (actions.py) ---

PERSON_OWNER = "SELECT owner_id FROM persons WHERE person_id = $1"

SET_OWNER = """
WITH old AS (SELECT owner_id FROM persons WHERE person_id = $1 FOR UPDATE)
UPDATE persons SET owner_id = $2, updated_at = now() WHERE person_id = $1 RETURNING (SELECT owner_id FROM old)
"""

CREATE_TASK = """
INSERT INTO tasks (title, due_at, person_id, owner_id)
VALUES ($1, $2, $3, (SELECT owner_id FROM persons WHERE person_id = $3))
"""

PERSON_STAGE = "SELECT stage FROM persons WHERE person_id = $1 AND erased_at IS NULL"

SET_ATTRIBUTE = """
UPDATE persons SET attributes = coalesce(attributes, '{}') || jsonb_build_object($2::text, $3::text::jsonb),
                   updated_at = now()
 WHERE person_id = $1
"""

ADD_TAG = """
UPDATE persons SET attributes = jsonb_set(coalesce(attributes, '{}'), '{tags}',
                                          coalesce(attributes->'tags', '[]') || to_jsonb($2::text)),
                   updated_at = now()
 WHERE person_id = $1 AND NOT coalesce(attributes->'tags', '[]') ? $2
"""

ADD_TO_LIST = "INSERT INTO list_members (list_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"

NOTIFY_USER = "INSERT INTO notifications (user_id, text, link) VALUES ($1, $2, $3)"


# --- rule management (store.py) ---

_RULE_COLUMNS = """id, name, enabled, trigger_type, trigger_params, conditions, actions, delay_seconds, unless_activity,
       created_by, created_at, updated_at"""

CREATE_RULE = f"""
INSERT INTO workflow_rules (name, enabled, trigger_type, trigger_params, conditions, actions, delay_seconds,
                            unless_activity, created_by)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9)
RETURNING {_RULE_COLUMNS}
"""  # noqa: S608 (fixed names)

UPDATE_RULE = f"""
UPDATE workflow_rules SET name = $2, enabled = $3, trigger_type = $4, trigger_params = $5::jsonb,
       conditions = $6::jsonb, actions = $7::jsonb, delay_seconds = $8, unless_activity = $9,
       updated_at = clock_timestamp()
 WHERE id = $1
RETURNING {_RULE_COLUMNS}
"""  # noqa: S608 (fixed names)

RULE = f"SELECT {_RULE_COLUMNS} FROM workflow_rules WHERE id = $1"  # noqa: S608
RULE_FOR_UPDATE = f"SELECT {_RULE_COLUMNS} FROM workflow_rules WHERE id = $1 FOR UPDATE"  # noqa: S608
DELETE_RULE = "DELETE FROM workflow_rules WHERE id = $1 RETURNING name"

RULES_PAGE = f"""
SELECT {_RULE_COLUMNS},
       (SELECT max(created_at) FROM rule_runs r WHERE r.rule_id = w.id) AS last_run_at,
       (SELECT count(*) FROM rule_runs r WHERE r.rule_id = w.id) AS run_count
  FROM workflow_rules w ORDER BY lower(name), id
"""  # noqa: S608 (fixed names)

RUNS = """
SELECT id, rule_id, (SELECT name FROM workflow_rules w WHERE w.id = r.rule_id) AS rule_name, trigger_key,
       event_type, person_id, subject, status, due_at, reason, actions_done, created_at, finished_at
  FROM rule_runs r
 WHERE ($1::int IS NULL OR rule_id = $1) AND ($2::uuid IS NULL OR person_id = $2)
 ORDER BY id DESC LIMIT $3
"""

WAKE = "SELECT pg_notify(left('automation_' || current_schema(), 63), '')"

# --- ingestion (ingested.py) ---

# The batch's candidates ($1 types, $2 persons, $3 subjects, $4 data as JSON bytes, $5 source keys), kept when they
# say something somebody listens to: a type an enabled rule triggers on or an enabled webhook subscription asks for
# (webhooks/, migration 0055), a person created by this transaction, a custom event an enabled rule waits for.
EMIT_INGESTED = """
WITH m AS (
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::bytea[], $5::text[]) AS m(t, p, s, d, k)
), wanted AS (
    SELECT trigger_type AS t FROM workflow_rules WHERE enabled
    UNION SELECT unnest(event_types) FROM webhook_subscriptions WHERE enabled
), custom AS (
    SELECT trigger_params->>'name' AS name FROM workflow_rules WHERE enabled AND trigger_type = 'event.custom'
), ins AS (
    INSERT INTO domain_events (type, person_id, subject, data, source_key)
    SELECT t, p, s, convert_from(d, 'UTF8')::jsonb, k FROM m
     WHERE t IN (SELECT t FROM wanted)
       AND CASE t WHEN 'person.created' THEN EXISTS (SELECT 1 FROM persons x WHERE x.person_id = m.p
                                                        AND x.created_at = now())
                  WHEN 'event.custom' THEN EXISTS (SELECT 1 FROM custom c WHERE c.name IS NULL OR c.name = m.s)
                  ELSE true END
    ON CONFLICT (type, source_key) DO NOTHING
    RETURNING 1
)
SELECT pg_notify(left('automation_' || current_schema(), 63), '') WHERE EXISTS (SELECT 1 FROM ins)
"""

# --- pages (pages.py) ---

ACTIVE_USERS = "SELECT id, name FROM users WHERE active ORDER BY lower(name)"

NOTIFICATIONS = """
SELECT id, text, link, read_at, created_at FROM notifications WHERE user_id = $1
 ORDER BY read_at IS NOT NULL, id DESC LIMIT $2
"""

READ_NOTIFICATIONS = "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL"

UNREAD_COUNT = "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL"

# The badge counts at most 100 (shown as "99+"): an index-only walk of notifications_unread, bounded.
UNREAD_CAPPED = """
SELECT count(*) FROM (SELECT 1 FROM notifications WHERE user_id = $1 AND read_at IS NULL LIMIT 100) AS u
"""

READ_NOTIFICATION = """
UPDATE notifications SET read_at = now() WHERE id = $1 AND user_id = $2 AND read_at IS NULL RETURNING id
"""

# --- batched actions (batch.py): each person's rows folded first, as one UPDATE changes a row once ---

ADD_TAGS = """
WITH t AS (SELECT p, array_agg(DISTINCT tag) AS tags FROM unnest($1::uuid[], $2::text[]) AS m(p, tag) GROUP BY p)
UPDATE persons x
   SET attributes = jsonb_set(coalesce(x.attributes, '{}'), '{tags}',
                              coalesce(x.attributes->'tags', '[]') || coalesce(
                                  (SELECT jsonb_agg(n) FROM unnest(t.tags) AS n
                                    WHERE NOT coalesce(x.attributes->'tags', '[]') ? n), '[]')),
       updated_at = now()
  FROM t WHERE x.person_id = t.p
"""

SET_ATTRIBUTES = """
WITH a AS (
    SELECT p, jsonb_object_agg(k, v::jsonb) AS kv
      FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS m(p, k, v, n) GROUP BY p
)
UPDATE persons x SET attributes = coalesce(x.attributes, '{}') || a.kv, updated_at = now()
  FROM a WHERE x.person_id = a.p
"""

ADD_TO_LISTS = """
INSERT INTO list_members (list_id, person_id) SELECT * FROM unnest($1::int[], $2::uuid[]) ON CONFLICT DO NOTHING
"""

CREATE_TASKS = """
INSERT INTO tasks (title, due_at, person_id, owner_id)
SELECT m.title, m.due, m.p, x.owner_id
  FROM unnest($1::text[], $2::timestamptz[], $3::uuid[]) AS m(title, due, p) JOIN persons x ON x.person_id = m.p
"""

NOTIFY_USERS = """
INSERT INTO notifications (user_id, text, link) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
"""

# --- static lists (lists.py) ---

_LIST_COLUMNS = (
    "l.id, l.name, l.created_at, (SELECT count(*) FROM list_members m WHERE m.list_id = l.id) AS members"
)

LISTS = f"SELECT {_LIST_COLUMNS} FROM lists l ORDER BY lower(l.name), l.id"  # noqa: S608 (fixed names)

LIST = f"SELECT {_LIST_COLUMNS} FROM lists l WHERE l.id = $1"  # noqa: S608 (fixed names)

CREATE_LIST = "INSERT INTO lists (name) VALUES ($1) RETURNING id, name, created_at, 0::bigint AS members"

RENAME_LIST = f"""
UPDATE lists l SET name = $2 WHERE l.id = $1 RETURNING {_LIST_COLUMNS}
"""  # noqa: S608 (fixed names)

DELETE_LIST = "DELETE FROM lists WHERE id = $1 RETURNING name"

# The rules that name the list ($1 as text) in an add_to_list action or an in_list condition.
RULES_USING_LIST = """
SELECT id, name FROM workflow_rules w
 WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(w.actions) a
                WHERE a->>'type' = 'add_to_list' AND a->>'list_id' = $1)
    OR EXISTS (SELECT 1 FROM jsonb_array_elements(w.conditions) c
                WHERE c->>'op' = 'in_list' AND c->>'value' = $1)
 ORDER BY id
"""

_MEMBERS = """
SELECT m.person_id, m.added_at, p.first_name, p.last_name, p.emails[1] AS email, p.stage
  FROM list_members m JOIN persons p ON p.person_id = m.person_id
 WHERE m.list_id = $1 AND p.erased_at IS NULL"""

# A page of members after the cursor ($3 added_at, $4 person_id; NULL for the first page), newest first.
MEMBERS = (
    _MEMBERS
    + """ AND ($3::timestamptz IS NULL OR (m.added_at, m.person_id) < ($3, $4::uuid))
 ORDER BY m.added_at DESC, m.person_id DESC LIMIT $2"""
)

MEMBERS_ALL = _MEMBERS + " ORDER BY m.added_at DESC, m.person_id DESC"

ADD_MEMBER = """
WITH p AS (SELECT person_id FROM persons WHERE person_id = $2 AND erased_at IS NULL),
     i AS (INSERT INTO list_members (list_id, person_id) SELECT $1, person_id FROM p
           ON CONFLICT DO NOTHING RETURNING 1)
SELECT EXISTS (SELECT 1 FROM p) AS found, EXISTS (SELECT 1 FROM i) AS added
"""

REMOVE_MEMBER = "DELETE FROM list_members WHERE list_id = $1 AND person_id = $2"

PERSON_LISTS = """
SELECT l.id, l.name, EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.person_id = $1) AS member
  FROM lists l ORDER BY lower(l.name), l.id
"""
