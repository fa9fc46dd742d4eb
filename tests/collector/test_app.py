"""``create_app`` with a sink and a site configuration of its own: how the route tests run without a broker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_collector.app import SINK, SITES
from leadline_collector.siteconfig_store import SiteConfigStore

MakeClient = Callable[..., Awaitable[TestClient]]


async def test_a_sink_given_to_the_app_takes_the_events_and_is_started_and_stopped_with_it(
    make_memory_client: MakeClient, memory_sink: MemorySink, memory_sites: SiteConfigStore
) -> None:
    client = await make_memory_client()
    assert memory_sink.started
    assert (client.app[SINK], client.app[SITES]) == (memory_sink, memory_sites)
    assert (await client.get("/p.gif", params={"e": "signup"})).status == 200
    assert [(e.type, e.source) for e in memory_sink.events] == [("track", "pixel")]
    await client.close()
    assert memory_sink.stopped
    assert not memory_sites.caught_up.is_set()  # a store given to the app is used as it is, never followed


async def test_readyz_turns_503_while_the_sink_cannot_take_events(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    """The load balancer stops sending traffic to a collector whose sink refuses events."""
    assert (await memory_client.get("/readyz")).status == 200
    memory_sink.healthy = False
    assert (await memory_client.get("/readyz")).status == 503
    memory_sink.healthy = True
    assert (await memory_client.get("/readyz")).status == 200


@pytest.mark.parametrize("fast_path", ["true", "false"])
async def test_a_pixel_is_still_answered_when_the_sink_refuses_and_the_drop_is_counted(
    make_memory_client: MakeClient, memory_sink: MemorySink, fast_path: str
) -> None:
    """Pixels never wait and never fail the page: a full spool costs the event, counted, not the answer."""
    client = await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH=fast_path)
    memory_sink.unavailable = True
    resp = await client.get("/p.gif")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/gif"
    assert memory_sink.events == []
    metrics = await (await client.get("/metrics")).text()
    assert 'leadline_collector_dropped_total{source="pixel"} 1.0' in metrics
