"""The ad impression pixel ``/a/{affiliate}/{ad}/i.gif`` (issue 13): a GIF, never a cookie, an ``ad_impression``
without any identifier; the same event on the fast path as on the aiohttp route; unknown ads counted, not sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_collector.hits import GIF
from leadline_shared import kafka
from support import read_topic

MakeClient = Callable[..., Awaitable[TestClient]]
HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
    "Referer": "https://blog.partner.example/post",
}


@pytest.mark.integration
async def test_an_impression_answers_a_gif_without_a_cookie_and_publishes_an_ad_impression(
    site: kafka.Topics, make_client: MakeClient, kafka_bootstrap: str
) -> None:
    client = await make_client()
    resp = await client.get("/a/aff1/ad1/i.gif?sub=banner7", headers=HEADERS)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/gif"
    assert await resp.read() == GIF
    assert "Set-Cookie" not in resp.headers
    [(_, value, _)] = await read_topic(kafka_bootstrap, site.raw, 1)
    event = orjson.loads(value)
    assert event["type"] == "ad_impression"
    assert event["source"] == "affiliate"
    assert event["affiliate"] == {"affiliate_id": "aff1", "ad_id": "ad1", "sub_id": "banner7"}
    assert "anon_id" not in event or event["anon_id"] is None
    assert not event.get("ids")
    assert event["context"]["referrer"] == "https://blog.partner.example/post"


async def test_the_fast_path_and_aiohttp_record_the_same_impression(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    lean = await make_memory_client()
    plain = await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH="false")
    answers = [await c.get("/ll/a/aff1/ad1/i.gif", headers=HEADERS) for c in (lean, plain)]
    assert "Server" not in answers[0].headers  # the fast path answered
    assert "Server" in answers[1].headers  # aiohttp answered
    for resp in answers:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/gif"
        assert resp.headers["Cache-Control"] == "no-store, max-age=0"
        assert await resp.read() == GIF
        assert "Set-Cookie" not in resp.headers
    docs = [orjson.loads(e.to_json()) for e in memory_sink.events]
    assert len(docs) == 2
    for doc in docs:
        doc.pop("event_id")
        doc.pop("received_at")
    assert docs[0] == docs[1]
    assert docs[0]["type"] == "ad_impression"
    assert "anon_id" not in docs[0] or docs[0]["anon_id"] is None


@pytest.mark.parametrize("fast_path", ["true", "false"])
async def test_an_unknown_ad_still_gets_the_gif_but_is_counted_and_not_published(
    make_memory_client: MakeClient, memory_sink: MemorySink, fast_path: str
) -> None:
    client = await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH=fast_path)
    resp = await client.get("/a/aff1/nope/i.gif", headers=HEADERS)
    assert resp.status == 200
    assert await resp.read() == GIF
    assert "Set-Cookie" not in resp.headers
    assert memory_sink.events == []
    metrics = await (await client.get("/metrics")).text()
    assert 'leadline_collector_rejected_total{endpoint="impression",reason="unknown_ad"} 1.0' in metrics


async def test_a_visitor_cookie_sent_along_is_not_put_on_the_impression(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    resp = await memory_client.get(
        "/a/aff1/ad1/i.gif", headers={**HEADERS, "Cookie": "ll_vid=0b7c4a58-9d3e-4e65-a0a7-1f2d3c4b5a69"}
    )
    assert resp.status == 200
    assert "Set-Cookie" not in resp.headers
    [event] = memory_sink.events
    assert event.anon_id is None
    assert event.ids == {}
