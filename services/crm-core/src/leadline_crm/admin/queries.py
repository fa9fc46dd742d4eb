"""SQL of the accounts admin: users and API tokens (admin/accounts.py)."""

from __future__ import annotations

USERS = """
SELECT id, name, email, role, active, created_at, password_hash IS NOT NULL AS has_password
FROM users ORDER BY active DESC, lower(name), lower(email)"""

USER = "SELECT id, name, email, role, active FROM users WHERE id = $1 FOR UPDATE"

INSERT_USER = (
    "INSERT INTO users (name, email, role) VALUES ($1, $2, $3) RETURNING id, name, email, role, active"
)

OTHER_ADMINS = "SELECT count(*) FROM users WHERE role = 'admin' AND active AND id <> $1"

TOKENS = """
SELECT t.id, t.name, t.role, t.created_at, t.revoked_at, u.email AS user_email, u.name AS user_name
FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC"""

TOKEN_ID = "SELECT id FROM api_tokens WHERE token_hash = $1"  # noqa: S105

REVOKE = """
UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
RETURNING name, role, user_id"""

# The entity types in the log, by a skip scan of its (entity_type, …) index instead of reading every row.
ENTITY_TYPES = """
WITH RECURSIVE t(v) AS (
    SELECT min(entity_type) FROM audit_log
    UNION ALL
    SELECT (SELECT min(entity_type) FROM audit_log WHERE entity_type > t.v) FROM t WHERE t.v IS NOT NULL
)
SELECT v FROM t WHERE v IS NOT NULL"""
