"""JSON answers, encoded with orjson."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID class, which orjson does not know
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def json_response(doc: Any, status: int = 200) -> web.Response:
    """JSON encoded with orjson (datetimes as ISO 8601, UUIDs as strings, money as numbers)."""
    return web.Response(
        body=orjson.dumps(doc, default=_default), status=status, content_type="application/json"
    )
