"""Passwords of the web app's users: argon2id hashes, the password rules, and the back-off after failed sign-ins.

Hashing runs in a worker thread: one argon2id hash takes ~50 ms of CPU and 64 MiB, which must not stall the
event loop. A hash made with older parameters is replaced at the next successful sign-in (:func:`verify` says
so), so raising the cost needs no migration.

Failed sign-ins are counted per account (the email as typed, whether or not a user has it, so the lock itself
tells nobody which emails exist) and per client address: after :data:`ACCOUNT_LIMIT` failures within
:data:`WINDOW` the account waits, and after :data:`ADDRESS_LIMIT` the address does, first for a minute, doubling
with each further failure up to :data:`MAX_WAIT`. A successful sign-in clears the account's count.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from datetime import timedelta
from functools import cache

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended profile (t=3, 64 MiB, p=4)
MIN_LENGTH = 12
MAX_LENGTH = 256
WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
FIRST_WAIT = timedelta(minutes=1)
MAX_WAIT = timedelta(minutes=15)


def problem_with(password: str, confirm: str | None = None) -> str | None:
    """What is wrong with a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"The password needs at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"The password may have at most {MAX_LENGTH} characters."
    if "\x00" in password:
        return "The password must not contain NUL characters."
    if confirm is not None and confirm != password:
        return "The two passwords differ."
    return None


def generate() -> str:
    """A password for a new account (the first admin's): 24 URL-safe characters, 144 random bits."""
    return secrets.token_urlsafe(18)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


@cache
def _decoy() -> str:
    """A hash to verify against when there is no user, so an unknown email costs as long as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> tuple[bool, bool]:
    try:
        HASHER.verify(stored or _decoy(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    if stored is None:
        return False, False
    return True, HASHER.check_needs_rehash(stored)


async def verify(stored: str | None, password: str) -> tuple[bool, bool]:
    """Whether ``password`` matches ``stored`` (None: no such user, checked against a decoy), and whether the
    hash should be made again with the current parameters."""
    return await asyncio.to_thread(_verify, stored, password)


def keys(email: str, address: str) -> list[str]:
    """The throttled keys of a sign-in: the account and the client address."""
    return [f"account:{email}", f"ip:{address}"]


LOCKED = """
SELECT max(locked_until) - now() FROM login_failures WHERE key = ANY($1::text[]) AND locked_until > now()"""

FAIL = """
INSERT INTO login_failures AS f (key, failures, last_at) VALUES ($1, 1, now())
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN f.last_at < now() - $2::interval THEN 1 ELSE f.failures + 1 END,
    last_at = now()
RETURNING failures"""

LOCK = "UPDATE login_failures SET locked_until = now() + $2::interval WHERE key = $1"


async def wait_left(conn: asyncpg.Connection | asyncpg.Pool, email: str, address: str) -> timedelta | None:
    """How long until this account and address may try again, or None when they may now."""
    left: timedelta | None = await conn.fetchval(LOCKED, keys(email, address))
    return left


def _wait(excess: int) -> timedelta:
    return min(MAX_WAIT, FIRST_WAIT * (1 << min(excess, 16)))


async def failed(conn: asyncpg.Connection | asyncpg.Pool, email: str, address: str) -> timedelta | None:
    """Count a failed sign-in; the wait it imposes, if it reached a limit."""
    waits = []
    for key, limit in zip(keys(email, address), (ACCOUNT_LIMIT, ADDRESS_LIMIT), strict=True):
        failures = await conn.fetchval(FAIL, key, WINDOW)
        if failures >= limit:
            wait = _wait(failures - limit)
            await conn.execute(LOCK, key, wait)
            waits.append(wait)
    return max(waits) if waits else None


STALE = """
DELETE FROM login_failures WHERE last_at < now() - $1::interval AND (locked_until IS NULL OR locked_until < now())"""


async def succeeded(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> None:
    """Clear the account's count; and forget counts nobody added to within :data:`WINDOW` (they would restart
    from one anyway), so a spray of made-up emails does not pile up rows."""
    await conn.execute("DELETE FROM login_failures WHERE key = $1", keys(email, "")[0])
    await conn.execute(STALE, WINDOW)


def minutes(wait: timedelta) -> str:
    """A wait as people read it: "1 minute", "4 minutes"."""
    n = max(1, math.ceil(wait.total_seconds() / 60))
    return f"{n} minute" + ("s" if n > 1 else "")
