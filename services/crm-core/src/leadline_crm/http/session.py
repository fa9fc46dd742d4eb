"""The web app's session and its CSRF defence.

Who is signed in: the session cookie (HttpOnly, SameSite=Strict, Secure on https) names the caller. Every
state-changing request under /app must carry the session's CSRF token (a hidden ``_csrf`` form field, or the
``X-CSRF-Token`` header that htmx sends), compared in constant time: the synchronizer-token pattern. No
maintained aiohttp CSRF library exists, and the pattern is a few lines on top of the session.

Before sign-in there is no session, so the sign-in form is protected by a double-submit token in a short-lived
cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from aiohttp import web

from leadline_crm.http import queries
from leadline_crm.http.auth import Caller, token_hash
from leadline_crm.http.keys import POOL, Handler

COOKIE = "ll_crm"
PRE_COOKIE = "ll_pre"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
CALLER = web.RequestKey("web_caller", Caller)
PRE_TOKEN = web.RequestKey("pre_token", str)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token(request: web.Request) -> str:
    """The token the current page's forms must send back: the session's, or the sign-in form's."""
    secret = request.cookies.get(COOKIE, "")
    if secret:
        return hmac.new(token_hash(secret), b"csrf", hashlib.sha256).hexdigest()
    return request.get(PRE_TOKEN) or request.cookies.get(PRE_COOKIE, "")


def ensure_pre_token(request: web.Request, response: web.StreamResponse) -> None:
    """Give the sign-in form its double-submit token (a cookie, and the same value in the form)."""
    if not request.cookies.get(PRE_COOKIE):
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


def new_pre_token(request: web.Request) -> None:
    """Pick the pre-session token before the sign-in page is rendered, so the form and cookie agree."""
    if not request.cookies.get(PRE_COOKIE):
        request[PRE_TOKEN] = secrets.token_urlsafe(24)


async def signed_in(request: web.Request) -> Caller:
    """The caller behind the session cookie; otherwise off to the sign-in page."""
    secret = request.cookies.get(COOKIE, "")
    row = await request.app[POOL].fetchrow(queries.TOKEN_CALLER, token_hash(secret)) if secret else None
    if row is None:
        raise web.HTTPSeeOther("/app/login?" + urlencode({"next": request.path_qs}))
    caller = Caller(row["name"], row["role"], row["user_id"])
    request[CALLER] = caller
    return caller


def start(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    """Put a new session in the response's cookie."""
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Strict", secure=request.secure, path="/app")
    response.del_cookie(PRE_COOKIE, path="/app")


def end(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/app")


@web.middleware
async def csrf_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a state-changing request under /app whose CSRF token is missing or wrong (403)."""
    if request.method in UNSAFE and request.path.startswith("/app"):
        expected = csrf_token(request)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            sent = str((await request.post()).get(CSRF_FIELD, ""))
        if not expected or not sent or not hmac.compare_digest(expected, sent):
            raise web.HTTPForbidden(
                reason="The form has expired or came from another site; reload and try again"
            )
    return await handler(request)
