"""The enricher service on the real broker and database: raw in, enriched out (exactly once), poison to the DLQ."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_enricher.app import create_app
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration


@pytest.fixture
async def enricher(
    kafka_bootstrap: str, pg_dsn: str, schema: str, topics: kafka.Topics, run_id: str
) -> AsyncIterator[TestClient]:
    settings = config.load(
        EnricherSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
            "LEADLINE_PG_DSN": pg_dsn,
            "LEADLINE_IDENTITY_SCHEMA": schema,
            "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
            "LEADLINE_INSTANCE_ID": "test",
        },
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
    finally:
        await producer.stop()


def raw(anon_id: str, **ids: str) -> RawEvent:
    return RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        anon_id=anon_id,
        ids=ids,
        context={"url": "https://shop.example/"},
    )


async def test_raw_events_come_out_enriched_once_each_keyed_by_person(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    events = [raw("v1"), raw("v1"), raw("v2"), raw("v1", email="a@example.com")]
    await produce(kafka_bootstrap, topics.raw, [(e.key(), e.to_json()) for e in events])
    out = [
        (k, EnrichedEvent.from_json(v)) for k, v, _ in await read_topic(kafka_bootstrap, topics.enriched, 4)
    ]
    assert sorted(e.event_id for _, e in out) == sorted(e.event_id for e in events)
    by_anon = {e.anon_id: e.person_id for _, e in out}
    assert all(k == e.person_id.encode() for k, e in out)
    assert len({e.person_id for _, e in out if e.anon_id == "v1"}) == 1
    assert by_anon["v1"] != by_anon["v2"]
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, 4) == 4
    assert (await enricher.get("/readyz")).status == 200


async def test_poison_message_goes_to_the_dlq_and_the_partition_moves_on(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    good = raw("v9")
    bad = orjson.dumps({"event_id": "x", "type": "explode", "source": "pixel", "received_at": utc_now_iso()})
    await produce(kafka_bootstrap, topics.raw, [(b"v9", b"{not json"), (b"v9", bad), (b"v9", good.to_json())])
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.enriched, 1)
    assert EnrichedEvent.from_json(value).event_id == good.event_id
    dead = await read_topic(kafka_bootstrap, topics.dlq, 2)
    assert [v for _, v, _ in dead] == [b"{not json", bad]
    headers = dead[1][2]
    assert headers["stage"] == b"decode"
    assert headers["service"] == b"enricher"
    assert b"unknown event type" in headers["reason"]
    metrics = await (await enricher.get("/metrics")).text()
    assert 'leadline_enricher_dead_letters_total{reason="invalid"} 2.0' in metrics
