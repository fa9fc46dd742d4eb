"""The web app's shared plumbing: static assets, sign-in with email and password, sign-out, one's own account
(changing the password), the page of a password-set link, and errors under /app as readable pages.

The pages themselves live in their domains (people/pages.py, …) and render templates through
:func:`leadline_crm.http.templating.render`; the session and CSRF rules are in http/session.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web

from leadline_crm.http import accounts, audit, passwords, queries, session
from leadline_crm.http.auth import Caller
from leadline_crm.http.keys import POOL, Handler
from leadline_crm.http.templating import render
from leadline_shared.identifiers import canonical_email

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
    notice = "Your password is set. Sign in with it." if request.query.get("set") == "1" else None
    return _login_page(request, safe_next(request.query.get("next", "/app")), notice=notice)


def _login_page(
    request: web.Request,
    nxt: str,
    message: str | None = None,
    status: int = 200,
    email: str = "",
    notice: str | None = None,
) -> web.Response:
    response = render(
        request, "login.html", status=status, title="Sign in", next=nxt, message=message, email=email,
        notice=notice,
    )  # fmt: skip
    session.ensure_pre_token(request, response)
    return response


WRONG = "Wrong email or password."


def _locked(wait: timedelta) -> str:
    return (
        "Too many failed sign-ins for this account or from this address. "
        f"Try again in {passwords.minutes(wait)}, or ask an admin for a password link."
    )


async def login(request: web.Request) -> web.Response:
    """POST /app/login: email and password; a new session on success.

    One message for an unknown email, a deactivated user and a wrong password, so the form tells nobody which
    emails have accounts; repeated failures make the account and the address wait (http/passwords.py).
    """
    form = await request.post()
    typed = str(form.get("email", "")).strip()[:320]
    password = str(form.get("password", ""))[: passwords.MAX_LENGTH + 1]
    nxt = safe_next(str(form.get("next", "/app")))
    email = canonical_email(typed) or typed.lower()
    address = request.remote or ""
    pool = request.app[POOL]
    wait = await passwords.wait_left(pool, email, address)
    if wait is not None:
        return _login_page(request, nxt, _locked(wait), status=429, email=typed)
    user = await pool.fetchrow(queries.USER_BY_EMAIL, email)
    ok, rehash = await passwords.verify(user["password_hash"] if user else None, password)
    if not ok or user is None:
        wait = await passwords.failed(pool, email, address)
        if wait is not None:
            return _login_page(request, nxt, _locked(wait), status=429, email=typed)
        return _login_page(request, nxt, WRONG, status=401, email=typed)
    resp = web.HTTPSeeOther(nxt)
    async with pool.acquire() as conn, conn.transaction():
        await passwords.succeeded(conn, email)
        if rehash:
            await conn.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                user["id"],
                await passwords.hash_password(password),
            )
        await session.start(request, resp, conn, user["id"])
    raise resp


async def logout(request: web.Request) -> web.Response:
    """POST /app/logout: the session ends on the server, not only in the browser."""
    resp = web.HTTPSeeOther("/app/login")
    await session.end(request, resp)
    raise resp


async def password_form(request: web.Request) -> web.Response:
    """GET /app/password/{token}: the page a one-time password-set link opens."""
    user = await accounts.link_user(request.app[POOL], request.match_info["token"])
    if user is None:
        return _dead_link(request)
    session.new_pre_token(request)
    return _password_page(request, user)


#: The password page's address holds the link's token: no Referer carries it anywhere, not even to this site.
NO_REFERRER = {"Referrer-Policy": "no-referrer"}


def _dead_link(request: web.Request) -> web.Response:
    return render(
        request, "error.html", status=404, title="Link not valid",
        detail="This password link is unknown, already used or expired. Ask an admin for a new one.",
    )  # fmt: skip


def _password_page(
    request: web.Request, user: accounts.LinkUser, message: str | None = None, status: int = 200
) -> web.Response:
    response = render(
        request, "password.html", status=status, title="Set your password", user=user, message=message,
        min_length=passwords.MIN_LENGTH, headers=NO_REFERRER,
    )  # fmt: skip
    session.ensure_pre_token(request, response)
    return response


async def set_password(request: web.Request) -> web.Response:
    """POST /app/password/{token}: set the password, spend the link, then on to sign-in."""
    token = request.match_info["token"]
    form = await request.post()
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    pool = request.app[POOL]
    user = await accounts.link_user(pool, token)
    if user is None:
        return _dead_link(request)
    problem = passwords.problem_with(password, confirm)
    if problem is not None:
        return _password_page(request, user, problem, status=422)
    async with pool.acquire() as conn, conn.transaction():
        if await accounts.use_link(conn, token, password) is None:
            return _dead_link(request)
    resp = web.HTTPSeeOther("/app/login?set=1")
    await session.end(request, resp)
    raise resp


async def account(request: web.Request) -> web.Response:
    """GET /app/account: who is signed in, and the form to change one's password."""
    await signed_in(request)
    return _account_page(request, notice="Your password is changed." if request.query.get("done") else None)


def _account_page(
    request: web.Request, message: str | None = None, status: int = 200, notice: str | None = None
) -> web.Response:
    found = request[session.SESSION]
    return render(
        request, "account.html", status=status, title="Your account", message=message, notice=notice,
        email=found.email, min_length=passwords.MIN_LENGTH,
    )  # fmt: skip


async def change_password(request: web.Request) -> web.Response:
    """POST /app/account/password: the current password, then the new one twice.

    The current password is checked with the sign-in's back-off (a session left open must not become a way to
    guess it); the change ends every session of the user, and this browser gets a new one.
    """
    caller = await signed_in(request)
    found = request[session.SESSION]
    form = await request.post()
    current = str(form.get("current", ""))[: passwords.MAX_LENGTH + 1]
    new, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    pool = request.app[POOL]
    address = request.remote or ""
    wait = await passwords.wait_left(pool, found.email, address)
    if wait is not None:
        return _account_page(request, _locked(wait), 429)
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", caller.user_id)
    ok, _ = await passwords.verify(stored, current)
    if not ok:
        wait = await passwords.failed(pool, found.email, address)
        return _account_page(
            request, _locked(wait) if wait else "The current password is wrong.", 429 if wait else 403
        )
    problem = passwords.problem_with(new, confirm)
    if problem is not None:
        return _account_page(request, problem, 422)
    if caller.user_id is None:  # a session always has its user
        raise web.HTTPForbidden()
    resp = web.HTTPSeeOther("/app/account?done=1")
    async with pool.acquire() as conn, conn.transaction():
        await accounts.set_password(conn, caller.user_id, new)
        await passwords.succeeded(conn, found.email)
        await audit.record(conn, caller, "password_set", "users", caller.user_id)
        await session.start(request, resp, conn, caller.user_id)
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
    """Sign-in, sign-out, one's account, the password-set page and the static assets."""
    return [
        web.get("/app/login", login_form),
        web.post("/app/login", login),
        web.post("/app/logout", logout),
        web.get("/app/account", account),
        web.post("/app/account/password", change_password),
        web.get("/app/password/{token}", password_form),
        web.post("/app/password/{token}", set_password),
        web.static("/app/static", STATIC, append_version=False),
    ]
