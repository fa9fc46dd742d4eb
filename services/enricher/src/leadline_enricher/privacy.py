"""IP addresses kept only as precisely as the visitor's consent allows."""

from __future__ import annotations

import ipaddress
from typing import Any


def must_truncate(context: dict[str, Any]) -> bool:
    """Do Not Track, Global Privacy Control or a refused analytics consent: keep only the network."""
    consent = context.get("consent")
    if not isinstance(consent, dict):
        return False
    return bool(consent.get("dnt") or consent.get("gpc") or consent.get("analytics") is False)


def truncate_ip(ip: str) -> str | None:
    """IPv4 to its /24, IPv6 to its /48 (the network address); None when it is not an address."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)
