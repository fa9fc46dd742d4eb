"""The enricher and crm-core running in the test's process on its own topics and schemas (tests/crm_pipeline.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crm_pipeline import Pipeline, run_pipeline
from leadline_shared import kafka


@pytest.fixture
async def pipeline(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics
) -> AsyncIterator[Pipeline]:
    """``topics`` creates this test's topics first and deletes them afterwards."""
    async with run_pipeline(kafka_bootstrap, pg_dsn, schema, run_id) as p:
        yield p
