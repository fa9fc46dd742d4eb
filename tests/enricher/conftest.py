"""Fixtures shared by the enricher's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from leadline_enricher.app import MIGRATIONS
from leadline_localstack import procs, services
from leadline_shared import kafka, pg


@pytest.fixture
async def pool(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's freshly migrated identity schema (the graph's tables)."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    p = await pg.create_pool(pg_dsn, schema, max_size=4)
    yield p
    await p.close()


@pytest.fixture
def process_env(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics
) -> dict[str, str]:
    """The environment of an enricher run as its own process on this test's topics and schema (to be killed)."""
    return services.service_env(
        kafka_bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"test-{run_id}.",
        LEADLINE_IDENTITY_SCHEMA=schema,
        LEADLINE_ENRICHER_GROUP=f"enricher-{run_id}",
        LEADLINE_INSTANCE_ID=f"crash-{run_id}",
        LEADLINE_ENRICHER_PORT=str(procs.free_port()),
        LEADLINE_ENRICHER_BATCH_MAX="50",  # many small transactions, so the kill lands inside one
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """Where that process keeps its pid and log; it is stopped after the test."""
    yield tmp_path
    services.stop_service(tmp_path, "enricher")
