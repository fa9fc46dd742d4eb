"""The first-party visitor cookie ``ll_vid`` and the privacy signals that decide whether to set it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Protocol

from aiohttp import web
from multidict import MultiMapping

from leadline_shared.ids import new_id, valid_client_id

COOKIE = "ll_vid"
MAX_AGE = 13 * 30 * 24 * 3600  # 13 months, the longest the ePrivacy guidance accepts


class HitRequest(Protocol):
    """What building an event reads from a request: aiohttp's ``web.Request``, or the fast path's own.

    Header names are always looked up in lower case: aiohttp's headers ignore case, and the fast path keeps its
    headers in a plain dict under lower-case names (a case-insensitive lookup costs a new string per call).
    """

    @property
    def method(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def query(self) -> MultiMapping[str]: ...

    @property
    def cookies(self) -> Mapping[str, str]: ...

    @property
    def remote(self) -> str | None: ...

    @property
    def secure(self) -> bool: ...


def privacy_opt_out(request: HitRequest) -> bool:
    """Do Not Track or Global Privacy Control is on: no cookie, truncated IP."""
    return request.headers.get("dnt") == "1" or request.headers.get("sec-gpc") == "1"


def visitor_id(request: HitRequest) -> tuple[str | None, bool]:
    """The visitor's id and whether it is new; None when the visitor opted out and has no cookie."""
    raw = request.headers.get("cookie")
    # most hits carry no cookie of ours; parsing the Cookie header costs more than the rest of this function
    existing = valid_client_id(request.cookies.get(COOKIE)) if raw and COOKIE in raw else None
    if existing:
        return existing, False
    if privacy_opt_out(request):
        return None, False
    return new_id(), True


def is_https(request: HitRequest) -> bool:
    """The original request was https (directly or behind a proxy that says so)."""
    return request.secure or request.headers.get("x-forwarded-proto", "").lower() == "https"


def set_cookie(response: web.StreamResponse, request: HitRequest, vid: str, domain: str) -> None:
    """Set or refresh ``ll_vid``: HttpOnly, SameSite=Lax, Secure on https, 13 months.

    Written as a header directly: ``vid`` is always a canonical UUID/ULID (no quoting needed), and
    ``SimpleCookie`` would cost more than the rest of a pixel request.
    """
    response.headers.add("Set-Cookie", cookie_header(request, vid, domain))


def cookie_header(request: HitRequest, vid: str, domain: str) -> str:
    """The ``Set-Cookie`` value for ``ll_vid``."""
    return f"{COOKIE}={vid}{_attributes(domain, is_https(request))}"


@lru_cache(maxsize=16)
def _attributes(domain: str, secure: bool) -> str:
    """The cookie's attributes after its value; the same on every response, so built once per variant."""
    parts = ["", f"Max-Age={MAX_AGE}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
