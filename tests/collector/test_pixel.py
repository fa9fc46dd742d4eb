"""The tracking pixel: a GIF and a visitor cookie for the browser, a page_view on capture.raw.v1."""

from __future__ import annotations

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_collector.hits import GIF
from leadline_shared import kafka
from leadline_shared.events import RawEvent
from support import read_topic


@pytest.mark.integration
async def test_pixel_answers_a_gif_sets_the_cookie_and_publishes_a_page_view(
    client: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    url = "https://shop.example/pricing?utm_source=news&utm_campaign=fall&gclid=abc"
    resp = await client.get(
        "/p.gif",
        params={"url": url, "ref": "https://www.google.com/", "title": "Pricing"},
        headers={"User-Agent": "Mozilla/5.0 test"},
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/gif"
    assert "no-store" in resp.headers["Cache-Control"]
    assert await resp.read() == GIF
    cookie = resp.cookies["ll_vid"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"

    [(key, value, _)] = await read_topic(kafka_bootstrap, topics.raw, 1)
    event = RawEvent.from_json(value)
    assert key == cookie.value.encode()
    assert (event.type, event.source, event.anon_id) == ("page_view", "pixel", cookie.value)
    assert event.context["url"] == url
    assert event.context["title"] == "Pricing"
    assert event.context["campaign"] == {"source": "news", "name": "fall"}
    assert event.context["click_ids"] == {"gclid": "abc"}
    assert event.context["user_agent"] == "Mozilla/5.0 test"


async def test_returning_visitor_keeps_its_id_and_custom_events_carry_properties(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    vid = "0190b3f0-7c1e-7cc2-9a57-1f1e1a2b3c4d"
    resp = await memory_client.get(
        "/ll/p.gif", params={"e": "video_play", "video": "intro"}, cookies={"ll_vid": vid}
    )
    assert resp.status == 200
    [(_, value)] = memory_sink.records()
    event = RawEvent.from_json(value)
    assert (event.type, event.anon_id) == ("track", vid)
    assert event.properties == {"video": "intro", "event": "video_play"}


async def test_do_not_track_gets_no_cookie_and_no_visitor_id(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    resp = await memory_client.get(
        "/p.gif", params={"url": "https://shop.example/"}, headers={"Sec-GPC": "1"}
    )
    assert resp.status == 200
    assert "ll_vid" not in resp.cookies
    [(_, value)] = memory_sink.records()
    event = orjson.loads(value)
    assert "anon_id" not in event
    assert event["context"]["consent"] == {"dnt": False, "gpc": True}


async def test_ops_endpoints(memory_client: TestClient) -> None:
    assert (await memory_client.get("/healthz")).status == 200
    ready = await memory_client.get("/readyz")
    assert ready.status == 200, await ready.text()
    await memory_client.get("/p.gif")
    metrics = await (await memory_client.get("/metrics")).text()
    assert 'leadline_collector_events_total{source="pixel",type="page_view"} 1.0' in metrics
