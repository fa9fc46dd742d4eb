"""What an admin does to accounts, from the web app: create users, change their role, deactivate them (their
sessions and tokens stop working at once), and create and revoke API tokens. Each change is audited in its
transaction (http/audit.py); a token's value is shown once and never logged.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from leadline_crm.admin import queries
from leadline_crm.http import audit, session
from leadline_crm.http.auth import ROLES, Caller, create_token, token_hash
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_shared.identifiers import canonical_email


def user_email(value: str) -> str:
    """The canonical email of a user (as leadline_shared.identifiers makes it); 422 when it is not one."""
    email = canonical_email(value)
    if email is None:
        raise BadRequest("email: not a valid email address")
    return email


def _role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"role: one of {', '.join(ROLES)}")
    return role


async def create_user(
    conn: asyncpg.Connection, caller: Caller, name: str, email: str, role: str
) -> uuid.UUID:
    """A new user without a password (an admin then makes a password-set link); Conflict if the email is taken."""
    name = name.strip()
    if not 1 <= len(name) <= 200 or "\x00" in name:
        raise BadRequest("name: 1 to 200 characters")
    try:
        row = await conn.fetchrow(queries.INSERT_USER, name, user_email(email), _role(role))
    except asyncpg.UniqueViolationError:
        raise Conflict("a user with this email exists") from None
    await audit.record(
        conn, caller, "create", "users", row["id"], audit.values(row, ("name", "email", "role"))
    )
    user_id: uuid.UUID = row["id"]
    return user_id


async def _keep_an_admin(conn: asyncpg.Connection, user: asyncpg.Record) -> None:
    if (
        user["role"] == "admin"
        and user["active"]
        and not await conn.fetchval(queries.OTHER_ADMINS, user["id"])
    ):
        raise Conflict("this is the last active admin: make another admin first")


async def change_user(conn: asyncpg.Connection, caller: Caller, user_id: uuid.UUID, **changes: Any) -> None:
    """Change a user's ``role`` or ``active``; deactivating ends their sessions. The last active admin stays."""
    user = await conn.fetchrow(queries.USER, user_id)
    if user is None:
        raise LookupError(user_id)
    if "role" in changes:
        _role(changes["role"])
    new = {**dict(user), **changes}
    if new["role"] != "admin" or not new["active"]:
        await _keep_an_admin(conn, user)
    diff = audit.diff(user, new, ("role", "active"))
    if not diff:
        return
    await conn.execute(
        "UPDATE users SET role = $2, active = $3 WHERE id = $1", user_id, new["role"], new["active"]
    )
    if not new["active"]:
        await session.end_all(conn, user_id)
    await audit.record(conn, caller, "update", "users", user_id, diff)


async def new_token(
    conn: asyncpg.Connection, caller: Caller, name: str, role: str, user_id: uuid.UUID | None
) -> str:
    """Create an API token (for a user, when given); the value is returned once and stored only as a hash."""
    name = name.strip()
    if not 1 <= len(name) <= 200 or "\x00" in name:
        raise BadRequest("name: 1 to 200 characters")
    try:
        token = await create_token(conn, name, _role(role), user_id)
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest("user: no such user") from None
    token_id = await conn.fetchval(queries.TOKEN_ID, token_hash(token))
    details = {"name": name, "role": role, "user_id": str(user_id) if user_id else None}
    await audit.record(conn, caller, "create", "api_tokens", token_id, details)
    return token


async def revoke_token(conn: asyncpg.Connection, caller: Caller, token_id: uuid.UUID) -> bool:
    """Revoke a token; False when there is no such live token."""
    row = await conn.fetchrow(queries.REVOKE, token_id)
    if row is None:
        return False
    await audit.record(
        conn, caller, "revoke", "api_tokens", token_id, {"name": row["name"], "role": row["role"]}
    )
    return True
