"""Where a webhook may be sent: only http(s) URLs, only to public addresses, and only to the address vetted.

A webhook URL is typed by an admin but its host name is resolved by whoever controls the DNS, so checking the URL
once is not enough: a name that resolved to a public address when the subscription was made can later resolve to
127.0.0.1 or to the cloud's metadata service (DNS rebinding). So the dispatcher's connections resolve through
:class:`PinnedResolver`, which vets every address it hands to aiohttp and returns only the vetted ones: the
connection is made to exactly the address that was checked, with no second lookup, and TLS still verifies the
URL's own host name (the URL is not rewritten). IP literals never reach a resolver; :func:`vet_url` checks them
before the request.

Refused unless inside the subscription's ``allowed_network`` (an admin's escape for an internal receiver): every
address that is not global (private, loopback, link-local, unique-local, shared, reserved, unspecified) and every
multicast address. The metadata addresses are refused even inside an allowed network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
"""The cloud metadata services (AWS, GCP, Azure and others answer on the IPv4 one)."""

RESOLVE_TIMEOUT = 3.0


class Refused(OSError):
    """A target the dispatcher will not connect to; the message says why (shown in the delivery log)."""


def address_problem(address: Address, allowed: Network | None) -> str | None:
    """Why ``address`` may not be a webhook target, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return f"{address} is a cloud metadata address"
    if allowed is not None and address.version == allowed.version and address in allowed:
        return None
    for flag, what in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_private", "private"),
    ):
        if getattr(address, flag):
            return f"{address} is a {what} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def parse_network(text: str | None) -> Network | None:
    """An allowed network as an admin types it (``10.0.0.0/8``, ``127.0.0.1``); ValueError when malformed."""
    if text is None or not str(text).strip():
        return None
    return ipaddress.ip_network(str(text).strip(), strict=False)


def check_url(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; ValueError naming what is wrong otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("url: only http and https targets are allowed")
    if not parts.hostname:
        raise ValueError("url: a host is required")
    if parts.username or parts.password:
        raise ValueError("url: credentials in the URL are not allowed (the signature authenticates us)")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def literal(host: str) -> Address | None:
    """The address of an IP-literal host, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to now (Refused when it does not resolve)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
    except (OSError, TimeoutError, ValueError):  # ValueError: a label IDNA refuses, an embedded NUL
        raise Refused(f"{host} does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def vet_url(url: str, allowed: Network | None) -> None:
    """ValueError unless ``url`` is http(s) and every address its host resolves to now may be
    reached; what the API and the pages check before a subscription is saved. A host that does not resolve (yet)
    passes: the dispatcher's resolver vets whatever it resolves to at send time, and the log shows the failure."""
    host, port = check_url(url)
    address = literal(host)
    try:
        addresses = [address] if address is not None else await resolve(host, port)
    except Refused:
        return
    for address in addresses:
        problem = address_problem(address, allowed)
        if problem:
            raise ValueError(f"url: {host} refused: {problem}")


@dataclass(frozen=True)
class Policy:
    """What one subscription's connections may reach."""

    allowed: Network | None = None


class PinnedResolver(AbstractResolver):
    """Resolves with the system resolver and returns only the addresses the policy allows (Refused when none is):
    the connection is pinned to a vetted address."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The vetted addresses of ``host``."""
        try:
            found = await self._inner.resolve(host, port, family)
        except (OSError, ValueError):
            raise Refused(f"{host} does not resolve") from None
        vetted, problems = [], []
        for result in found:
            problem = address_problem(ipaddress.ip_address(result["host"].split("%")[0]), self.policy.allowed)
            if problem:
                problems.append(problem)
            else:
                vetted.append(result)
        if (
            problems
        ):  # one bad address among good ones is a rebinding attempt or a misconfiguration: refuse all
            raise Refused(f"{host} refused: {problems[0]}")
        return vetted

    async def close(self) -> None:
        """Nothing to release."""
        await self._inner.close()
