"""Reading request bodies with a cap per route (the app-wide cap is the largest route's)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

JSON_TYPES = frozenset({"application/json", "text/plain", "application/octet-stream"})
"""Content types a route that allows text/plain reads as JSON (octet-stream: aiohttp's name for no type at all)."""


class BodyError(Exception):
    """The body cannot be used: HTTP status and a reason for the caller."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (413) whether or not Content-Length was sent."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, f"the body is larger than {limit // 1024} KB")
    try:
        data = await request.content.read(limit + 1)
    except (web.HTTPRequestEntityTooLarge, ValueError):
        raise BodyError(413, f"the body is larger than {limit // 1024} KB") from None
    if len(data) > limit:
        raise BodyError(413, f"the body is larger than {limit // 1024} KB")
    return data


async def read_json(request: web.Request, limit: int, *, allow_text_plain: bool = False) -> Any:
    """A JSON body (optionally sent as text/plain, as navigator.sendBeacon does)."""
    return (await read_body(request, limit, allow_text_plain=allow_text_plain))[0]


async def read_body(request: web.Request, limit: int, *, allow_text_plain: bool = False) -> tuple[Any, bytes]:
    """:func:`read_json`'s parsed body and the text it was parsed from (once inflated)."""
    allowed = ("application/json", "text/plain") if allow_text_plain else ("application/json",)
    if request.content_type not in (
        JSON_TYPES if allow_text_plain else (*allowed, "application/octet-stream")
    ):
        raise BodyError(415, f"send {' or '.join(allowed)}")
    data = await read_limited(request, limit)
    try:
        return orjson.loads(data), data
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"invalid JSON: {exc.msg} at position {exc.pos}") from None
