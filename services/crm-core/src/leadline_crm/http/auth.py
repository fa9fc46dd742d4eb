"""API tokens (random bearer tokens, stored only as SHA-256, each with one role), the roles, and who is calling."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from leadline_crm.http import queries
from leadline_shared.http import problem

ROLES = ("admin", "sales", "marketing", "service", "read_only")
ROLES_ALL = frozenset(ROLES)
READ_ROLES = ROLES_ALL
ADMIN = frozenset({"admin"})
SALES = frozenset({"admin", "sales"})
REPS = frozenset({"admin", "sales", "service"})
MARKETING = frozenset({"admin", "marketing"})


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe, prefixed so leaked tokens are easy to search for."""
    return "llt_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What is stored: a hash, so a database dump holds no usable token."""
    return hashlib.sha256(token.encode()).digest()


async def create_token(
    conn: asyncpg.Connection, name: str, role: str, user_id: uuid.UUID | None = None
) -> str:
    """Create a token with ``role`` (for a user, when given); returns it (the only time it is visible)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    token = new_token()
    if user_id is None:
        await conn.execute(queries.INSERT_TOKEN, token_hash(token), name, role)
    else:
        await conn.execute(queries.INSERT_USER_TOKEN, token_hash(token), name, role, user_id)
    return token


@dataclass(frozen=True)
class Caller:
    """Who is calling: the token's name and role, and the user (rep) it belongs to, if any; ``via`` is "api" for
    a bearer token, "ui" for a web-app session (``name`` is then the user's) and "cli" for the ``leadline``
    command."""

    name: str
    role: str
    user_id: uuid.UUID | None = None
    via: str = "api"

    @property
    def label(self) -> str:
        """How the caller is named in the stage log."""
        return f"user:{self.user_id}" if self.user_id else f"token:{self.name}"

    @property
    def actor(self) -> str:
        """How the audit log names the caller: the user signed in, or the program's token."""
        return f"token:{self.name}" if self.via == "api" else self.name


async def caller_of(pool: asyncpg.Pool, request: web.Request) -> Caller | web.Response:
    """The caller, or the 401 problem to answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return problem(401, "Unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    row = await pool.fetchrow(queries.TOKEN_CALLER, token_hash(token.strip()))
    if row is None:
        return problem(401, "Unauthorized", "the API token is unknown or revoked")
    return Caller(row["name"], row["role"], row["user_id"])
