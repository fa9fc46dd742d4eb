"""Where webhooks may go: http(s) only; loopback, private, link-local, metadata and other non-public addresses
refused unless an admin allowed the network (the metadata addresses always); checked after DNS resolution."""

from __future__ import annotations

import ipaddress

import pytest

from leadline_crm.webhooks import safety


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("fc00::5", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a public"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    problem = safety.address_problem(ipaddress.ip_address(address), None)
    assert problem is not None
    assert why in problem


def test_public_addresses_pass() -> None:
    assert safety.address_problem(ipaddress.ip_address("93.184.215.14"), None) is None
    assert safety.address_problem(ipaddress.ip_address("2606:4700::1"), None) is None


def test_an_allowed_network_admits_its_addresses_only_and_never_metadata() -> None:
    allowed = safety.parse_network("127.0.0.0/8")
    assert safety.address_problem(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert safety.address_problem(ipaddress.ip_address("10.0.0.1"), allowed) is not None
    everything = safety.parse_network("169.254.0.0/16")
    assert "metadata" in (safety.address_problem(ipaddress.ip_address("169.254.169.254"), everything) or "")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///nohost",
        "https://u:p@example.com/",
    ],
)
def test_only_http_urls_without_credentials(url: str) -> None:
    with pytest.raises(ValueError, match="url"):
        safety.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9/hook",
        "http://[::1]/x",
    ],
)
async def test_vetting_refuses_loopback_and_metadata_even_by_name(url: str) -> None:
    with pytest.raises(ValueError, match="refused"):
        await safety.vet_url(url, None)


async def test_vetting_admits_loopback_inside_an_allowed_network() -> None:
    await safety.vet_url("http://127.0.0.1:9/hook", safety.parse_network("127.0.0.0/8"))


async def test_the_pinned_resolver_refuses_what_resolves_to_loopback() -> None:
    resolver = safety.PinnedResolver(safety.Policy(None))
    with pytest.raises(safety.Refused, match="loopback"):
        await resolver.resolve("localhost", 80)
    allowed = safety.PinnedResolver(safety.Policy(safety.parse_network("127.0.0.0/8")))
    hosts = await allowed.resolve("localhost", 80)
    assert hosts
    assert all(ipaddress.ip_address(h["host"]).is_loopback for h in hosts)


async def test_a_host_that_does_not_resolve_yet_is_accepted_and_vetted_at_send_time() -> None:
    await safety.vet_url("https://no-such-host.invalid/hook", None)
    resolver = safety.PinnedResolver(safety.Policy(None))
    with pytest.raises(safety.Refused, match="does not resolve"):
        await resolver.resolve("no-such-host.invalid", 443)


class _Answers:
    """A stand-in for the system resolver (a unit test: what DNS says is the input)."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, object]]:
        return [
            {"hostname": host, "host": h, "port": port, "family": family, "proto": 0, "flags": 0}
            for h in self.hosts
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_pins_what_it_vetted_and_refuses_a_rebinding_answer() -> None:
    """DNS answering a public address is passed through as the only address to connect to; an answer that slips
    a loopback or metadata address in beside a public one is refused as a whole."""
    resolver = safety.PinnedResolver(safety.Policy(None))
    resolver._inner = _Answers("93.184.215.14")  # type: ignore[assignment]
    assert [h["host"] for h in await resolver.resolve("hooks.example.com", 443)] == ["93.184.215.14"]
    for bad in ("127.0.0.1", "169.254.169.254", "10.0.0.7"):
        resolver._inner = _Answers("93.184.215.14", bad)  # type: ignore[assignment]
        with pytest.raises(safety.Refused, match="refused"):
            await resolver.resolve("hooks.example.com", 443)
