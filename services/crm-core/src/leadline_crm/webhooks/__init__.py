"""Outbound webhooks (issue 16): subscriptions per event type, signed deliveries queued from the automation loop's
domain events (fanout.py) and sent at least once by the dispatcher (dispatch.py), with their pages and API."""

from aiohttp import web

from leadline_crm.http.openapi import Operation
from leadline_crm.webhooks import pages as _pages
from leadline_crm.webhooks import routes as _routes
from leadline_crm.webhooks.dispatch import Dispatcher
from leadline_crm.webhooks.fanout import enqueue, on_events
from leadline_crm.webhooks.sealing import SEALER, Sealer, seal_stored


def operations() -> list[Operation]:
    """The webhooks' API."""
    return _routes.operations()


def pages() -> list[web.AbstractRouteDef]:
    """The webhook settings pages."""
    return _pages.pages()


__all__ = ["SEALER", "Dispatcher", "Sealer", "enqueue", "on_events", "operations", "pages", "seal_stored"]
