"""The client address an event stores and the form rate limit counts: X-Forwarded-For only from trusted proxies.

Any client can send an X-Forwarded-For header. Believed from anyone, it would let a client store whatever address
it likes and post forms past the per-IP limit by naming a new address on every post. So the header is read only
when the peer is a proxy listed in ``LEADLINE_TRUSTED_PROXIES``, and then from the right: the first hop that is
not a trusted proxy is the client (the hops left of it are whatever that client wrote).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_collector.context import forwarded_client, proxy_networks
from leadline_collector.settings import CollectorSettings
from leadline_shared import config

MakeClient = Callable[..., Awaitable[TestClient]]
ORIGIN = {"Origin": "https://www.shop.example"}
PROXIES = proxy_networks(("127.0.0.0/8", "10.0.0.0/8", "2001:db8:ffff::/48"))


async def pixel_ips(make_client: MakeClient, sink: MemorySink, xff: str, **settings: str) -> list[str]:
    """The IP stored for one pixel hit with this X-Forwarded-For, on the fast path and on aiohttp's route."""
    for fast in ("true", "false"):
        client = await make_client(LEADLINE_COLLECTOR_FAST_PATH=fast, **settings)
        resp = await client.get("/p.gif", headers={"X-Forwarded-For": xff})
        assert resp.status == 200
        assert ("Server" in resp.headers) == (fast == "false")  # who answered: the fast path has no Server
    return [event.context["ip"] for event in sink.events]


async def test_a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored_on_both_paths(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    ips = await pixel_ips(make_memory_client, memory_sink, "203.0.113.9")
    assert ips == ["127.0.0.1", "127.0.0.1"]


async def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client_on_both_paths(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    xff = "6.6.6.6, 198.51.100.7, 10.0.0.1"  # forged by the client, the client, an inner proxy
    ips = await pixel_ips(
        make_memory_client, memory_sink, xff, LEADLINE_TRUSTED_PROXIES="127.0.0.0/8, 10.0.0.0/8"
    )
    assert ips == ["198.51.100.7", "198.51.100.7"]


async def post_forms(client: TestClient, forwarded_for: list[str]) -> list[int]:
    statuses = []
    for i, xff in enumerate(forwarded_for):
        headers = ORIGIN | {"X-Forwarded-For": xff}
        resp = await client.post("/f/demo", json={"email": f"r{i}@example.com"}, headers=headers)
        statuses.append(resp.status)
    return statuses


async def test_a_forged_x_forwarded_for_does_not_escape_the_per_ip_form_rate_limit(
    make_memory_client: MakeClient,
) -> None:
    client = await make_memory_client(LEADLINE_FORM_RATE_PER_IP="1")  # bursts of 2
    assert await post_forms(client, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [200, 200, 429]


async def test_behind_a_trusted_proxy_each_client_has_its_own_form_rate_limit(
    make_memory_client: MakeClient,
) -> None:
    client = await make_memory_client(LEADLINE_FORM_RATE_PER_IP="1", LEADLINE_TRUSTED_PROXIES="127.0.0.1/32")
    assert await post_forms(client, ["203.0.113.1"] * 3 + ["203.0.113.2"]) == [200, 200, 429, 200]
    # the client cannot step out of its bucket by prepending hops: the proxy appends the real one
    assert await post_forms(client, ["198.51.100.1, 203.0.113.1"]) == [429]


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("198.51.100.1", "203.0.113.9", "198.51.100.1"),  # not our proxy: its header is only a claim
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.2", " 1.1.1.1 ,203.0.113.9 , 10.9.9.9", "203.0.113.9"),
        ("10.0.0.2", "10.1.1.1, 10.2.2.2", "10.1.1.1"),  # every hop ours: the client is inside
        ("10.0.0.2", "203.0.113.9:51234", "203.0.113.9"),  # some balancers add the port
        ("10.0.0.2", "[2001:db8::7]:443, 10.0.0.3", "2001:db8::7"),
        ("10.0.0.2", "2001:DB8::7", "2001:db8::7"),
        ("10.0.0.2", "unknown, 10.0.0.3", "10.0.0.3"),  # not an address: the nearest hop we can vouch for
        ("::ffff:10.0.0.2", "203.0.113.9", "203.0.113.9"),  # a dual-stack socket's view of an IPv4 proxy
        ("2001:db8:ffff::1", "203.0.113.9", "203.0.113.9"),
        (None, "203.0.113.9", None),
    ],
)
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    peer: str | None, header: str | None, client: str | None
) -> None:
    assert forwarded_client(peer, header, PROXIES) == client


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "proxy.internal", "10.0.0.1/8"])
def test_a_trusted_proxy_that_is_not_a_network_stops_the_collector_at_start(bad: str) -> None:
    with pytest.raises(config.ConfigError, match=r"LEADLINE_TRUSTED_PROXIES.*" + bad.replace(".", r"\.")):
        config.load(CollectorSettings, {"LEADLINE_TRUSTED_PROXIES": f"10.0.0.0/8,{bad}"})


def test_trusted_proxies_are_read_as_networks_and_none_by_default() -> None:
    assert config.load(CollectorSettings, {}).trusted_proxies == ()
    settings = config.load(CollectorSettings, {"LEADLINE_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32"})
    assert [str(n) for n in proxy_networks(settings.trusted_proxies)] == ["10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.parametrize(("name", "kb"), [("LEADLINE_BATCH_MAX_KB", "2048"), ("LEADLINE_BODY_MAX_KB", "0")])
def test_a_body_cap_a_kafka_record_cannot_hold_stops_the_collector_at_start(name: str, kb: str) -> None:
    """A Segment batch or a beacon is stored as one Kafka record: a cap above what a record holds would have the
    collector accept bodies it then cannot publish."""
    with pytest.raises(config.ConfigError, match=rf"{name}={kb}: must be 1 to 900"):
        config.load(CollectorSettings, {name: kb})
