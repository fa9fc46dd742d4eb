"""The SQL of the outbound webhooks (architecture.md, "Outbound webhooks")."""

# --- fan-out ---------------------------------------------------------------------------------------------------

# One delivery per (event, enabled subscription whose types include it); a replay conflicts and inserts nothing.
FANOUT = """
INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload)
SELECT s.id, e.msg_id, e.type, e.payload::jsonb
  FROM unnest($1::text[], $2::text[], $3::text[]) AS e (type, msg_id, payload)
  JOIN webhook_subscriptions s ON s.enabled AND e.type = ANY (s.event_types)
ON CONFLICT (subscription_id, msg_id) DO NOTHING
"""

# The types some enabled subscription wants: events of other types are not even serialised.
SUBSCRIBED_TYPES = (
    "SELECT array_agg(DISTINCT t) FROM webhook_subscriptions, unnest(event_types) AS t WHERE enabled"
)

ENQUEUE = """
INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload)
SELECT id, $2, $3, $4::text::jsonb FROM webhook_subscriptions WHERE id = $1 AND enabled  -- text: no codec
ON CONFLICT (subscription_id, msg_id) DO NOTHING
"""

NOTIFY = "SELECT pg_notify(left('webhooks_' || current_schema(), 63), '')"

# --- the dispatcher --------------------------------------------------------------------------------------------

# Claim due deliveries of enabled subscriptions: the lease pushes next_attempt_at out, so a dispatcher that dies
# mid-send leaves them due again when it ends (at least once). The attempt is counted at the claim, so a delivery
# that crashes its sender every time still reaches the end of the schedule.
CLAIM = """
WITH due AS (
    SELECT d.id FROM webhook_deliveries d
      JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
     WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1
     ORDER BY d.next_attempt_at
     LIMIT $2
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET next_attempt_at = $1 + $3 * interval '1 second', attempts = d.attempts + 1, last_attempt_at = $1
  FROM due, webhook_subscriptions s
 WHERE d.id = due.id AND s.id = d.subscription_id
RETURNING d.id, d.subscription_id, d.msg_id, d.payload::text AS body, d.attempts, d.created_at,
          s.url, s.secret, s.previous_secret, s.previous_secret_expires_at, s.allowed_network::text AS allowed
"""

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

COLUMNS = """id, url, description, event_types, enabled, allowed_network::text AS allowed_network,
previous_secret_expires_at, failing_since, consecutive_failures, disabled_at, disabled_reason, created_by,
created_at, updated_at"""

SUBSCRIPTIONS = f"SELECT {COLUMNS} FROM webhook_subscriptions ORDER BY id"  # noqa: S608

SUBSCRIPTION = f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1"  # noqa: S608

SUBSCRIPTION_FOR_UPDATE = f"SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1 FOR UPDATE"  # noqa: S608

CREATE = f"""
INSERT INTO webhook_subscriptions (url, description, event_types, enabled, allowed_network, secret, created_by)
VALUES ($1, $2, $3, $4, $5::cidr, $6, $7)
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
