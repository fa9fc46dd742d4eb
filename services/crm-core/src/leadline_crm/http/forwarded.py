"""Requests that reach crm-core through a reverse proxy: who the client is, and whether it came over https.

Only a peer in ``LEADLINE_TRUSTED_PROXIES`` is believed. From such a peer, the client is the right-most
``X-Forwarded-For`` hop that is not a trusted proxy (each proxy appends the address it got the request from, so
the hops are believable from the right up to the first one that is not ours), and ``X-Forwarded-Proto`` says
whether the client used https. That address is what the sign-in back-off counts per client (http/passwords.py)
and the scheme decides whether the session cookie is Secure (http/session.py). Without trusted proxies nothing
changes: behind a TLS-terminating proxy that is not listed, every user shares the proxy's address and the cookie
lacks Secure. The collector resolves X-Forwarded-For by the same rule (its context.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Proxies = tuple[IPv4Network | IPv6Network, ...]


def proxy_networks(values: Iterable[str]) -> Proxies:
    """``LEADLINE_TRUSTED_PROXIES`` as networks (ValueError on a bad one; settings check them at start-up)."""
    return tuple(ip_network(value.strip()) for value in values)


def _address(text: str | None) -> IPv4Address | IPv6Address | None:
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
        return address.ipv4_mapped
    return address


def _trusted(address: IPv4Address | IPv6Address | None, proxies: Proxies) -> bool:
    return address is not None and any(address in network for network in proxies)


def forwarded_client(peer: str | None, forwarded_for: str | None, proxies: Proxies) -> str | None:
    """The client's address: the right-most X-Forwarded-For hop that is not a trusted proxy (all ours: the
    left-most; a hop that is no address: the last one we could vouch for). An untrusted peer's header is ignored."""
    nearest = _address(peer)
    if not forwarded_for or not _trusted(nearest, proxies):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            break
        nearest = address
        if not _trusted(address, proxies):
            break
    return str(nearest)


def middleware(proxies: Proxies) -> Middleware:
    """A request from a trusted proxy gets the forwarded client as ``remote`` and the forwarded scheme."""

    @web.middleware
    async def resolve(request: web.Request, handler: Handler) -> web.StreamResponse:
        if proxies and _trusted(_address(request.remote), proxies):
            forwarded = request.headers.getall("X-Forwarded-For", ())
            client = forwarded_client(request.remote, ",".join(forwarded), proxies) if forwarded else None
            proto = request.headers.get("X-Forwarded-Proto", "").partition(",")[0].strip().lower()
            scheme = proto if proto in ("http", "https") else request.scheme
            remote = client or request.remote or ""
            if remote != request.remote or scheme != request.scheme:
                request = request.clone(remote=remote, scheme=scheme)
        return await handler(request)

    return resolve
