"""The marketing domain (issue 13): reports over rollups kept at ingestion, and the marketing dashboard."""

from aiohttp import web

from leadline_crm.http.openapi import Operation
from leadline_crm.marketing import pages as _pages
from leadline_crm.marketing import routes as _routes
from leadline_crm.marketing.recredit import Refolder


def operations() -> list[Operation]:
    """The reports API."""
    return _routes.operations()


def pages() -> list[web.AbstractRouteDef]:
    """The marketing dashboard."""
    return _pages.pages()


__all__ = ["Refolder", "operations", "pages"]
