"""The marketing dashboard under /app/marketing (filled in by the next slice)."""

from __future__ import annotations

from aiohttp import web


def pages() -> list[web.AbstractRouteDef]:
    return []
