"""The web app's shared plumbing: the page layout, the session (sign-in with an API token kept in an HttpOnly,
SameSite=Strict cookie, so pages are only ever sent by this site's own forms; form posts also have to come from
this origin), and errors under /app as readable pages. The pages themselves live in their domains
(people/pages.py)."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from leadline_crm.http import queries
from leadline_crm.http.auth import Caller, token_hash
from leadline_crm.http.keys import POOL, Handler

COOKIE = "ll_crm"
STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
header a{color:#fff;text-decoration:none}header form{margin-left:auto}
main{max-width:72rem;margin:1.2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.4rem .5rem;border-bottom:1px solid #e3e6ea;
text-align:left;vertical-align:top}th{background:#eef0f3}
.card{background:#fff;padding:1rem;margin:0 0 1rem;border:1px solid #e3e6ea}
.error{background:#fdecec;border:1px solid #f5b5b5;padding:.6rem;margin:0 0 1rem}
.stage{display:inline-block;padding:0 .4rem;border-radius:.3rem;background:#e6eefc}
label{display:block;margin:.3rem 0}input,select,textarea{font:inherit;padding:.2rem}
dl{display:grid;grid-template-columns:10rem 1fr;gap:.2rem .8rem}dt{color:#5a6472}
"""


def esc(value: Any) -> str:
    """Everything shown is escaped: names and URLs come from visitors' forms."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return html.escape(value.strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, list):
        return html.escape(", ".join(map(str, value)))
    return html.escape(str(value))


def page(title: str, body: str, caller: Caller | None = None, status: int = 200) -> web.Response:
    """A whole HTML page in the app's layout."""
    nav = ""
    if caller is not None:
        nav = (
            "<a href='/app'>Persons</a><a href='/app/leads/new'>New lead</a><a href='/api/docs'>API</a>"
            f"<form method='post' action='/app/logout'><small>{esc(caller.name)} ({esc(caller.role)})</small> "
            "<button>Sign out</button></form>"
        )
    text = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{esc(title)} · Leadline</title>"
        f"<style>{STYLE}</style></head><body><header><strong>Leadline</strong>{nav}</header>"
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(
        text=text, content_type="text/html", status=status, headers={"Cache-Control": "no-store"}
    )


def error_box(message: str | None) -> str:
    return f"<div class='error' role='alert'>{esc(message)}</div>" if message else ""


async def signed_in(request: web.Request) -> Caller:
    """The caller behind the session cookie; otherwise off to the sign-in page."""
    token = request.cookies.get(COOKIE, "")
    row = await request.app[POOL].fetchrow(queries.TOKEN_CALLER, token_hash(token)) if token else None
    if row is None:
        raise web.HTTPSeeOther("/app/login?" + urlencode({"next": request.path_qs}))
    return Caller(row["name"], row["role"], row["user_id"])


def same_origin(request: web.Request) -> None:
    """Refuse form posts sent from another site (defence in depth beside the SameSite cookie)."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="cross-site form post refused")


def may(caller: Caller, roles: frozenset[str]) -> bool:
    return caller.role in roles


def forbidden(caller: Caller) -> web.Response:
    return page("Not allowed", "<p>Your role may not do this.</p>", caller, status=403)


async def login_form(request: web.Request) -> web.Response:
    """GET /app/login."""
    return _login_page(request.query.get("next", "/app"))


def _login_page(nxt: str, message: str | None = None, status: int = 200) -> web.Response:
    body = (
        f"{error_box(message)}<form method='post' action='/app/login' class='card'>"
        f"<input type='hidden' name='next' value='{esc(nxt)}'>"
        "<label>API token <input name='token' type='password' size='60' autocomplete='current-password' required>"
        "</label><p><small>Create one with <code>leadline token --role sales</code>.</small></p>"
        "<button>Sign in</button></form>"
    )
    return page("Sign in", body, status=status)


async def login(request: web.Request) -> web.Response:
    """POST /app/login: check the token, then keep it in the session cookie."""
    same_origin(request)
    form = await request.post()
    token, nxt = str(form.get("token", "")).strip(), str(form.get("next", "/app"))
    if not nxt.startswith("/app") or nxt.startswith("//"):
        nxt = "/app"
    if not token or await request.app[POOL].fetchrow(queries.TOKEN_CALLER, token_hash(token)) is None:
        return _login_page(nxt, "That token is unknown or revoked.", status=401)
    resp = web.HTTPSeeOther(nxt)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.secure, path="/app")
    raise resp


async def logout(request: web.Request) -> web.Response:
    """POST /app/logout."""
    same_origin(request)
    resp = web.HTTPSeeOther("/app/login")
    resp.del_cookie(COOKIE, path="/app")
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
        return page(
            exc.reason, f"<p>{esc(exc.reason)}. <a href='/app'>Back to the persons</a></p>", status=exc.status
        )


def session_pages() -> list[web.RouteDef]:
    """Sign-in and sign-out."""
    return [
        web.get("/app/login", login_form),
        web.post("/app/login", login),
        web.post("/app/logout", logout),
    ]
