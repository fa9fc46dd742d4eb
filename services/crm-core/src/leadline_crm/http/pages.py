"""The web app's shared plumbing: static assets, sign-in and sign-out, and errors under /app as readable pages.

The pages themselves live in their domains (people/pages.py, …) and render templates through
:func:`leadline_crm.http.templating.render`; the session and CSRF rules are in http/session.py.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from leadline_crm.http import queries, session
from leadline_crm.http.auth import Caller, token_hash
from leadline_crm.http.keys import POOL, Handler
from leadline_crm.http.templating import render

STATIC = Path(__file__).parent / "static"
signed_in = session.signed_in


def may(caller: Caller, roles: frozenset[str]) -> bool:
    return caller.role in roles


def forbidden(request: web.Request) -> web.Response:
    """The page for a role that may not do this."""
    return render(request, "error.html", status=403, title="Not allowed", detail="Your role may not do this.")


def safe_next(nxt: str) -> str:
    """Only ever send a user on to a page of this app (no open redirect)."""
    return nxt if nxt.startswith("/app") and not nxt.startswith("//") else "/app"


async def login_form(request: web.Request) -> web.Response:
    """GET /app/login."""
    session.new_pre_token(request)
    return _login_page(request, safe_next(request.query.get("next", "/app")))


def _login_page(
    request: web.Request, nxt: str, message: str | None = None, status: int = 200
) -> web.Response:
    response = render(request, "login.html", status=status, title="Sign in", next=nxt, message=message)
    session.ensure_pre_token(request, response)
    return response


async def login(request: web.Request) -> web.Response:
    """POST /app/login: check the token, then keep it in the session cookie."""
    form = await request.post()
    token, nxt = str(form.get("token", "")).strip(), safe_next(str(form.get("next", "/app")))
    if not token or await request.app[POOL].fetchrow(queries.TOKEN_CALLER, token_hash(token)) is None:
        return _login_page(request, nxt, "That token is unknown or revoked.", status=401)
    resp = web.HTTPSeeOther(nxt)
    session.start(request, resp, token)
    raise resp


async def logout(request: web.Request) -> web.Response:
    """POST /app/logout."""
    resp = web.HTTPSeeOther("/app/login")
    session.end(resp)
    raise resp


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors under /app are readable pages, not bare status texts."""
    if not request.path.startswith("/app"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(request, "error.html", status=exc.status, title=exc.reason, detail=f"{exc.reason}.")


def session_pages() -> list[web.AbstractRouteDef]:
    """Sign-in, sign-out and the static assets."""
    return [
        web.get("/app/login", login_form),
        web.post("/app/login", login),
        web.post("/app/logout", logout),
        web.static("/app/static", STATIC, append_version=False),
    ]
