"""IP addresses are kept only as precisely as the visitor's consent allows."""

from __future__ import annotations

from typing import Any

import pytest

from leadline_enricher.privacy import must_truncate, truncate_ip


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        (" 10.1.2.3 ", "10.1.2.0"),
        ("not-an-ip", None),
    ],
)
def test_ipv4_keeps_its_24_and_ipv6_its_48(ip: str, truncated: str | None) -> None:
    assert truncate_ip(ip) == truncated


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, False),
        ({"consent": {"dnt": False, "gpc": False}}, False),
        ({"consent": {"dnt": True}}, True),
        ({"consent": {"gpc": True}}, True),
        ({"consent": {"analytics": False}}, True),
        ({"consent": "yes"}, False),
    ],
)
def test_dnt_gpc_or_refused_analytics_truncate(context: dict[str, Any], expected: bool) -> None:
    assert must_truncate(context) is expected
