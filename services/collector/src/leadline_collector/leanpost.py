"""Segment calls and the snippet's beacons on the fast path: which POSTs it may answer, and with which bytes.

Websites integrate through ``POST /v1/track`` … ``/v1/batch`` (Segment SDKs), analytics.js's one-letter paths and
``POST /e`` (the capture snippet), and aiohttp's Request and Response cost more than Leadline's own work on such a
call. :mod:`fastpath` therefore answers the simple ones itself: a body sent with Content-Length (no chunking,
no ``Expect``), within the route's cap, JSON or text/plain (or no type, as aiohttp's ``application/octet-stream``
default), plain or gzip, that parses as JSON. Everything else — another encoding, an oversized or undecodable
body, invalid JSON, a preflight — goes to aiohttp with the connection, and aiohttp answers as it always has.

What the call becomes is decided by the functions the aiohttp routes call (:func:`segment.judge`,
:func:`segment.store_all`, :func:`segment.answer`, :func:`beacon.take`): the same events, the same refusals and
metrics, the same durable acknowledgement. This module only turns their answers into bytes, with the CORS
headers :mod:`cors` would add.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from leadline_collector import cors, segment
from leadline_collector.bodies import JSON_TYPES
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink
from leadline_collector.siteconfig_store import SiteConfigStore

BEACON = "beacon"
"""The route kind of ``POST /e``; the Segment routes' kind is their (long) call type."""
JSON_HEAD = b"Content-Type: application/json; charset=utf-8\r\n"
"""What aiohttp's ``json_response`` sends as the content type."""
_OK = b"HTTP/1.1 200 OK\r\n"
_SUCCESS = json.dumps(segment.SUCCESS).encode()
"""``{"success": true}`` as ``json_response`` writes it (the standard library's separators)."""


@dataclass
class LeanPosts:
    """The POST routes of one collector app that the fast path answers, and what they need."""

    sink: Sink
    sites: SiteConfigStore
    metrics: CollectorMetrics
    default_region: str
    segment_limit: int
    """Largest Segment body, in bytes once inflated (``LEADLINE_BATCH_MAX_KB``)."""
    beacon_limit: int
    """Largest ``/e`` body (``LEADLINE_BODY_MAX_KB``)."""
    prefixes: tuple[str, ...]
    _routes: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for prefix in self.prefixes:
            self._routes[prefix + "/e"] = (BEACON, self.beacon_limit)
            for call in segment.CALLS:
                self._routes[f"{prefix}/v1/{call}"] = (segment.SHORT.get(call, call), self.segment_limit)

    def route(self, path: bytes) -> tuple[str, int] | None:
        """``(kind, body limit)`` for a POST path answered here, else None."""
        try:
            return self._routes.get(path.decode("ascii"))
        except UnicodeDecodeError:
            return None


def body_json(headers: dict[str, str], body: bytes, limit: int) -> tuple[bool, Any, bytes]:
    """``(True, parsed body, its text once inflated)`` when the body follows the simple rules above;
    ``(False, None, b"")``: aiohttp decides.

    ``limit`` applies to the inflated body, as :func:`bodies.read_limited` applies it to what aiohttp inflates.
    """
    content_type = headers.get("content-type")
    if content_type is not None and content_type.partition(";")[0].strip().lower() not in JSON_TYPES:
        return False, None, b""
    encoding = headers.get("content-encoding")
    if encoding is not None:
        if encoding.strip().lower() != "gzip":
            return False, None, b""
        inflated = _gunzip(body, limit)
        if inflated is None:
            return False, None, b""
        body = inflated
    try:
        return True, orjson.loads(body), body
    except orjson.JSONDecodeError:
        return False, None, b""


def _gunzip(data: bytes, limit: int) -> bytes | None:
    """One whole gzip member of at most ``limit`` bytes inflated, else None."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        return None
    return out


PREFLIGHT = (
    b"HTTP/1.1 204 No Content\r\n",
    b"".join(f"{name}: {value}\r\n".encode() for name, value in cors.PREFLIGHT.items()),
)
"""The answer to a CORS preflight (:func:`cors.preflight`'s): status line and headers; no body, no length."""


def cors_head(origin: str | None) -> bytes:
    """The CORS headers :func:`cors.allow` adds for this Origin (none without one)."""
    if not origin:
        return b""
    return (
        b"Access-Control-Allow-Origin: "
        + origin.encode("utf-8", "surrogateescape")
        + b"\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
    )


_COUNTS = {
    ("success", "accepted", "rejected"): b'{"success": true, "accepted": %d, "rejected": %d}',
    ("accepted", "rejected"): b'{"accepted": %d, "rejected": %d}',
}
"""The answers of a batch and of a beacon with nothing refused, as ``json.dumps`` writes them (its encoder costs
more than the rest of the answer): filled in for counts that are plain ints and a success that is True."""


def json_answer(doc: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """A JSON answer as ``json_response`` would send it: status line, headers, body."""
    if doc is segment.SUCCESS:
        body = _SUCCESS
    else:
        template = _COUNTS.get(tuple(doc))
        accepted, rejected = doc.get("accepted"), doc.get("rejected")
        if (
            template is not None
            and type(accepted) is int
            and type(rejected) is int
            and doc.get("success", True) is True
        ):
            body = template % (accepted, rejected)
        else:
            body = json.dumps(doc).encode()
    return _OK, JSON_HEAD + b"Content-Length: %d\r\n" % len(body), body


def response_answer(response: web.Response) -> tuple[bytes, bytes, bytes]:
    """An aiohttp Response built by the shared functions (a problem document) as status line, headers, body."""
    body = response.body if isinstance(response.body, bytes) else b""
    status = b"HTTP/1.1 %d %s\r\n" % (response.status, response.reason.encode())
    headers = b"".join(f"{name}: {value}\r\n".encode() for name, value in response.headers.items())
    return status, headers + b"Content-Length: %d\r\n" % len(body), body
