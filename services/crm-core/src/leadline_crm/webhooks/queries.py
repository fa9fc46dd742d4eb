"""The SQL of the outbound webhooks (architecture.md, "Outbound webhooks")."""

# --- fan-out ---------------------------------------------------------------------------------------------------

# Whether a marketing-purpose subscription may be told about the person (migration 0062): only with marketing
# consent granted. Used with a subscription aliased s and the person's id as {person}.
_CONSENTED = """(s.purpose <> 'marketing' OR {person} IS NULL
  OR EXISTS (SELECT 1 FROM persons p WHERE p.person_id = {person} AND p.consent -> 'marketing' ->> 'granted' = 'true'
                                       AND p.erased_at IS NULL))"""

# One delivery per (event, enabled subscription whose types include it, that may be told about its person); a
# replay conflicts and inserts nothing.
FANOUT = f"""
INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload, person_id)
SELECT s.id, e.msg_id, e.type, e.payload::jsonb, e.person
  FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[]) AS e (type, msg_id, payload, person)
  JOIN webhook_subscriptions s ON s.enabled AND e.type = ANY (s.event_types)
 WHERE {_CONSENTED.format(person="e.person")}
ON CONFLICT (subscription_id, msg_id) DO NOTHING
"""  # noqa: S608 (fixed names)

# The types some enabled subscription wants: events of other types are not even serialised.
SUBSCRIBED_TYPES = (
    "SELECT array_agg(DISTINCT t) FROM webhook_subscriptions, unnest(event_types) AS t WHERE enabled"
)

ENQUEUE = f"""
INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload, person_id)
SELECT s.id, $2, $3, $4::text::jsonb, $5::uuid FROM webhook_subscriptions s  -- text: no codec
 WHERE s.id = $1 AND s.enabled AND {_CONSENTED.format(person="$5::uuid")}
ON CONFLICT (subscription_id, msg_id) DO NOTHING
"""  # noqa: S608 (fixed names)

# Many workflow "send webhook" actions at once ($1 subscriptions, $2 message ids, $3 types, $4 bodies, $5 persons), as
# ENQUEUE each; the dispatcher is woken when any was queued.
ENQUEUE_MANY = f"""
WITH ins AS (
    INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload, person_id)
    SELECT s.id, m.msg_id, m.type, m.body::jsonb, m.person
      FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::uuid[]) AS m (sid, msg_id, type, body, person)
      JOIN webhook_subscriptions s ON s.id = m.sid AND s.enabled
     WHERE {_CONSENTED.format(person="m.person")}
    ON CONFLICT (subscription_id, msg_id) DO NOTHING
    RETURNING 1
)
SELECT pg_notify(left('webhooks_' || current_schema(), 63), '') WHERE EXISTS (SELECT 1 FROM ins)
"""  # noqa: S608 (fixed names)

NOTIFY = "SELECT pg_notify(left('webhooks_' || current_schema(), 63), '')"

# --- the dispatcher --------------------------------------------------------------------------------------------

# Claim due deliveries of enabled subscriptions, oldest first, at most $2 in all and, per subscription, at most
# what its rate limit lets it send now: $4/$5 are the dispatcher's allowance per subscription it has sent to this
# term (its token bucket and its in-flight share); a subscription it has not met yet may send a second's worth
# ($6 caps that at the in-flight share). Each subscription's due rows are read from its own index
# (webhook_deliveries_due_per_subscription) and taken in turns (each one's oldest, then each one's second oldest,
# ...), so one subscription's backlog cannot crowd the others out of a claim.
# The lease pushes next_attempt_at out, so a dispatcher that dies mid-send leaves them due again when it ends (at
# least once). The attempt is counted at the claim, so a delivery that crashes its sender every time still reaches
# the end of the schedule.
CLAIM = f"""
WITH allowance AS (
    SELECT s.id, least(coalesce(a.n, ceil(s.rate_limit)::int), $6) AS n
      FROM webhook_subscriptions s LEFT JOIN unnest($4::int[], $5::int[]) AS a (id, n) ON a.id = s.id
     WHERE s.enabled
), due AS (
    SELECT d.id FROM allowance a
     CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
         WHERE d.subscription_id = a.id AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1
         ORDER BY d.next_attempt_at
         LIMIT a.n
           FOR UPDATE SKIP LOCKED
     ) d
     WHERE a.n > 0
     ORDER BY row_number() OVER (PARTITION BY a.id ORDER BY d.next_attempt_at), d.next_attempt_at
     LIMIT $2
)
UPDATE webhook_deliveries d
   SET next_attempt_at = $1 + $3 * interval '1 second', attempts = d.attempts + 1, last_attempt_at = $1
  FROM due, webhook_subscriptions s
 WHERE d.id = due.id AND s.id = d.subscription_id
RETURNING d.id, d.subscription_id, d.msg_id, d.payload::text AS body, d.attempts, d.created_at, s.rate_limit,
          s.url, s.secret, s.previous_secret, s.previous_secret_expires_at, s.allowed_network::text AS allowed,
          {_CONSENTED.format(person="d.person_id")} AS consented
"""  # noqa: S608 (fixed names)

# Deliveries cut off mid-send by a stopping dispatcher: due again now, the attempt not counted.
RELEASE = """
UPDATE webhook_deliveries SET next_attempt_at = $2, attempts = greatest(attempts - 1, 0)
 WHERE id = ANY ($1::bigint[]) AND status IN ('pending', 'failed')
"""

# Outcomes are written a batch per statement (arrays, one element per delivery).
DELIVERED = """
UPDATE webhook_deliveries d
   SET status = 'delivered', delivered_at = $2, last_status = u.status, last_response_ms = u.ms, last_error = NULL,
       response_excerpt = u.excerpt
  FROM unnest($1::bigint[], $3::int[], $4::real[], $5::text[]) AS u (id, status, ms, excerpt)
 WHERE d.id = u.id
"""

# A NULL next attempt means the schedule is over: 'dead'.
FAILED = """
UPDATE webhook_deliveries d
   SET status = CASE WHEN u.next_at IS NULL THEN 'dead' ELSE 'failed' END,
       next_attempt_at = coalesce(u.next_at, d.next_attempt_at), last_status = u.status, last_response_ms = u.ms,
       last_error = u.error, response_excerpt = u.excerpt
  FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::real[], $5::text[], $6::text[])
       AS u (id, next_at, status, ms, error, excerpt)
 WHERE d.id = u.id
"""

SUBSCRIPTION_OK = """
UPDATE webhook_subscriptions SET consecutive_failures = 0, failing_since = NULL
 WHERE id = ANY ($1::int[]) AND (consecutive_failures > 0 OR failing_since IS NOT NULL)
"""

# A failing streak: counted per subscription; returns the subscriptions that reached the limit, now disabled.
SUBSCRIPTION_FAILED = """
UPDATE webhook_subscriptions
   SET consecutive_failures = consecutive_failures + $2, failing_since = coalesce(failing_since, $3)
 WHERE id = $1
RETURNING consecutive_failures, failing_since
"""

DISABLE = """
UPDATE webhook_subscriptions
   SET enabled = false, disabled_at = $2, disabled_reason = $3, updated_at = $2
 WHERE id = $1 AND enabled
RETURNING url
"""

# Finished deliveries past the retention, a batch at a time.
PRUNE = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries WHERE status IN ('delivered', 'dead') AND created_at < $1 LIMIT $2)
"""

HAS_NOTIFICATIONS = "SELECT to_regclass('notifications') IS NOT NULL"

NOTIFY_ADMINS = """
INSERT INTO notifications (user_id, text, link)
SELECT id, $1, $2 FROM users WHERE role = 'admin' AND active
"""

# --- subscriptions ---------------------------------------------------------------------------------------------

COLUMNS = """id, url, description, event_types, enabled, allowed_network::text AS allowed_network, rate_limit, purpose,
previous_secret_expires_at, failing_since, consecutive_failures, disabled_at, disabled_reason, created_by,
created_at, updated_at"""

SUBSCRIPTIONS = f"SELECT {COLUMNS} FROM webhook_subscriptions ORDER BY id"  # noqa: S608

SUBSCRIPTION = f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1"  # noqa: S608

SUBSCRIPTION_FOR_UPDATE = f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1 FOR UPDATE"  # noqa: S608

CREATE = f"""
INSERT INTO webhook_subscriptions (url, description, event_types, enabled, allowed_network, secret, created_by,
                                   rate_limit, purpose)
VALUES ($1, $2, $3, $4, $5::cidr, $6, $7, $8, $9)
RETURNING {COLUMNS}
"""  # noqa: S608

ROTATE = """
UPDATE webhook_subscriptions
   SET previous_secret = CASE WHEN $3::float8 > 0 THEN secret END,
       previous_secret_expires_at = CASE WHEN $3::float8 > 0 THEN $4::timestamptz + $3 * interval '1 second' END,
       secret = $2, updated_at = $4::timestamptz
 WHERE id = $1
"""

DELETE = "DELETE FROM webhook_subscriptions WHERE id = $1"

# --- secrets at rest (sealing.py) -------------------------------------------------------------------------------

STORED_SECRETS = "SELECT id, secret, previous_secret FROM webhook_subscriptions ORDER BY id FOR UPDATE"

SEAL_SECRETS = "UPDATE webhook_subscriptions SET secret = $2, previous_secret = $3 WHERE id = $1"

STATS = """
SELECT count(*) FILTER (WHERE status IN ('pending', 'failed')) AS queued,
       count(*) FILTER (WHERE status = 'dead') AS dead,
       count(*) FILTER (WHERE status = 'delivered') AS delivered
  FROM webhook_deliveries WHERE subscription_id = $1
"""

# --- deliveries ------------------------------------------------------------------------------------------------

DELIVERY_COLUMNS = """id, subscription_id, msg_id, event_type, payload, status, attempts, next_attempt_at, created_at,
last_attempt_at, delivered_at, last_status, last_response_ms, last_error, response_excerpt"""

DELIVERIES = f"""
SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
 WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR id < $3)
 ORDER BY id DESC LIMIT $4
"""  # noqa: S608

# Redelivery: the same message (same webhook-id) due now, its schedule started over.
REDELIVER = f"""
UPDATE webhook_deliveries
   SET status = 'pending', attempts = 0, next_attempt_at = $2, created_at = $2
 WHERE id = $1 AND ($3::int IS NULL OR subscription_id = $3)
RETURNING {DELIVERY_COLUMNS}
"""  # noqa: S608
