"""Automation (issue 16): domain events, the loop that hands them to their handlers, and workflow rules with their
API and pages."""

from aiohttp import web

from leadline_crm.automation import pages as _pages
from leadline_crm.automation import routes as _routes
from leadline_crm.automation.rules import Evaluator
from leadline_crm.automation.runner import Runner, breaches
from leadline_crm.http.openapi import Operation


def operations() -> list[Operation]:
    """The workflow rules' API."""
    return _routes.operations()


def pages() -> list[web.AbstractRouteDef]:
    """The automation pages."""
    return _pages.pages()


__all__ = ["Evaluator", "Runner", "breaches", "operations", "pages"]
