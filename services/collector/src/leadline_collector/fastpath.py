"""A lean HTTP/1.1 path for the hottest capture requests, in front of aiohttp.

The pixel, the email open and the tracked link are hit far more often than anything else, and each answer is a
few bytes. In aiohttp, building the Request and the Response for such a hit costs about as much as everything
Leadline does for it (docs/benchmarks.md). So every connection starts here: a ``GET`` or ``HEAD`` for
``/p.gif``, ``/o/{token}.gif``, ``/c/{token}`` or ``/a/{affiliate}/{ad}/i.gif`` (under any of the collector's
prefixes), HTTP/1.1, without a body, is parsed by httptools (llhttp, the parser uvicorn uses), recorded by the same functions the aiohttp routes
call (:func:`hits.pixel_event`, :func:`hits.link_event`, :func:`affiliate.impression_event`, the visitor cookie) and answered with one write.
Segment calls and the snippet's ``POST /e`` with a simple body, and their CORS preflights, are answered here
too, through the functions their aiohttp routes call (:mod:`leanpost` says which and how).

The first request that is anything else — another route, an unusual body, an upgrade, HTTP/1.0, a token that
does not verify, a percent-encoded path, an oversized or malformed head — hands the connection, starting with
the bytes of that request, to aiohttp's own protocol for the rest of its life (once the answers owed before it
are written). Every other route and every error answer that is not the shared functions' own stays aiohttp's;
the fast path only ever answers what it fully understands.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httptools
from aiohttp import web
from aiohttp.http_parser import SINGLETON_HEADERS
from multidict import MultiDictProxy
from yarl import URL

from leadline_collector import beacon, segment
from leadline_collector.affiliate import impression_event
from leadline_collector.context import Proxies, forwarded_client, is_trusted, parse_address
from leadline_collector.hits import GIF, GIF_HEAD, link_event, pixel_event, safe_target
from leadline_collector.httperrors import HTTP_METRICS, PlainErrorsFactory
from leadline_collector.leanpost import (
    BEACON,
    PREFLIGHT,
    LeanPosts,
    body_json,
    cors_head,
    json_answer,
    response_answer,
)
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, record_or_count
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.visitor import cookie_header, visitor_id
from leadline_shared.service import cancel_and_wait
from leadline_shared.signing import InvalidToken, KeyRing

log = logging.getLogger(__name__)
ProtocolFactory = Callable[[], asyncio.BaseProtocol]

MAX_HEAD = 8190
"""Longest request head answered here; longer ones go to aiohttp, which applies its own limits."""
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect"})
_POST_REFUSED = frozenset({b"transfer-encoding", b"upgrade", b"expect"})
"""Headers that leave a POST to aiohttp (chunked bodies, upgrades, ``Expect: 100-continue``)."""
HAND_OVER, NEED_MORE = -1, 0
"""What answering a request returns besides the bytes it used: aiohttp must take it; its body is still coming."""
Render = Callable[["asyncio.Future[Any]"], tuple[bytes, bool]]
Owed = tuple["asyncio.Future[Any] | None", "Render | bytes", bool]
"""An answer owed on a connection, in request order: what it waits for, how it is rendered (or its bytes), and
whether the connection stays open after it."""
_SINGLETONS = frozenset(name.encode() for name in SINGLETON_HEADERS)
"""Headers aiohttp refuses (400) when repeated; a request repeating one is left to it."""


class FastRequest:
    """The parts of a request that building an event reads (the :class:`visitor.HitRequest` protocol)."""

    __slots__ = ("headers", "method", "query", "remote", "secure")

    def __init__(
        self,
        method: str,
        headers: dict[str, str],
        query: MultiDictProxy[str],
        remote: str | None,
        secure: bool,
    ) -> None:
        self.method, self.headers, self.query, self.remote, self.secure = (
            method,
            headers,
            query,
            remote,
            secure,
        )

    @property
    def cookies(self) -> Mapping[str, str]:
        """Cookies by name; only ``ll_vid`` is ever read, and its value is validated by the caller."""
        found: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name not in found:
                found[name] = value.strip().strip('"')
        return found


@dataclass
class FastPath:
    """The fast routes of one collector app, and the connections that are still on them."""

    sink: Sink
    metrics: CollectorMetrics
    keys: KeyRing
    cookie_domain: str
    prefixes: tuple[str, ...]
    trusted_proxies: Proxies = ()
    """Peers whose X-Forwarded-For names the client (``LEADLINE_TRUSTED_PROXIES``); judged once per connection."""
    posts: LeanPosts | None = None
    """The Segment and beacon POSTs answered here (:mod:`leanpost`); None: every POST goes to aiohttp."""
    sites: SiteConfigStore | None = None
    """The ads an impression pixel may name; None: impressions go to aiohttp."""
    idle_timeout: float = 75.0
    sweep_interval: float = 5.0
    connections: set[FastProtocol] = field(default_factory=set)
    _exact: dict[str, str] = field(default_factory=dict)
    _starts: tuple[tuple[str, str], ...] = ()
    _date: tuple[int, bytes] = (0, b"")

    def __post_init__(self) -> None:
        self._exact = {prefix + "/p.gif": "pixel" for prefix in self.prefixes}
        starts = [(prefix + "/o/", "open") for prefix in self.prefixes]
        starts += [(prefix + "/c/", "click") for prefix in self.prefixes]
        if self.sites is not None:
            starts += [(prefix + "/a/", "impression") for prefix in self.prefixes]
        self._starts = tuple(starts)

    def route(self, path: str) -> tuple[str, str] | None:
        """``(kind, token)`` for a path this module answers, else None."""
        kind = self._exact.get(path)
        if kind is not None:
            return kind, ""
        for start, kind in self._starts:
            if path.startswith(start):
                token = path[len(start) :]
                if kind == "impression":
                    return _impression_route(token)
                if kind == "open":
                    if not token.endswith(".gif"):
                        return None
                    token = token[:-4]
                if not token or "/" in token:
                    return None
                return kind, token
        return None

    def date(self) -> bytes:
        """The ``Date`` header value, formatted once a second."""
        now = int(time.time())
        if now != self._date[0]:
            self._date = (now, email.utils.formatdate(now, usegmt=True).encode())
        return self._date[1]

    def protocol_factory(self, fallback: ProtocolFactory) -> ProtocolFactory:
        """Wrap aiohttp's protocol factory: connections start here and move to aiohttp when they must."""

        def make() -> asyncio.BaseProtocol:
            return FastProtocol(self, fallback)

        return make

    def close_all(self) -> None:
        """Close every connection still on the fast path (shutdown: its requests are all answered)."""
        for conn in list(self.connections):
            conn.close()

    async def close_idle(self) -> None:
        """Close connections idle for longer than ``idle_timeout``, as aiohttp's keep-alive timeout does."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sweep_interval)
            limit = loop.time() - self.idle_timeout
            for conn in [c for c in self.connections if c.last_active < limit]:
                conn.close()


class FastProtocol(asyncio.Protocol):
    """One client connection, answered here until a request needs aiohttp.

    Answers go out in request order. A Segment call is answered once its events are durable, so its answer is
    owed (:data:`Owed`) while later pipelined requests are read and answered behind it; a request that must go to
    aiohttp waits, with reading paused, until every answer owed before it has been written.
    """

    def __init__(self, fast: FastPath, fallback: ProtocolFactory) -> None:
        self._fast = fast
        self._fallback = fallback
        self._parser = httptools.HttpRequestParser(self)
        self._buffer = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._complete = False
        self._keep_alive = True
        self._transport: asyncio.Transport | None = None
        self._remote: str | None = None
        self._proxied = False
        self._secure = False
        self._owed: deque[Owed] = deque()
        self._held: bytes | None = None
        """Bytes for aiohttp, held until the answers owed before them are written."""
        self._ending = False
        """A request said ``Connection: close`` (or shutdown came): nothing more is read; close once answered."""
        self._loop = asyncio.get_running_loop()
        self.last_active = self._loop.time()

    # --- asyncio.Protocol ------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Note the peer (as aiohttp's ``request.remote`` does) and whether TLS is on."""
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, list | tuple):
            self._remote = str(peer[0]) if peer else None
        elif peer is not None:
            self._remote = str(peer)
        proxies = self._fast.trusted_proxies
        self._proxied = bool(proxies) and is_trusted(parse_address(self._remote), proxies)
        self._secure = transport.get_extra_info("sslcontext") is not None
        self._fast.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection (answers still owed are rendered when their events are stored, and dropped)."""
        self._fast.connections.discard(self)
        self._transport = None
        self._held = None

    def pause_writing(self) -> None:
        """The client reads slower than it asks: stop reading until it catches up."""
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        """Read again."""
        if self._transport is not None and self._held is None:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in ``data`` that is ours; hand over at the first that is not."""
        self.last_active = self._loop.time()
        if self._held is not None:
            self._held += data
            return
        if self._ending:
            return
        buf = self._buffer + data if self._buffer else data
        self._buffer = b""
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD or b"\n\n" in buf:  # too long, or bare-LF line ends: aiohttp decides
                    self._hand_over_in_turn(buf)
                else:
                    self._buffer = buf
                return
            used = self._try_answer(buf, end + 4) if end + 4 <= MAX_HEAD else HAND_OVER
            if used == HAND_OVER:
                self._hand_over_in_turn(buf)
                return
            if used == NEED_MORE:
                self._buffer = buf
                return
            buf = buf[used:]
            if self._ending or self._transport is None or self._transport.is_closing():
                return

    def close(self) -> None:
        """Close the connection (shutdown, or idle too long), once the answers still owed are written."""
        if self._owed:
            self._ending = True
        elif self._transport is not None:
            self._transport.close()

    # --- httptools callbacks ---------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header."""
        self._headers.append((name, value))

    def on_message_complete(self) -> None:
        """A whole request was parsed; keep-alive is only known until the parser resets."""
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    # --- answering -------------------------------------------------------------------------------------------
    def _try_answer(self, buf: bytes, head_end: int) -> int:
        """:meth:`_answer`, with a failure of ours logged and the request left to aiohttp's error handling."""
        try:
            return self._answer(buf, head_end)
        except Exception:
            log.exception("fast path could not answer a request; aiohttp takes the connection")
            return HAND_OVER

    def _answer(self, buf: bytes, head_end: int) -> int:
        """Answer the request at the start of ``buf``: the bytes it used, :data:`NEED_MORE` (its body is still
        coming) or :data:`HAND_OVER` (nothing written, nothing recorded: aiohttp must take it)."""
        line = buf[: buf.find(b"\r\n")]
        parts = line.split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1":
            return HAND_OVER
        target = parts[1]
        path_bytes, _, query = target.partition(b"?")
        if b"%" in path_bytes or b"#" in target or not target.startswith(b"/"):
            return HAND_OVER  # percent-encoded paths are decoded by aiohttp's router; leave those to it
        if parts[0] == b"POST":
            return self._post(buf, head_end, path_bytes)
        if parts[0] == b"OPTIONS":
            return self._preflight(buf[:head_end], path_bytes)
        if parts[0] not in (b"GET", b"HEAD"):
            return HAND_OVER
        try:
            route = self._fast.route(path_bytes.decode("ascii"))
        except UnicodeDecodeError:
            return HAND_OVER
        if route is None:
            return HAND_OVER
        headers = self._parse(buf[:head_end], _BODY_HEADERS)
        if headers is None:
            return HAND_OVER
        request = FastRequest(
            parts[0].decode(),
            headers,
            URL.build(query_string=query.decode("utf-8", "surrogateescape"), encoded=True).query
            if query
            else _NO_QUERY,
            self._client(headers) if self._proxied else self._remote,
            self._secure,
        )
        kind, token = route
        keep_alive = self._keep_alive
        answered = (
            self._pixel(request, keep_alive)
            if kind == "pixel"
            else self._impression(request, token, keep_alive)
            if kind == "impression"
            else self._link(request, kind, token, keep_alive)
        )
        if not answered:
            return HAND_OVER
        self._fast.metrics.fast_answers.tally[kind] += 1
        return head_end

    def _client(self, headers: dict[str, str]) -> str | None:
        """The client behind our trusted proxy (the aiohttp routes get the same from the same function)."""
        return forwarded_client(self._remote, headers.get("x-forwarded-for"), self._fast.trusted_proxies)

    def _parse(self, message: bytes, refused: frozenset[bytes]) -> dict[str, str] | None:
        """The request's headers by lower-case name (the first of repeated ones, as aiohttp's ``get`` gives; every
        X-Forwarded-For, joined), or None when it has a header in ``refused``, repeats a header aiohttp refuses
        twice, or does not parse as one whole request."""
        self._headers = []
        self._complete = False
        try:
            self._parser.feed_data(message)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            return None
        if not self._complete:
            return None
        headers: dict[str, str] = {}
        for name, value in self._headers:
            lower = name.lower()
            if lower in refused:
                return None
            key = lower.decode("utf-8", "surrogateescape")
            if key not in headers:
                headers[key] = value.decode("utf-8", "surrogateescape")
            elif lower in _SINGLETONS:
                return None
            elif lower == b"x-forwarded-for":  # one list, in order, as the aiohttp routes read it
                headers[key] += "," + value.decode("utf-8", "surrogateescape")
        return headers

    def _pixel(self, request: FastRequest, keep_alive: bool) -> bool:
        anon_id, _ = visitor_id(request)
        record_or_count(self._fast.sink, self._fast.metrics, pixel_event(request, anon_id))
        cookie = cookie_header(request, anon_id, self._fast.cookie_domain) if anon_id else None
        self._write(b"HTTP/1.1 200 OK\r\n", GIF_HEAD, GIF, request.method == "HEAD", keep_alive, cookie)
        return True

    def _impression(self, request: FastRequest, token: str, keep_alive: bool) -> bool:
        """The ad impression pixel: the GIF, no cookie; an unknown ad is counted, not published (:mod:`affiliate`)."""
        sites = self._fast.sites
        if sites is None:
            return False
        affiliate_id, ad_id = token.split("/")
        event = impression_event(request, sites, affiliate_id, ad_id)
        if event is None:
            self._fast.metrics.rejected.labels(endpoint="impression", reason="unknown_ad").inc()
        else:
            record_or_count(self._fast.sink, self._fast.metrics, event)
        self._write(b"HTTP/1.1 200 OK\r\n", GIF_HEAD, GIF, request.method == "HEAD", keep_alive, None)
        return True

    def _link(self, request: FastRequest, kind: str, token: str, keep_alive: bool) -> bool:
        try:
            payload = self._fast.keys.verify(token)
        except InvalidToken:
            return False  # aiohttp answers (a GIF for opens, the 404 page for clicks) and counts the refusal
        head_only = request.method == "HEAD"
        if kind == "open":
            anon_id, _ = visitor_id(request)
            record_or_count(
                self._fast.sink, self._fast.metrics, link_event(request, "email_open", payload, anon_id)
            )
            self._write(b"HTTP/1.1 200 OK\r\n", GIF_HEAD, GIF, head_only, keep_alive, None)
            return True
        target = safe_target(payload)
        if target is None or "\r" in target or "\n" in target:
            return False
        anon_id, _ = visitor_id(request)
        record_or_count(
            self._fast.sink, self._fast.metrics, link_event(request, "link_click", payload, anon_id)
        )
        cookie = cookie_header(request, anon_id, self._fast.cookie_domain) if anon_id else None
        headers = b"Location: " + target.encode() + b"\r\nCache-Control: no-store\r\nContent-Length: 0\r\n"
        self._write(b"HTTP/1.1 302 Found\r\n", headers, b"", head_only, keep_alive, cookie)
        return True

    # --- POSTs: Segment calls and beacons (leanpost.py) -------------------------------------------------------
    def _post(self, buf: bytes, head_end: int, path: bytes) -> int:
        """A Segment call or a beacon with a simple body (see :mod:`leanpost`); anything else is aiohttp's."""
        posts = self._fast.posts
        route = posts.route(path) if posts is not None else None
        if posts is None or route is None:
            return HAND_OVER
        kind, limit = route
        length = _content_length(buf[:head_end])
        if length is None or length > limit:
            return HAND_OVER  # no length (or chunked), or over the cap: aiohttp answers as the route does
        end = head_end + length
        if len(buf) < end:
            return NEED_MORE
        headers = self._parse(buf[:end], _POST_REFUSED)
        if headers is None:
            return HAND_OVER
        usable, body, data = body_json(headers, buf[head_end:end], limit)
        if not usable:
            return HAND_OVER
        request = FastRequest(
            "POST", headers, _NO_QUERY, self._client(headers) if self._proxied else self._remote, self._secure
        )
        cors = cors_head(headers.get("origin"))
        if kind == BEACON:
            self._beacon(posts, request, body, data, cors)
        else:
            self._segment(posts, request, body, data, kind, cors)
        self._fast.metrics.fast_answers.tally[kind] += 1
        return end

    def _preflight(self, head: bytes, path: bytes) -> int:
        """``OPTIONS`` for a POST route answered here: analytics.js sends the write key as Basic auth, so the
        browser asks first, on the connection its calls then use."""
        posts = self._fast.posts
        if posts is None or posts.route(path) is None:
            return HAND_OVER
        headers = self._parse(head, _BODY_HEADERS)
        if headers is None:
            return HAND_OVER
        status, preflight_head = PREFLIGHT
        self._write(
            status, preflight_head + cors_head(headers.get("origin")), b"", False, self._keep_alive, None
        )
        self._fast.metrics.fast_answers.tally["preflight"] += 1
        return len(head)

    def _beacon(self, posts: LeanPosts, request: FastRequest, body: Any, data: bytes, cors: bytes) -> None:
        taken = beacon.take(request, body, posts.sink, posts.metrics, posts.default_region, data)
        if isinstance(taken, web.Response):
            status, head, payload = response_answer(taken)
            self._write(status, head + cors, payload, False, self._keep_alive, None)
            return
        counts, vid = taken
        status, head, payload = json_answer(counts)
        cookie = cookie_header(request, vid, self._fast.cookie_domain) if vid else None
        room = posts.sink.throttle()
        if room is None:
            self._write(status, head + cors, payload, False, self._keep_alive, cookie)
            return
        keep_alive = self._keep_alive  # the publisher is behind: answered once it caught up (Sink.throttle)
        data = _render(status, self._fast.date(), head + cors, payload, keep_alive, cookie)
        self._owe(room, lambda _: (data, keep_alive), keep_alive)

    def _segment(
        self, posts: LeanPosts, request: FastRequest, body: Any, data: bytes, call_type: str, cors: bytes
    ) -> None:
        judged = segment.judge(
            request, body, call_type, posts.sites, posts.metrics, posts.default_region, data
        )
        if isinstance(judged, web.Response):
            status, head, payload = response_answer(judged)
            self._write(status, head + cors, payload, False, self._keep_alive, None)
            return
        keep_alive = self._keep_alive
        metrics, date = posts.metrics, self._fast.date
        accepted, errors = judged.accepted, judged.errors  # the answer needs only these, not the events

        def render(stored: asyncio.Future[Any]) -> tuple[bytes, bool]:
            error = (
                (asyncio.CancelledError() if stored.cancelled() else stored.exception())
                if stored.done()
                else None
            )
            try:
                done = segment.answer(accepted, errors, call_type, metrics, error)
            except BaseException:
                log.exception("fast path: a Segment call's events could not be stored")
                return _FAILED + b"Date: " + date() + b"\r\n\r\n" + _FAILED_BODY, False
            status, head, payload = (
                response_answer(done) if isinstance(done, web.Response) else json_answer(done)
            )
            return _render(status, date(), head + cors, payload, keep_alive, None), keep_alive

        self._owe(segment.store_all(posts.sink, judged.events), render, keep_alive)

    # --- writing, in request order ----------------------------------------------------------------------------
    def _write(
        self,
        status: bytes,
        headers: bytes,
        body: bytes,
        head_only: bool,
        keep_alive: bool,
        cookie: str | None,
    ) -> None:
        if self._transport is None:  # not an assert: those vanish under python -O (issue 11)
            raise RuntimeError("fast path: an answer written after its connection was closed or handed over")
        data = _render(status, self._fast.date(), headers, b"" if head_only else body, keep_alive, cookie)
        if self._owed:
            self._owed.append((None, data, keep_alive))
        else:
            self._send(data, keep_alive)
        if not keep_alive:
            self._ending = True

    def _owe(self, waiting: asyncio.Future[Any], render: Render, keep_alive: bool) -> None:
        """An answer to write once ``waiting`` is done, after every answer owed before it."""
        if not keep_alive:
            self._ending = True
        if waiting.done() and not self._owed:
            data, keep = render(waiting)
            self._send(data, keep)
            return
        self._owed.append((waiting, render, keep_alive))
        waiting.add_done_callback(self._drain)

    def _drain(self, _: object = None) -> None:
        """Write the owed answers that are ready, in order; then hand over what waited for them, if anything."""
        owed = self._owed
        while owed:
            waiting, render, keep_alive = owed[0]
            if waiting is not None and not waiting.done():
                return
            owed.popleft()
            if isinstance(render, bytes):
                data = render
            else:
                data, keep_alive = render(waiting)  # type: ignore[arg-type]
            if self._transport is not None:
                self._send(data, keep_alive)
        if self._transport is None:
            return
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.resume_reading()
            self._hand_over(held)
        elif self._ending:
            self._transport.close()

    def _send(self, data: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(data)
        if not keep_alive:
            self._ending = True
            self._owed.clear()
            transport.close()

    def _hand_over_in_turn(self, data: bytes) -> None:
        """:meth:`_hand_over`, once the answers owed before ``data`` are written (reading paused meanwhile)."""
        if not self._owed:
            self._hand_over(data)
            return
        self._held = data
        if self._transport is not None:
            self._transport.pause_reading()

    def _hand_over(self, data: bytes) -> None:
        """Give the connection, and ``data`` (from the start of a request), to aiohttp for good."""
        transport = self._transport
        self._fast.connections.discard(self)
        self._transport = None
        if transport is None or transport.is_closing():
            return
        protocol: Any = self._fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if data:
            protocol.data_received(data)


_FAILED = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
)
_FAILED_BODY = b"500 Internal Server Error\n\nServer got itself in trouble"
_FAILED += b"Content-Length: %d\r\n" % len(_FAILED_BODY)


def _render(
    status: bytes, date: bytes, headers: bytes, body: bytes, keep_alive: bool, cookie: str | None
) -> bytes:
    """One whole answer."""
    out = [status, b"Date: ", date, b"\r\n", headers]
    if cookie is not None:
        out += [b"Set-Cookie: ", cookie.encode(), b"\r\n"]
    if not keep_alive:
        out.append(b"Connection: close\r\n")
    out.append(b"\r\n")
    if body:
        out.append(body)
    return b"".join(out)


def _content_length(head: bytes) -> int | None:
    """The Content-Length of a request head, or None when it has none, a malformed one, a Transfer-Encoding or an
    Expect (httptools checks the head again once the body is in, refusing a repeated or contradicting length)."""
    lower = head.lower()
    if b"\r\ntransfer-encoding:" in lower or b"\r\nexpect:" in lower:  # aiohttp answers 100 Continue, not us
        return None
    start = lower.find(b"\r\ncontent-length:")
    if start < 0:
        return None
    start += 17
    value = lower[start : lower.find(b"\r\n", start)].strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


_NO_QUERY: MultiDictProxy[str] = URL("/").query


def _impression_route(rest: str) -> tuple[str, str] | None:
    """``("impression", "affiliate/ad")`` for the rest of ``/a/{affiliate}/{ad}/i.gif``, else None."""
    if not rest.endswith("/i.gif"):
        return None
    affiliate_id, sep, ad_id = rest[:-6].partition("/")
    if not sep or not affiliate_id or not ad_id or "/" in ad_id:
        return None
    return "impression", rest[:-6]


class FastServer:
    """aiohttp's ``Server`` as the sites see it (a protocol factory): connections start on the fast path, if the app
    has one, and go on with aiohttp's protocol answering unparseable requests plainly (:mod:`httperrors`).

    Everything else (shutdown, the connection list) is the wrapped server's.
    """

    def __init__(self, server: Any, fast: FastPath | None, metrics: CollectorMetrics | None) -> None:
        self._server = server
        plain = PlainErrorsFactory(server, metrics)
        self._make: ProtocolFactory = fast.protocol_factory(plain) if fast is not None else plain

    def __call__(self) -> asyncio.BaseProtocol:
        return self._make()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


FAST_PATH = web.AppKey("fast_path", FastPath)


class FastRunner(web.AppRunner):
    """An ``AppRunner`` whose sites start connections on the app's fast path (when it has one)."""

    @property
    def server(self) -> Any:
        """The protocol factory the sites listen with."""
        server = super().server
        if server is None:
            return server
        return FastServer(server, self.app.get(FAST_PATH), self.app.get(HTTP_METRICS))


def install(app: web.Application, fast: FastPath) -> None:
    """Attach the fast path to ``app``: closed on shutdown, idle connections closed as aiohttp's are."""
    app[FAST_PATH] = fast

    async def on_shutdown(app: web.Application) -> None:
        fast.close_all()

    async def idle_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.ensure_future(fast.close_idle())
        yield
        await cancel_and_wait(task)

    app.on_shutdown.append(on_shutdown)
    app.cleanup_ctx.append(idle_ctx)
