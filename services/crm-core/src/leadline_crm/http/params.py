"""Reading a request's parameters: page limits, cursors, UUIDs in the path and the query."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import orjson
from aiohttp import web

from leadline_crm.http.errors import BadRequest
from leadline_crm.http.openapi import Param
from leadline_crm.http.schemas import UUID_S

LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size")
CURSOR = Param("cursor", "query", {"type": "string"}, "the `next` value of the previous page")


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    """An opaque cursor: where the next page starts."""
    return base64.urlsafe_b64encode(orjson.dumps([occurred_at.isoformat(), event_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Undo :func:`encode_cursor`; 422 on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, event_id = orjson.loads(raw)
        return datetime.fromisoformat(when), str(event_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("invalid cursor") from None


def page_limit(request: web.Request, default: int = 50, maximum: int = 500) -> int:
    """The ``limit`` parameter, checked."""
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:  # "²" is a digit to isdigit
        raise BadRequest(f"limit must be an integer from 1 to {maximum}")
    return int(raw)


def uuid_param(request: web.Request, name: str = "id") -> uuid.UUID:
    """A UUID path parameter; 404 when it is not one (no such record can exist)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise web.HTTPNotFound(text=f"no such {name}") from None


def query_uuid(request: web.Request, name: str) -> uuid.UUID | None:
    """An optional UUID query parameter; 422 when malformed."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a UUID") from None


def person_filter() -> Param:
    """The ``person_id`` filter of a list of records about persons."""
    return Param("person_id", "query", UUID_S, "only this person's records")
