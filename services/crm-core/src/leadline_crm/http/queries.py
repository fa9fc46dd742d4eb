"""SQL of API tokens (http/auth.py, and the web app's session)."""

from __future__ import annotations

# A token of a deactivated user stops working with the user's sessions.
TOKEN_CALLER = """
SELECT t.name, t.role, t.user_id FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active IS NOT FALSE"""  # noqa: S105
INSERT_USER_TOKEN = "INSERT INTO api_tokens (token_hash, name, role, user_id) VALUES ($1, $2, $3, $4)"  # noqa: S105
INSERT_TOKEN = "INSERT INTO api_tokens (token_hash, name, role) VALUES ($1, $2, $3)"  # noqa: S105
USER_BY_EMAIL = "SELECT id, password_hash FROM users WHERE lower(email) = lower($1) AND active"
