"""The web app's sessions and their CSRF defence (architecture.md §10).

A session lives in PostgreSQL (table ``sessions``); the cookie (HttpOnly, SameSite=Strict, Secure on https)
holds only a random session id, and the table only its SHA-256, so a database dump opens no session. A session
ends after :data:`IDLE` without a request, after :data:`ABSOLUTE` in any case, at sign-out, when its user is
deactivated, and when the user's password is set anew.

Every state-changing request under /app must carry the session's CSRF token (a hidden ``_csrf`` form field, or
the ``X-CSRF-Token`` header that htmx sends), compared in constant time: the synchronizer-token pattern, one
random token per session, kept in its row. No maintained aiohttp CSRF library exists, and the pattern is a few
lines on top of the session. Before sign-in there is no session, so the sign-in and password-set forms are
protected by a double-submit token in a short-lived cookie of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from leadline_crm.http.auth import Caller
from leadline_crm.http.keys import POOL, Handler

COOKIE = "ll_crm"
PRE_COOKIE = "ll_pre"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
IDLE = timedelta(hours=8)
ABSOLUTE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)  # how stale last_seen_at may get before a request writes it
CALLER = web.RequestKey("web_caller", Caller)
PRE_TOKEN = web.RequestKey("pre_token", str)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Session:
    """The signed-in user's session, as the request found it."""

    id_hash: bytes
    csrf: str
    caller: Caller
    email: str


SESSION = web.RequestKey("web_session", Session)

FIND = """
SELECT s.csrf, s.user_id, u.name, u.email, u.role, now() - s.last_seen_at > $3::interval AS stale
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id_hash = $1 AND u.active AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval"""
TOUCH = "UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1"
CREATE = "INSERT INTO sessions (id_hash, user_id, csrf, expires_at) VALUES ($1, $2, $3, now() + $4::interval)"
EXPIRED = "DELETE FROM sessions WHERE expires_at <= now() OR last_seen_at <= now() - $1::interval"


def id_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def csrf_token(request: web.Request) -> str:
    """The token the current page's forms must send back: the session's, or the pre-session forms'."""
    found: Session | None = request.get(SESSION)
    if found is not None:
        return found.csrf
    pre: str = request.get(PRE_TOKEN) or request.cookies.get(PRE_COOKIE, "")
    return pre


def new_pre_token(request: web.Request) -> None:
    """Pick the pre-session token before a sign-in or password form is rendered, so the form and cookie agree."""
    if not request.cookies.get(PRE_COOKIE):
        request[PRE_TOKEN] = secrets.token_urlsafe(24)


def ensure_pre_token(request: web.Request, response: web.StreamResponse) -> None:
    """Give a pre-session form its double-submit token (a cookie, and the same value in the form)."""
    if not request.cookies.get(PRE_COOKIE) and request.get(SESSION) is None:
        token = request.get(PRE_TOKEN) or secrets.token_urlsafe(24)
        response.set_cookie(
            PRE_COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/app",
            max_age=3600,
        )


async def load(request: web.Request) -> Session | None:
    """The session the cookie names, if it is still valid; kept on the request."""
    secret = request.cookies.get(COOKIE, "")
    if not secret:
        return None
    digest = id_hash(secret)
    row = await request.app[POOL].fetchrow(FIND, digest, IDLE, TOUCH_EVERY)
    if row is None:
        return None
    if row["stale"]:
        await request.app[POOL].execute(TOUCH, digest)
    found = Session(
        digest, row["csrf"], Caller(row["name"], row["role"], row["user_id"], via="ui"), row["email"]
    )
    request[SESSION] = found
    request[CALLER] = found.caller
    return found


async def signed_in(request: web.Request) -> Caller:
    """The signed-in user; otherwise off to the sign-in page."""
    found = request.get(SESSION) or await load(request)
    if found is None:
        raise web.HTTPSeeOther("/app/login?" + urlencode({"next": request.path_qs}))
    return found.caller


async def start(
    request: web.Request, response: web.StreamResponse, conn: asyncpg.Connection, user_id: uuid.UUID
) -> None:
    """A new session for ``user_id`` (a new id at every sign-in, so no planted id survives it), in the cookie."""
    secret = secrets.token_urlsafe(32)
    await conn.execute(EXPIRED, IDLE)
    await conn.execute(CREATE, id_hash(secret), user_id, secrets.token_urlsafe(32), ABSOLUTE)
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Strict", secure=request.secure, path="/app")
    response.del_cookie(PRE_COOKIE, path="/app")


async def end(request: web.Request, response: web.StreamResponse) -> None:
    """Sign out: the session row goes, and the cookie with it."""
    secret = request.cookies.get(COOKIE, "")
    if secret:
        await request.app[POOL].execute("DELETE FROM sessions WHERE id_hash = $1", id_hash(secret))
    response.del_cookie(COOKIE, path="/app")


async def end_all(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    """End every session of a user (deactivated, or a new password set)."""
    await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)


@web.middleware
async def csrf_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the session of a request under /app, and refuse a state-changing one whose CSRF token is missing or
    wrong (403)."""
    if request.path.startswith("/app") and not request.path.startswith("/app/static/"):
        await load(request)
        if request.method in UNSAFE:
            expected = csrf_token(request)
            sent = request.headers.get(CSRF_HEADER)
            if sent is None and request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                sent = str((await request.post()).get(CSRF_FIELD, ""))
            if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
                raise web.HTTPForbidden(
                    reason="The form has expired or came from another site; reload and try again"
                )
    return await handler(request)
