"""Short, plain answers to requests that do not parse, and no traceback for them in the log.

aiohttp answers a request it cannot parse with 400 and the parser's message as the body (an excerpt of the
client's bytes: ``Got more than 8190 bytes when reading: bytearray(b'/p.gif?u=…')``), and logs it with a
traceback as if the server had failed. The common case is a pixel whose page URL carries a huge query string.
Here such a request gets what HTTP says — 414 for a request target that is too long, 431 for a header that is,
400 for anything else malformed — as one line of text, is counted in ``leadline_collector_rejected_total``
(endpoint ``http``), and is logged as one line: the client erred, not the collector.

Every connection reaches this protocol: directly, or handed over by the fast path, which leaves every request it
does not fully understand (an oversized head among them) to aiohttp.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from leadline_collector.metrics import CollectorMetrics

log = logging.getLogger(__name__)

MAX_TARGET = 8192
"""Longest request target (8 KB). aiohttp reports a long target and a long header alike (``LineTooLong``), naming
the limit it hit; this limit differs from :data:`MAX_FIELD` so that the answer can tell 414 from 431."""
MAX_FIELD = 8190
"""Longest header, name and value (aiohttp's default)."""
HANDLER_ARGS = {"max_line_size": MAX_TARGET, "max_field_size": MAX_FIELD}
"""The app's ``handler_args``: the limits above, on every connection."""
HTTP_METRICS = web.AppKey("http_refusal_metrics", CollectorMetrics)

_ANSWERS = {
    414: ("uri_too_long", f"414 URI Too Long: the URL may have at most {MAX_TARGET} bytes\n"),
    431: ("header_too_large", f"431 Request Header Fields Too Large: at most {MAX_FIELD} bytes a header\n"),
    400: ("malformed", "400 Bad Request: this is not an HTTP/1.1 request the collector can read\n"),
}


def refusal_status(exc: HttpProcessingError, max_target: int, max_field: int) -> int:
    """414, 431 or 400 for a request that did not parse, from the limit a ``LineTooLong`` names."""
    if isinstance(exc, LineTooLong) and len(exc.args) > 1:
        limit = exc.args[1]
        if limit == max_target and max_target != max_field:
            return 414
        return 431
    return 400


class PlainErrorsHandler(RequestHandler):
    """aiohttp's connection protocol, with a short plain answer to a request that does not parse."""

    __slots__ = ("metrics",)

    def __init__(self, manager: Any, *, metrics: CollectorMetrics | None = None, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.metrics = metrics

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Parse errors (400 from the parser) answered here; a handler's own failure stays aiohttp's."""
        if status != 400 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        code = refusal_status(exc, self.max_line_size, self.max_field_size)
        reason, text = _ANSWERS[code]
        if self.metrics is not None:
            self.metrics.rejected.labels(endpoint="http", reason=reason).inc()
        log.info("refused a request that does not parse from %s: %s", request.remote, text.split(":")[0])
        response = web.Response(status=code, text=text, content_type="text/plain")
        response.force_close()
        return response


class PlainErrorsFactory:
    """A protocol factory for aiohttp's ``Server``: its handlers, as :class:`PlainErrorsHandler`."""

    def __init__(self, server: Any, metrics: CollectorMetrics | None) -> None:
        self._server = server
        self._metrics = metrics

    def __call__(self) -> PlainErrorsHandler:
        # what aiohttp's Server.__call__ does, with the subclass (the Server keeps its handler arguments private)
        server = self._server
        return PlainErrorsHandler(server, metrics=self._metrics, loop=server._loop, **server._kwargs)
