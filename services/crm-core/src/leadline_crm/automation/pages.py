"""The automation pages (filled in below)."""

from __future__ import annotations

from aiohttp import web


def pages() -> list[web.AbstractRouteDef]:
    """The automation pages under /app."""
    return []
