"""The service desk (issue 14): service contracts, cases with SR-YYYY-NNNNNN tracking numbers and their comments,
and the knowledge base, with their pages."""

from aiohttp import web

from leadline_crm.http.openapi import Operation
from leadline_crm.service import pages as _pages
from leadline_crm.service import routes as _routes
from leadline_crm.service import support as _support


def operations() -> list[Operation]:
    """The service desk's API."""
    return _routes.operations()


def pages() -> list[web.AbstractRouteDef]:
    """The service desk's pages, the public article page /kb/{id} and the public support pages /support/…"""
    return [*_pages.pages(), *_support.pages()]


__all__ = ["operations", "pages"]
