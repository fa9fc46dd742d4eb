"""Email opens and tracked links: signed tokens only, never an open redirect; affiliate ads land where configured."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_shared import kafka
from leadline_shared.signing import KeyRing
from sites import LINK_KEYS
from support import read_topic, topic_is_quiet

RING = KeyRing.parse(LINK_KEYS)
LINK = {
    "target": "https://www.shop.example/offer?a=1",
    "campaign_id": "c9",
    "send_id": "s9",
    "recipient_token": "r9",
}


@pytest.mark.integration
async def test_a_valid_link_redirects_to_its_target_and_records_the_click(
    client: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    resp = await client.get(f"/c/{RING.sign(LINK, ttl_seconds=3600)}", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == LINK["target"]
    assert "ll_vid" in resp.cookies
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.raw, 1)
    event = orjson.loads(value)
    assert (event["type"], event["source"]) == ("link_click", "link")
    assert event["link"] == LINK
    assert event["ids"] == {"recipient_token": "r9"}


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        KeyRing.parse("k1:" + "x" * 32).sign(LINK),  # right kid, wrong secret
        KeyRing.parse("k9:" + "s" * 32).sign(LINK),  # unknown key id
        RING.sign(LINK, ttl_seconds=-10),  # expired
        RING.sign({**LINK, "target": "javascript:alert(1)"}),  # not an http(s) target
    ],
)
async def test_forged_expired_or_unknown_links_get_404_and_never_redirect(
    memory_client: TestClient, memory_sink: MemorySink, token: str
) -> None:
    resp = await memory_client.get(f"/c/{token}", allow_redirects=False)
    assert resp.status == 404
    assert "Location" not in resp.headers
    assert "not valid" in await resp.text()
    assert memory_sink.events == []
    assert (
        'leadline_collector_rejected_total{endpoint="click",reason="invalid_token"} 1.0'
        in await (await memory_client.get("/metrics")).text()
    )


@pytest.mark.integration
async def test_email_open_pixel_records_the_open_and_head_requests_are_marked(
    client: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    token = RING.sign({k: v for k, v in LINK.items() if k != "target"})
    assert (await client.get(f"/ll/o/{token}.gif")).status == 200
    assert (await client.head(f"/o/{token}.gif")).status == 200
    bad = await client.get("/o/forged.gif")
    assert bad.status == 200  # an image must still render in the mail client …
    assert bad.headers["Content-Type"] == "image/gif"
    events = [orjson.loads(v) for _, v, _ in await read_topic(kafka_bootstrap, topics.raw, 2)]
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 2, wait=0.5) == 2  # … but records nothing
    assert {e["type"] for e in events} == {"email_open"}
    assert sorted(str(e["context"].get("method")) for e in events) == ["HEAD", "None"]
    assert all(e["link"] == {"campaign_id": "c9", "send_id": "s9", "recipient_token": "r9"} for e in events)


@pytest.mark.integration
async def test_affiliate_ad_redirects_only_to_the_configured_landing_url(
    site: kafka.Topics, make_client: object, kafka_bootstrap: str
) -> None:
    client = await make_client()  # type: ignore[operator]
    resp = await client.get(
        "/a/aff1/ad1",
        params={"sub": "banner7", "gclid": "g1", "url": "https://evil.example/"},
        allow_redirects=False,
    )
    assert resp.status == 302
    target = urlsplit(resp.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "www.shop.example", "/landing")
    query = parse_qs(target.query)
    assert query["x"] == ["1"]
    assert query["utm_source"] == ["aff1"]
    assert query["utm_medium"] == ["affiliate"]
    assert query["utm_campaign"] == ["ad1"]
    assert query["utm_content"] == ["banner7"]
    assert query["gclid"] == ["g1"]
    [(_, value, _)] = await read_topic(kafka_bootstrap, site.raw, 1)
    event = orjson.loads(value)
    assert event["type"] == "ad_click"
    assert event["affiliate"] == {"affiliate_id": "aff1", "ad_id": "ad1", "sub_id": "banner7"}
    assert query["ll_click"] == [event["event_id"]]

    unknown = await client.get("/a/aff1/nope", allow_redirects=False)
    assert unknown.status == 404
    assert "Location" not in unknown.headers
