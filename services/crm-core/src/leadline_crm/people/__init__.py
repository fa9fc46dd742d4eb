"""The people domain: persons, leads, activities, purchases, feedback, the timeline, identity conflicts and
merges, and their pages."""

from aiohttp import web

from leadline_crm.http.openapi import Operation
from leadline_crm.people import conflicts, consent
from leadline_crm.people import pages as _pages
from leadline_crm.people import routes as _routes
from leadline_crm.people.records import RESOURCES as _RECORDS

PURCHASES = _RECORDS[0]
"""The purchases resource, which the sales pages use to record a won deal's purchases (wired by the app)."""


def operations() -> list[Operation]:
    """The people API."""
    return [*_routes.operations(), *conflicts.operations(), *consent.operations()]


def pages() -> list[web.AbstractRouteDef]:
    """The people pages."""
    return [*_pages.pages(), *conflicts.pages()]


__all__ = ["PURCHASES", "operations", "pages"]
