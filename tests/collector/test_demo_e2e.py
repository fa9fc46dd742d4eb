"""The demo page on the real collector, in real headless Chromium: the snippet's page views, a tracked email
link, the custom-event button and the lead form all end up on capture.raw.v1 (the snippet's beacons as records,
read here as the enricher splits them), on one visitor."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.browser import browser_page
from leadline_collector.app import SITES
from leadline_crm.demo import demo_entries
from leadline_shared import kafka
from sites import publish_config
from support import read_events

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_demo_page_link_button_and_form_reach_the_raw_topic(
    make_client: object, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    client: TestClient = await make_client()  # type: ignore[operator]
    base = str(client.make_url("")).rstrip("/")
    await publish_config(kafka_bootstrap, topics.config, demo_entries(base))  # what `make up` seeds
    for _ in range(100):
        if client.app[SITES].form("demo") is not None:
            break
        await asyncio.sleep(0.05)

    async with browser_page() as page:
        await page.goto(f"{base}/demo")
        await page.click("#demo-button")
        await page.click("text=Tracked email link")
        await page.wait_for_url("**/demo?from=email")
        await page.fill("#demo-form [name=email]", "Visitor@Example.com")
        await page.fill("#demo-form [name=name]", "Vera Visitor")
        await page.click("#demo-form [type=submit]")
        await page.wait_for_url("**/demo?thanks=1")
        assert "Thanks" in await page.content()
        await page.goto("about:blank")  # pagehide: the snippet flushes what it still holds with sendBeacon

    events = [orjson.loads(v) for _, v, _ in await read_events(kafka_bootstrap, topics.raw, 6, timeout=20)]
    kinds = [(e["type"], e["source"]) for e in events]
    assert ("link_click", "link") in kinds
    assert ("form_submit", "form") in kinds
    assert ("track", "beacon") in kinds
    assert kinds.count(("page_view", "beacon")) >= 3  # /demo, /demo?from=email, /demo?thanks=1
    form = next(e for e in events if e["type"] == "form_submit")
    assert form["ids"]["email"] == "visitor@example.com"
    assert form["form"]["fields"]["name"] == "Vera Visitor"
    click = next(e for e in events if e["type"] == "link_click")
    assert click["link"]["campaign_id"] == "demo-campaign"
    track = next(e for e in events if e["type"] == "track")
    assert track["properties"] == {"color": "blue", "event": "demo_button"}
    assert len({e["anon_id"] for e in events}) == 1, "one visitor, one ll_vid cookie"
