"""The sales domain (issue 15): companies, deals in pipelines, tasks, lead assignment and sales volume, and their
pages. It imports ``http/`` and its own modules only: people/ and stages.py call into it (``assignment.new_leads``,
``tasks_due``), never the other way, so there is no import circle."""

from aiohttp import web

from leadline_crm.http.openapi import Operation
from leadline_crm.sales import pages as _pages
from leadline_crm.sales import routes as _routes
from leadline_crm.sales.pages import PURCHASES_RESOURCE


def operations() -> list[Operation]:
    """The sales API."""
    return _routes.operations()


def pages() -> list[web.AbstractRouteDef]:
    """The sales pages."""
    return _pages.pages()


__all__ = ["PURCHASES_RESOURCE", "operations", "pages"]
