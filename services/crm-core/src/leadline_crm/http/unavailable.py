"""PostgreSQL away (restarting, failing over, unreachable): 503 with Retry-After, not a 500.

During a failover every request that touches the database fails for a few seconds. A 500 would tell clients
and the load balancer that crm-core is broken; a 503 with ``Retry-After`` says "try again shortly", which is
true: the pool reconnects by itself. The failures that count as "away" are the ones the consumers retry
(:data:`leadline_shared.pg.UNAVAILABLE`), so the API and ingestion agree on what an outage is.
"""

from __future__ import annotations

import logging

from aiohttp import web

from leadline_crm.http.keys import Handler
from leadline_crm.http.templating import render
from leadline_shared import pg
from leadline_shared.http import problem

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
DETAIL = "The database is not reachable at the moment; nothing was changed. Try again in a few seconds."


@web.middleware
async def database_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer API calls and pages with 503 while PostgreSQL is away; other paths (ops routes) are untouched."""
    api, page = request.path.startswith("/api/"), request.path.startswith("/app")
    if not (api or page):
        return await handler(request)
    try:
        return await handler(request)
    except pg.UNAVAILABLE as exc:
        route = request.match_info.route.resource
        where = route.canonical if route is not None else "unmatched"  # the pattern, never ids or a query
        log.warning("database unavailable", extra={"error": type(exc).__name__, "route": where})
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        if api:
            resp = problem(503, "Service unavailable", DETAIL)
            resp.headers.update(headers)
            return resp
        return render(request, "error.html", status=503, headers=headers, title="Unavailable", detail=DETAIL)
