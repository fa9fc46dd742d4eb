"""The request context every captured event carries: IP, user agent, page, referrer, campaign, click ids."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from leadline_collector.visitor import HitRequest
from leadline_shared.capture.context import RequestView, page_context

Proxies = tuple[IPv4Network | IPv6Network, ...]


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


def request_context(
    request: HitRequest, url: str | None, referrer: str | None, title: str | None = None
) -> dict[str, Any]:
    """Build ``context`` for an event from the request and the page it reports."""
    return page_context(RequestView.of(request), url, referrer, title)
