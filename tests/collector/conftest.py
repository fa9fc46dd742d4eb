"""Collector fixtures: the real app on a test server, wired to this test's topics and its own spool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_collector.app import create_app
from leadline_collector.fastpath import FastRunner
from leadline_collector.settings import CollectorSettings
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
async def make_client(collector_env: dict[str, str]) -> AsyncIterator[MakeClient]:
    """Start collectors with extra settings; all are closed after the test."""
    clients: list[TestClient] = []

    async def make(**overrides: str) -> TestClient:
        settings = config.load(CollectorSettings, collector_env | overrides)
        client = TestClient(CollectorTestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        try:  # a shutdown that hangs must fail loudly here, not stall the whole run until pytest-timeout
            await asyncio.wait_for(client.close(), 30)
        except TimeoutError:
            pytest.fail("the collector did not shut down within 30 s")


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    """A collector with default settings."""
    return await make_client()


@pytest.fixture
async def site(kafka_bootstrap: str, topics: kafka.Topics) -> kafka.Topics:
    """This test's config topic holds the demo form, an affiliate ad and a Segment write key."""
    await publish_config(kafka_bootstrap, topics.config, [DEMO_FORM, AD, SOURCE])
    return topics
