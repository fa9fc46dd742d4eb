"""The request context every captured event carries: IP, user agent, page, referrer, campaign, click ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from leadline_collector.visitor import HitRequest

Proxies = tuple[IPv4Network | IPv6Network, ...]

_UTM = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_CLICK_IDS = ("gclid", "fbclid", "msclkid")
_WANTED = frozenset((*_UTM, *_CLICK_IDS))


def client_ip(request: HitRequest) -> str | None:
    """The client address: ``request.remote``, which both HTTP paths have already resolved.

    Behind trusted proxies, the aiohttp routes get it from :func:`trusted_proxy_middleware` and the fast path
    builds its request with it; both call :func:`forwarded_client`, so the two paths store the same address.
    """
    return request.remote


def proxy_networks(values: Iterable[str]) -> Proxies:
    """``LEADLINE_TRUSTED_PROXIES`` as networks, parsed once at start-up (raises ValueError on a bad one)."""
    return tuple(ip_network(value.strip()) for value in values)


def parse_address(text: str | None) -> IPv4Address | IPv6Address | None:
    """An address as a peer or an X-Forwarded-For hop gives it (``ip``, ``ip:port``, ``[ipv6]:port``)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d
    return address


def is_trusted(address: IPv4Address | IPv6Address | None, proxies: Proxies) -> bool:
    """Whether ``address`` is one of our proxies (an IPv4 address is never in an IPv6 network: False)."""
    return address is not None and any(address in network for network in proxies)


def forwarded_client(peer: str | None, forwarded_for: str | None, proxies: Proxies) -> str | None:
    """The client's address: the right-most X-Forwarded-For hop that is not a trusted proxy.

    Only a trusted peer's header is read. Each proxy appends the address it got the request from, so the hops
    are believable from the right up to the first one that is not ours: that is the client, and whatever is left
    of it the client wrote itself. Every hop ours: the left-most (the client is inside). A hop that is no
    address (``unknown``): the last one we could vouch for.
    """
    nearest = parse_address(peer)
    if not forwarded_for or not is_trusted(nearest, proxies):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        address = parse_address(hop)
        if address is None:
            break
        nearest = address
        if not is_trusted(address, proxies):
            break
    return str(nearest)


def trusted_proxy_middleware(proxies: Proxies) -> Middleware:
    """For the aiohttp routes: a request from a trusted proxy gets the forwarded client as ``remote``.

    Installed only when proxies are configured, so the routes pay nothing otherwise. Repeated X-Forwarded-For
    headers count as one list in order (a proxy may add its own line instead of extending the client's).
    """

    @web.middleware
    async def resolve(request: web.Request, handler: Handler) -> web.StreamResponse:
        forwarded = request.headers.getall("X-Forwarded-For", ())
        if forwarded:
            client = forwarded_client(request.remote, ",".join(forwarded), proxies)
            if client is not None and client != request.remote:
                request = request.clone(remote=client)
        return await handler(request)

    return resolve


def campaign_from_url(url: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """UTM parameters and ad click ids found in a page URL (new dicts, the caller's to keep)."""
    if not url or "?" not in url or ("utm_" not in url and "clid" not in url):
        return {}, {}
    campaign, clicks = _campaign_of(url)
    return dict(campaign), dict(clicks)


@lru_cache(maxsize=512)
def _campaign_of(url: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """:func:`campaign_from_url`'s finding, remembered for the last few hundred URLs.

    The messages of one batch mostly come from one page, and a landing page with UTM parameters gets many
    visitors: parsing its query again for each was a fifth of what a Segment message cost. Kept as tuples, so no
    event shares a dict with another.
    """
    try:
        query = _wanted_parameters(urlsplit(url).query)
    except ValueError:
        return (), ()
    campaign = tuple((name, query[key][:200]) for key, name in _UTM.items() if query.get(key))
    clicks = tuple((key, query[key][:200]) for key in _CLICK_IDS if query.get(key))
    return campaign, clicks


def _wanted_parameters(query: str) -> dict[str, str]:
    """The campaign parameters of a query string, as ``dict(parse_qsl(query))`` has them (the last one wins; empty
    values and pairs without ``=`` are left out).

    Only the wanted values are decoded: ``parse_qsl`` decodes every name and value, which made up a fifth of what
    a Segment message costs the collector (a batch of 20 from a landing page with UTM parameters). A query whose
    names are encoded themselves (``%`` or ``+`` in a name) is left to ``parse_qsl``.
    """
    found: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if not value:
            continue
        if "%" in name or "+" in name:
            return dict(parse_qsl(query))
        if name in _WANTED:
            found[name] = value
    return {name: unquote(value.replace("+", " ")) for name, value in found.items()}


@dataclass(frozen=True, slots=True)
class RequestView:
    """What every event of one request reads from its headers, read once: a beacon of 20 events is one request."""

    ip: str | None
    user_agent: str
    locale: str | None
    consent: tuple[bool, bool] | None
    """``(dnt, gpc)`` when either privacy signal is on."""

    @classmethod
    def of(cls, request: HitRequest) -> RequestView:
        """The request's view, from one lookup per header."""
        headers = request.headers
        lang = headers.get("accept-language")
        dnt, gpc = headers.get("dnt") == "1", headers.get("sec-gpc") == "1"
        return cls(
            client_ip(request),
            headers.get("user-agent", "")[:512],
            lang.split(",", 1)[0].strip()[:32] if lang else None,
            (dnt, gpc) if dnt or gpc else None,
        )


def request_context(
    request: HitRequest, url: str | None, referrer: str | None, title: str | None = None
) -> dict[str, Any]:
    """Build ``context`` for an event from the request and the page it reports."""
    return page_context(RequestView.of(request), url, referrer, title)


def page_context(
    view: RequestView, url: str | None, referrer: str | None, title: str | None = None
) -> dict[str, Any]:
    """``context`` for an event: the request's view and the page it reports.

    Runs on every captured event, so it is written flat, and the campaign parse only for a URL with a query. In
    the running collector each extra dict and lookup costs several times what a micro-benchmark shows.
    """
    ctx: dict[str, Any] = {"ip": view.ip, "user_agent": view.user_agent}
    if url:
        ctx["url"] = url[:2048]
    if referrer:
        ctx["referrer"] = referrer[:2048]
    if title:
        ctx["title"] = title[:512]
    if view.locale is not None:
        ctx["locale"] = view.locale
    if url and "?" in url:
        campaign, clicks = campaign_from_url(url)
        if campaign:
            ctx["campaign"] = campaign
        if clicks:
            ctx["click_ids"] = clicks
    if view.consent is not None:
        ctx["consent"] = {"dnt": view.consent[0], "gpc": view.consent[1]}
    return ctx
