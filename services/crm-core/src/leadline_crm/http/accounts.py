"""Users' passwords: one-time password-set links, setting a password, and the first admin of a new install.

A password-set link carries a random token; only its SHA-256 is stored, it expires after :data:`LINK_LIFETIME`
and works once. No mail server is needed: the admin copies the link to the user. Setting a password ends the
user's other sessions and clears the account's failed sign-ins.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from leadline_crm.http import audit, passwords, session
from leadline_crm.http.auth import Caller

LINK_LIFETIME = timedelta(hours=72)
FIRST_ADMIN_EMAIL = "admin@example.com"

VALID_LINK = """
SELECT l.user_id, u.name, u.email, u.role FROM password_links l JOIN users u ON u.id = l.user_id
WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > now() AND u.active"""


def link_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def new_link(conn: asyncpg.Connection, user_id: uuid.UUID, caller: Caller) -> str:
    """Make a password-set link's token for ``user_id`` (its earlier unused links stop working)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        "UPDATE password_links SET used_at = now() WHERE user_id = $1 AND used_at IS NULL", user_id
    )
    await conn.execute(
        "INSERT INTO password_links (token_hash, user_id, created_by, expires_at)"
        " VALUES ($1, $2, $3, now() + $4::interval)",
        link_hash(token),
        user_id,
        caller.user_id,
        LINK_LIFETIME,
    )
    await audit.record(
        conn,
        caller,
        "password_link",
        "users",
        user_id,
        {"expires_in_hours": LINK_LIFETIME // timedelta(hours=1)},
    )
    return token


@dataclass(frozen=True)
class LinkUser:
    """The user a valid link is for."""

    user_id: uuid.UUID
    name: str
    email: str
    role: str


async def link_user(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> LinkUser | None:
    """The user of a valid (unused, unexpired) link, or None."""
    row = await conn.fetchrow(VALID_LINK, link_hash(token))
    return LinkUser(row["user_id"], row["name"], row["email"], row["role"]) if row else None


async def use_link(conn: asyncpg.Connection, token: str, password: str) -> LinkUser | None:
    """Set the password of the link's user and spend the link (in the caller's transaction); None when the link
    is no longer valid."""
    row = await conn.fetchrow(VALID_LINK + " FOR UPDATE OF l", link_hash(token))
    if row is None:
        return None
    user = LinkUser(row["user_id"], row["name"], row["email"], row["role"])
    await conn.execute("UPDATE password_links SET used_at = now() WHERE token_hash = $1", link_hash(token))
    await set_password(conn, user.user_id, password)
    await passwords.succeeded(conn, user.email)
    await audit.record(
        conn, Caller(user.name, user.role, user.user_id, via="ui"), "password_set", "users", user.user_id
    )
    return user


async def set_password(conn: asyncpg.Connection, user_id: uuid.UUID, password: str) -> None:
    """Store a new password's hash; every session of the user ends."""
    await conn.execute(
        "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, await passwords.hash_password(password)
    )
    await session.end_all(conn, user_id)


@dataclass(frozen=True)
class FirstAdmin:
    """The first admin's login: a password only when this call made it."""

    email: str
    password: str | None


async def first_admin(conn: asyncpg.Connection, email: str = FIRST_ADMIN_EMAIL) -> FirstAdmin:
    """Make sure an active admin can sign in: when none has a password, give ``email`` (created as an admin if
    needed) a generated one. Idempotent: once an admin has a password, nothing changes."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        existing = await conn.fetchval(
            "SELECT email FROM users WHERE role = 'admin' AND active AND password_hash IS NOT NULL"
            " ORDER BY lower(email) = lower($1) DESC, created_at LIMIT 1",
            email,
        )
        if existing is not None:
            return FirstAdmin(existing, None)
        password = passwords.generate()
        user_id = await conn.fetchval(
            "INSERT INTO users (email, name, role) VALUES ($1, 'Admin', 'admin')"
            " ON CONFLICT ((lower(email))) DO UPDATE SET role = 'admin', active = true RETURNING id",
            email,
        )
        await set_password(conn, user_id, password)
        await audit.record(
            conn,
            Caller("leadline up", "admin", None, via="cli"),
            "first_admin",
            "users",
            user_id,
            {"email": email},
        )
        return FirstAdmin(email, password)
