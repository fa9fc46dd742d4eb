"""Collector fixtures: the real app on a test server, wired to this test's topics and its own spool, or (the
``memory_`` fixtures) to an in-memory sink and site configuration, so route tests need no broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.memory_sink import MemorySink, sites_in_memory
from leadline_collector.app import create_app
from leadline_collector.fastpath import FastRunner
from leadline_collector.settings import CollectorSettings
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_shared import config, kafka
from sites import AD, DEMO_FORM, LINK_KEYS, SOURCE, publish_config

MakeClient = Callable[..., Awaitable[TestClient]]


class CollectorTestServer(TestServer):
    """A test server that listens the way ``leadline collector`` does: connections start on the fast path."""

    async def _make_runner(self, **kwargs: Any) -> FastRunner:
        return FastRunner(self.app, **kwargs)


@pytest.fixture
def collector_env(kafka_bootstrap: str, topics: kafka.Topics, run_id: str, tmp_path: Path) -> dict[str, str]:
    """The environment a collector under test reads: this test's topics, spool and link keys."""
    return {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "LEADLINE_COLLECTOR_PATH_PREFIX": "/ll",
        "LEADLINE_LINK_KEYS": LINK_KEYS,
    }


@pytest.fixture
async def started_clients() -> AsyncIterator[list[TestClient]]:
    """Collectors started by this test, closed after it (the last started first)."""
    clients: list[TestClient] = []
    yield clients
    for client in reversed(clients):
        try:  # a shutdown that hangs must fail loudly here, not stall the whole run until pytest-timeout
            await asyncio.wait_for(client.close(), 30)
        except TimeoutError:
            pytest.fail("the collector did not shut down within 30 s")


@pytest.fixture
async def make_client(collector_env: dict[str, str], started_clients: list[TestClient]) -> MakeClient:
    """Start collectors on the real broker with extra settings; all are closed after the test."""

    async def make(**overrides: str) -> TestClient:
        settings = config.load(CollectorSettings, collector_env | overrides)
        client = TestClient(CollectorTestServer(create_app(settings)))
        await client.start_server()
        started_clients.append(client)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    """A collector with default settings."""
    return await make_client()


@pytest.fixture
async def site(kafka_bootstrap: str, topics: kafka.Topics) -> kafka.Topics:
    """This test's config topic holds the demo form, an affiliate ad and a Segment write key."""
    await publish_config(kafka_bootstrap, topics.config, [DEMO_FORM, AD, SOURCE])
    return topics


@pytest.fixture
def memory_sink() -> MemorySink:
    """Where the ``memory_`` collectors of this test put their events."""
    return MemorySink()


@pytest.fixture
def memory_sites(tmp_path: Path) -> SiteConfigStore:
    """The demo form, the affiliate ad and the Segment write key, in memory (as ``site`` puts them on the topic)."""
    return sites_in_memory(tmp_path / "site-config.json", [DEMO_FORM, AD, SOURCE])


@pytest.fixture
async def make_memory_client(
    tmp_path: Path, memory_sink: MemorySink, memory_sites: SiteConfigStore, started_clients: list[TestClient]
) -> MakeClient:
    """Start collectors on ``memory_sink`` and ``memory_sites`` with extra settings: no Kafka connection at all."""
    env = {
        "LEADLINE_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # nothing listens here: the app must not need Kafka
        "LEADLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "LEADLINE_COLLECTOR_PATH_PREFIX": "/ll",
        "LEADLINE_LINK_KEYS": LINK_KEYS,
    }

    async def make(**overrides: str) -> TestClient:
        settings = config.load(CollectorSettings, env | overrides)
        app = create_app(settings, sink=memory_sink, sites=memory_sites)
        client = TestClient(CollectorTestServer(app))
        await client.start_server()
        started_clients.append(client)
        return client

    return make


@pytest.fixture
async def memory_client(make_memory_client: MakeClient) -> TestClient:
    """A collector with default settings on the in-memory sink and site configuration."""
    return await make_memory_client()
