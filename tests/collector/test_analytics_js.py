"""Segment's own browser SDK, analytics.js (``@segment/analytics-next``), pointed at the collector.

The SDK is the pinned npm release's UMD browser build, vendored by ``make vendor`` into ``assets/`` (sha256 in
``assets/SHA256SUMS``), so nothing is fetched from the internet. ``cdnSettings`` given to ``load`` stand in for
the settings the SDK would fetch from Segment's CDN; in them the ``Segment.io`` integration's ``apiHost`` and
``protocol`` send every call to the collector, as a site running analytics.js would configure it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from collector.browser import browser_page
from leadline_collector.httperrors import HTTP_METRICS
from leadline_shared import kafka
from leadline_shared.ids import scoped_event_id
from sites import SOURCE
from support import read_topic

ASSETS = Path(__file__).parent / "assets"
SDK = ASSETS / "analytics-next.umd.js"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PAGE = """<!doctype html>
<html><head><title>Shop</title><script src="/analytics-next.umd.js"></script></head>
<body><script>
  const writeKey = %(write_key)s;
  window.analytics = AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey,
      cdnSettings: {
        integrations: {"Segment.io": {apiKey: writeKey, apiHost: %(api_host)s, protocol: "http"}},
        metrics: {sampleRate: 0},
      },
    },
    {},
  );
</script></body></html>
"""

CALLS = """async () => {
  const sent = [];
  sent.push(await window.analytics.identify("u-42", {email: "Dee@Example.com", plan: "pro"}));
  sent.push(await window.analytics.track("Order Completed", {revenue: 42.5}));
  sent.push(await window.analytics.page("Pricing"));
  return sent.map((ctx) => ({type: ctx.event.type, messageId: ctx.event.messageId}));
}"""


def test_the_vendored_sdk_is_the_pinned_release() -> None:
    """The file the browser test loads is the one ``make vendor`` copied from the pinned tarball."""
    sums = dict(reversed(line.split("  ", 1)) for line in (ASSETS / "SHA256SUMS").read_text().splitlines())
    manifest = orjson.loads((ASSETS.parents[2] / "deploy" / "vendor" / "assets.json").read_bytes())
    [pkg] = [p for p in manifest["packages"] if p.get("target") == "tests/collector/assets"]
    assert set(sums) == set(pkg["files"].values())
    for name, digest in sums.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name


async def shop(api_host: str) -> TestServer:
    """The customer's site: another origin than the collector, serving a page that runs analytics.js."""

    async def page(request: web.Request) -> web.StreamResponse:
        html = PAGE % {
            "write_key": orjson.dumps(SOURCE.write_key).decode(),
            "api_host": orjson.dumps(api_host).decode(),
        }
        return web.Response(text=html, content_type="text/html")

    async def sdk(request: web.Request) -> web.StreamResponse:
        return web.Response(body=SDK.read_bytes(), content_type="application/javascript")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/analytics-next.umd.js", sdk)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_analytics_js_calls_arrive_as_raw_events(
    site: kafka.Topics, make_client: Callable[..., Awaitable[TestClient]], kafka_bootstrap: str
) -> None:
    """A site running the real analytics.js, pointed at Leadline, gets its identify, track and page calls into
    the raw topic: one-letter paths, text/plain, write key in the body, ids deduplicable per write key."""
    client = await make_client()
    collector = str(client.make_url("")).rstrip("/")
    api_host = collector.removeprefix("http://") + "/v1"
    server = await shop(api_host)
    page_url = str(server.make_url("/"))
    try:
        async with browser_page() as page:
            posts: list[tuple[str, str]] = []
            answers: list[int] = []
            requested: list[str] = []
            page.on(
                "request",
                lambda r: (
                    posts.append((r.url.removeprefix(collector), r.headers.get("content-type", "")))
                    if r.method == "POST" and r.url.startswith(collector)
                    else None
                ),
            )
            page.on("request", lambda r: requested.append(r.url))
            page.on("response", lambda r: answers.append(r.status) if r.url.startswith(collector) else None)
            await page.goto(page_url)
            sent = await page.evaluate(CALLS)
    finally:
        await server.close()
    assert [s["type"] for s in sent] == ["identify", "track", "page"]
    shop_origin = page_url.rstrip("/")
    assert all(u.startswith((collector, shop_origin)) for u in requested), (
        requested
    )  # nothing from the internet
    assert sorted(posts) == sorted(
        [("/v1/i", "text/plain"), ("/v1/t", "text/plain"), ("/v1/p", "text/plain")]
    )
    assert answers == [200, 200, 200]
    lean = client.app[HTTP_METRICS].fast_answers.tally  # all three answered on the lean path, not by aiohttp
    assert {route: lean[route] for route in ("identify", "track", "page")} == {
        "identify": 1,
        "track": 1,
        "page": 1,
    }
    events = {
        orjson.loads(v)["event_id"]: orjson.loads(v)
        for _, v, _ in await read_topic(kafka_bootstrap, site.raw, 3)
    }
    by_type = {e["type"]: e for e in events.values()}
    assert set(by_type) == {"identify", "track", "page_view"}
    for call in sent:  # analytics.js's ``ajs-next-…`` ids, scoped by write key: a retry is the same event
        assert scoped_event_id(SOURCE.write_key, call["messageId"]) in events
    identify, track, page_view = by_type["identify"], by_type["track"], by_type["page_view"]
    assert identify["ids"] == {"email": "dee@example.com", "user_id": "u-42"}
    assert identify["properties"]["traits"]["plan"] == "pro"
    assert track["properties"] == {"revenue": 42.5, "event": "Order Completed"}
    assert page_view["properties"]["name"] == "Pricing"
    assert all(e["source"] == "segment" and e["context"]["site"] == "Test site" for e in events.values())
    assert all(e["anon_id"] for e in events.values())
    assert page_view["context"]["url"] == page_url
    assert page_view["context"]["title"] == "Shop"
