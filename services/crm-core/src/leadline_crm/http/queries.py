"""SQL of API tokens (http/auth.py, and the web app's session)."""

from __future__ import annotations

TOKEN_CALLER = "SELECT name, role, user_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"  # noqa: S105
INSERT_USER_TOKEN = "INSERT INTO api_tokens (token_hash, name, role, user_id) VALUES ($1, $2, $3, $4)"  # noqa: S105
INSERT_TOKEN = "INSERT INTO api_tokens (token_hash, name, role) VALUES ($1, $2, $3)"  # noqa: S105
