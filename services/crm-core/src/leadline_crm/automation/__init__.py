"""Automation (issue 16): domain events, the loop that hands them to their handlers, and workflow rules with their
API and pages, static lists, the workspace's notices."""

from aiohttp import web

from leadline_crm.automation import list_pages as _list_pages
from leadline_crm.automation import lists as _lists
from leadline_crm.automation import pages as _pages
from leadline_crm.automation import routes as _routes
from leadline_crm.automation.rules import Evaluator
from leadline_crm.automation.runner import Runner, breaches
from leadline_crm.http.openapi import Operation


def operations() -> list[Operation]:
    """The workflow rules' and the static lists' API."""
    return [*_routes.operations(), *_lists.operations()]


def pages() -> list[web.AbstractRouteDef]:
    """The automation pages and the static lists' pages."""
    return [*_pages.pages(), *_list_pages.pages()]


__all__ = ["Evaluator", "Runner", "breaches", "operations", "pages"]
