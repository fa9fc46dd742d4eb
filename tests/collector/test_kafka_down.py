"""With Kafka unreachable from the start, the collector still starts, knows its forms from its snapshot,
answers from the spool, and when the spool is full refuses forms with 503 + Retry-After instead of losing them."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient

from leadline_localstack import procs
from leadline_shared import siteconfig
from sites import AD, DEMO_FORM, SOURCE
from support import metric

pytestmark = pytest.mark.integration  # its fixtures create this test's topics on the real broker

ORIGIN = {"Origin": "https://www.shop.example"}


def snapshot(spool_dir: Path) -> None:
    """The config snapshot a collector that once reached Kafka left behind."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    doc = {e.entry_key(): orjson.loads(siteconfig.encode(e)[1]) for e in (DEMO_FORM, AD, SOURCE)}
    (spool_dir / "site-config.json").write_bytes(orjson.dumps(doc))


@pytest.fixture
def dead_kafka() -> str:
    return f"127.0.0.1:{procs.free_port()}"  # nothing listens there


async def test_starts_without_kafka_and_spools_forms_and_pixels(
    make_client: object, dead_kafka: str, tmp_path: Path
) -> None:
    spool = tmp_path / "down-spool"
    snapshot(spool)
    started = time.monotonic()
    client: TestClient = await make_client(  # type: ignore[operator]
        LEADLINE_KAFKA_BOOTSTRAP=dead_kafka, LEADLINE_SPOOL_DIR=str(spool), LEADLINE_PUBLISH_TIMEOUT="0.5"
    )
    # with its configuration on disk it answers at once, not after waiting 5 s for the topic (issue 17)
    assert time.monotonic() - started < 2.5
    resp = await client.post("/f/demo", json={"email": "down@example.com"}, headers=ORIGIN)
    assert resp.status == 200, await resp.text()
    assert (await client.get("/p.gif")).status == 200
    assert await metric(client, "leadline_collector_kafka_up") == 0
    assert await metric(client, "leadline_collector_spooled_total") == 2
    assert list((spool / "events").glob("*.seg"))
    assert (await client.get("/readyz")).status == 200


async def test_a_full_spool_refuses_forms_with_retry_after_and_counts_pixel_drops(
    make_client: object, dead_kafka: str, tmp_path: Path
) -> None:
    spool = tmp_path / "full-spool"
    snapshot(spool)
    client: TestClient = await make_client(  # type: ignore[operator]
        LEADLINE_KAFKA_BOOTSTRAP=dead_kafka,
        LEADLINE_SPOOL_DIR=str(spool),
        LEADLINE_PUBLISH_TIMEOUT="0.5",
        LEADLINE_SPOOL_MAX_MB="0.004",
    )
    statuses = [
        (
            await client.post(
                "/f/demo", json={"email": f"f{i}@example.com", "message": "x" * 300}, headers=ORIGIN
            )
        ).status
        for i in range(12)
    ]
    assert 200 in statuses
    assert statuses[-1] == 503
    refused = await client.post("/f/demo", json={"email": "late@example.com"}, headers=ORIGIN)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "30"
    for _ in range(20):  # pixels still answer when the spool is full …
        assert (await client.get("/p.gif")).status == 200
    text = await (await client.get("/metrics")).text()
    assert 'leadline_collector_dropped_total{source="pixel"}' in text  # … and their drops are counted
    assert (
        await client.get("/readyz")
    ).status == 503  # full: the load balancer should send traffic elsewhere
