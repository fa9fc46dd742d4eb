"""API tokens: random bearer tokens, stored only as SHA-256, each with one role."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg
from aiohttp import web

from leadline_crm import queries
from leadline_shared.http import problem

ROLES = ("admin", "sales", "marketing", "service", "read_only")


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe, prefixed so leaked tokens are easy to search for."""
    return "llt_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What is stored: a hash, so a database dump holds no usable token."""
    return hashlib.sha256(token.encode()).digest()


async def create_token(conn: asyncpg.Connection, name: str, role: str) -> str:
    """Create a token with ``role``; returns it (the only time it is visible)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    token = new_token()
    await conn.execute(queries.INSERT_TOKEN, token_hash(token), name, role)
    return token


async def role_of(pool: asyncpg.Pool, request: web.Request) -> str | web.Response:
    """The caller's role, or the 401 problem to answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return problem(401, "Unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    role: str | None = await pool.fetchval(queries.TOKEN_ROLE, token_hash(token.strip()))
    if role is None:
        return problem(401, "Unauthorized", "the API token is unknown or revoked")
    return role
