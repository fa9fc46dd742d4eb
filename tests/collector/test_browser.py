"""The capture snippet ``s.js`` in real headless Chromium: what it puts on the wire, and when.

The collector side here is ``SnippetWireRecorder``, a small aiohttp app local to this module that serves the
snippet (through the real ``snippet.response``), the demo page and test pages, and records every ``POST /e``
body exactly as the browser sent it. It checks the snippet's behaviour and wire format; the collector's own
``/e`` route and the path to Kafka are tested by the collector's integration tests.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from collector.browser import browser_page, host_rules, launch_browser, new_page
from leadline_collector.demo import render_demo
from leadline_collector.snippet import load_snippet, response

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
EVENT_KEYS = {"id", "type", "props", "url", "ref", "title", "ts", "consent"}
STUB = "window.leadline=window.leadline||function(){(leadline.q=leadline.q||[]).push(arguments)};"
SNIPPET = load_snippet()

# One Chromium for the module (a fresh context per test): the event loop must live as long as the browser.
# A stuck browser call fails its test (with the stacks) instead of stalling the suite.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(30)]


@dataclass
class Post:
    """One ``POST /e`` as received: how it was sent, what it carried, what it was answered."""

    content_type: str
    body: dict[str, Any]
    cookie: str | None
    status: int
    at: float
    size: int

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.body["batch"])


@dataclass
class SnippetWireRecorder:
    """A stand-in collector recording the snippet's wire format; ``fail_next`` answers the next posts with errors."""

    base: str = ""
    posts: list[Post] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    form_posts: list[dict[str, str]] = field(default_factory=list)
    preflights: int = 0

    def events(self, **match: Any) -> list[dict[str, Any]]:
        """Every event received so far (also those answered with an error), optionally filtered by fields."""
        out = [e for p in self.posts for e in p.events]
        return [e for e in out if all(e.get(k) == v for k, v in match.items())]

    async def wait_for(self, check: Callable[[], Any], timeout: float = 6.0) -> Any:
        """Poll until ``check()`` is truthy; its value is returned."""
        deadline = time.monotonic() + timeout
        while not (result := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events()}")
            await asyncio.sleep(0.02)
        return result

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.app_max_size())
        app.router.add_get("/s.js", self.script)
        app.router.add_get("/demo", self.demo)
        app.router.add_get("/page/{name:.+}", self.page)
        app.router.add_route("*", "/elsewhere", self.elsewhere)
        app.router.add_post("/e", self.collect)
        app.router.add_route("OPTIONS", "/e", self.preflight)
        app.router.add_post("/f/demo", self.form)
        return app

    async def script(self, request: web.Request) -> web.StreamResponse:
        return response(request, SNIPPET)

    async def demo(self, request: web.Request) -> web.StreamResponse:
        links = [("Pricing <b>page</b>", "/elsewhere?from=demo")]
        html = render_demo("", links, thanks=request.query.get("thanks") == "1")
        return web.Response(text=html, content_type="text/html")

    async def page(self, request: web.Request) -> web.StreamResponse:
        html = self.pages.get(request.match_info["name"].split("/")[0])
        if html is None:
            raise web.HTTPNotFound()
        return web.Response(text=html, content_type="text/html")

    async def elsewhere(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text="<!doctype html><title>Elsewhere</title><p>landed</p>", content_type="text/html"
        )

    def _cors(self, request: web.Request, resp: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            resp.headers["Vary"] = "Origin"

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        self.preflights += 1
        resp = web.Response(status=204)
        self._cors(request, resp)
        resp.headers["Access-Control-Allow-Methods"] = "POST"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
        return resp

    def app_max_size(self) -> int:
        return 4 * 1024 * 1024

    async def collect(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        status = self.fail_next.pop(0) if self.fail_next else 200
        self.posts.append(
            Post(
                request.content_type, body, request.cookies.get("ll_vid"), status, time.monotonic(), len(raw)
            )
        )
        resp = web.json_response({"accepted": len(body["batch"])}, status=status)
        opted_out = any(e["consent"]["dnt"] or e["consent"]["gpc"] for e in body["batch"])
        if status == 200 and not opted_out and "ll_vid" not in request.cookies:
            resp.set_cookie("ll_vid", str(uuid.uuid4()), httponly=True, samesite="Lax", path="/")
        self._cors(request, resp)
        return resp

    async def form(self, request: web.Request) -> web.StreamResponse:
        self.form_posts.append({k: str(v) for k, v in (await request.post()).items()})
        raise web.HTTPSeeOther("/demo?thanks=1")


def page_html(title: str, *, src: str = "/s.js", attrs: str = "", head: str = "", body: str = "") -> str:
    """A site page embedding the snippet with the one-tag install, after the queue stub."""
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        f"<script>{STUB}</script>{head}<script async src='{src}' {attrs}></script></head>"
        f"<body>{body}</body></html>"
    )


@pytest_asyncio.fixture(loop_scope="module")
async def recorder() -> AsyncIterator[SnippetWireRecorder]:
    rec = SnippetWireRecorder()
    async with TestServer(rec.app(), host="127.0.0.1") as server:
        rec.base = str(server.make_url("")).rstrip("/")
        yield rec


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launch_browser() as b:
        yield b


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with new_page(browser) as p:
        yield p


async def test_page_view_on_load_has_the_documented_wire_format(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """One tag on a page → a page_view POSTed as JSON to {endpoint}/e, and the server's cookie is kept."""
    recorder.pages["home"] = page_html("Home")
    url = f"{recorder.base}/page/home?utm_source=news"
    await page.goto(url, referer="https://www.google.com/")
    [post] = await recorder.wait_for(lambda: recorder.posts)
    assert post.content_type == "application/json"
    assert set(post.body) == {"sent_at", "batch"}
    datetime.fromisoformat(post.body["sent_at"])
    [event] = post.events
    assert set(event) == EVENT_KEYS
    assert UUID4.match(event["id"])
    assert (event["type"], event["url"], event["title"], event["props"]) == ("page_view", url, "Home", {})
    assert event["ref"] == "https://www.google.com/"
    assert datetime.fromisoformat(event["ts"]) <= datetime.fromisoformat(post.body["sent_at"])
    assert event["consent"] == {"analytics": True, "marketing": False, "dnt": False, "gpc": False}
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "ll_vid"]
    assert cookie["httpOnly"]
    assert "ll_vid" not in await page.evaluate("document.cookie")


async def test_calls_queued_before_load_and_after_are_batched_within_one_second(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """Early calls go out with the page view in one POST; a lone event waits ~1 s; ten go out at once."""
    early = "leadline('track','early',{plan:'pro',n:2});leadline('identify',{email:'ann@example.com',user_id:42});"
    recorder.pages["batch"] = page_html("Batch", head=f"<script>{early}</script>")
    await page.goto(f"{recorder.base}/page/batch")
    [first] = await recorder.wait_for(lambda: recorder.posts)
    assert [e["type"] for e in first.events] == ["page_view", "track", "identify"]
    track, identify = first.events[1:]
    assert (track["name"], track["props"]) == ("early", {"plan": "pro", "n": 2})
    assert "traits" not in track
    assert identify["traits"] == {"email": "ann@example.com", "user_id": 42}
    assert len({e["id"] for e in first.events}) == 3

    start = time.monotonic()
    await page.evaluate("leadline('track','alone')")
    post = await recorder.wait_for(lambda: recorder.posts[1:2])
    assert [e["name"] for e in post[0].events] == ["alone"]
    assert 0.8 <= post[0].at - start <= 2.5

    start = time.monotonic()
    await page.evaluate("for (let i = 0; i < 10; i++) leadline('track', 'burst', {i})")
    post = await recorder.wait_for(lambda: recorder.posts[2:3])
    assert [e["props"]["i"] for e in post[0].events] == list(range(10))
    assert post[0].at - start < 0.6


async def test_large_batches_are_split_under_the_collectors_body_cap(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """The collector refuses bodies over 64 KB (and the snippet drops a batch refused with a 4xx), so the
    snippet splits by size and by count (50): nothing is lost, no POST is too big."""
    recorder.pages["big"] = page_html("Big")
    await page.goto(f"{recorder.base}/page/big")
    await recorder.wait_for(lambda: recorder.posts)
    await page.evaluate(
        "const p = {}; for (let k = 0; k < 20; k++) p['k' + k] = 'x'.repeat(1000);"
        "for (let i = 0; i < 3; i++) leadline('track', 'big', Object.assign({i}, p));"
        "for (let i = 0; i < 60; i++) leadline('track', 'small', {i});"
    )
    await recorder.wait_for(lambda: len(recorder.events(name="small")) == 60)
    assert sorted(e["props"]["i"] for e in recorder.events(name="big")) == [0, 1, 2]
    assert len(recorder.events(name="big")[0]["props"]["k0"]) == 1000
    later = recorder.posts[1:]
    assert len(later) >= 3
    assert all(p.size < 60_000 and len(p.events) <= 50 for p in later)
    assert [e["props"]["i"] for e in recorder.events(name="small")] == list(range(60))
    ids = [e["id"] for e in recorder.events()]
    assert len(ids) == len(set(ids)) == 64


async def test_nothing_is_sent_until_analytics_consent_when_the_site_requires_it(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """data-require-consent="true": events wait in memory for consent, are sent once given, and consent
    persists across page loads; withdrawing it stops sending."""
    recorder.pages["gated"] = page_html("Gated", attrs='data-require-consent="true"')
    await page.goto(f"{recorder.base}/page/gated")
    await page.wait_for_function("window.leadline && window.leadline.loaded")
    await page.evaluate("leadline('track','before_consent')")
    await asyncio.sleep(1.2)
    assert recorder.posts == []
    assert await page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('leadline:q:'))") == []

    await page.evaluate("leadline('consent', {analytics: true, marketing: true})")
    [post] = await recorder.wait_for(lambda: recorder.posts)
    assert [e["type"] for e in post.events] == ["page_view", "track"]
    assert all(e["consent"]["analytics"] and e["consent"]["marketing"] for e in post.events)

    await page.reload()
    await recorder.wait_for(lambda: len(recorder.events(type="page_view")) == 2)

    await page.evaluate("leadline('consent', {analytics: false}); leadline('track', 'after_withdrawal')")
    await asyncio.sleep(1.2)
    assert recorder.events(name="after_withdrawal") == []


@pytest.mark.parametrize(
    ("signal", "init"),
    [
        ("gpc", "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})"),
        ("dnt", "Object.defineProperty(navigator, 'doNotTrack', {get: () => '1'})"),
    ],
)
async def test_do_not_track_and_gpc_flag_events_and_keep_personal_data_out(
    recorder: SnippetWireRecorder, browser: Browser, signal: str, init: str
) -> None:
    """With DNT or GPC on: events carry the flag, identify calls send nothing, and a submitted form keeps
    only its non-personal fields (no email, name, or values that look like an email)."""
    form = (
        "<form id='quote' method='post' action='/elsewhere'>"
        "<input type='email' name='email' value='ann@example.com'><input name='name' value='Ann'>"
        "<input name='reach_me' value='ann@example.com'>"
        "<select name='plan'><option>free</option><option selected>pro</option></select>"
        "<textarea name='note'>call me tomorrow</textarea><button type='submit'>Go</button></form>"
    )
    recorder.pages["private"] = page_html("Private", body=form)
    async with new_page(browser, init_scripts=[init]) as page:
        await page.goto(f"{recorder.base}/page/private")
        await page.wait_for_function("window.leadline && window.leadline.loaded")
        await page.evaluate("leadline('identify', {email: 'ann@example.com'})")
        await page.click("button[type=submit]")
        [submitted] = await recorder.wait_for(lambda: recorder.events(type="form_submit"))
    assert submitted["form"] == {"id": "quote", "fields": {"plan": "pro", "note": "call me tomorrow"}}
    events = recorder.events()
    assert [e["type"] for e in events] == ["page_view", "form_submit"]
    assert all(e["consent"][signal] is True for e in events)
    assert b"ann@example.com" not in orjson.dumps([p.body for p in recorder.posts])


async def test_queued_events_go_out_with_send_beacon_when_the_page_is_left(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """An event still inside its batching window is not lost when the visitor navigates away."""
    recorder.pages["leave"] = page_html("Leave")
    await page.goto(f"{recorder.base}/page/leave")
    await recorder.wait_for(lambda: recorder.posts)
    await page.evaluate("leadline('track', 'leaving', {why: 'test'})")
    await page.goto(f"{recorder.base}/elsewhere")
    [post] = await recorder.wait_for(
        lambda: [p for p in recorder.posts if p.events[0].get("name") == "leaving"]
    )
    assert post.content_type == "text/plain"
    assert post.events[0]["props"] == {"why": "test"}


async def test_a_failed_post_is_retried_with_the_same_event_ids(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """A 503 from the collector is retried after a backoff; the client event id lets the server dedup."""
    recorder.fail_next = [503]
    recorder.pages["retry"] = page_html("Retry")
    await page.goto(f"{recorder.base}/page/retry")
    failed, retried = await recorder.wait_for(
        lambda: recorder.posts[:2] if len(recorder.posts) >= 2 else None
    )
    assert (failed.status, retried.status) == (503, 200)
    assert [e["id"] for e in failed.events] == [e["id"] for e in retried.events]
    assert retried.at - failed.at >= 0.8
    await asyncio.sleep(0.3)
    assert len(recorder.posts) == 2
    assert await page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('leadline:q:'))") == []


async def test_unsent_events_survive_navigation_in_local_storage_and_expire_after_a_day(
    recorder: SnippetWireRecorder, browser: Browser
) -> None:
    """Page A's post fails and the browser refuses the beacon: page B sends A's page view; a stored event
    older than 24 h is dropped instead."""
    stale = {"e": {"id": str(uuid.uuid4()), "type": "track", "name": "stale"}, "t": 0}
    init = (
        "if (location.pathname === '/page/a') navigator.sendBeacon = () => false;"
        "if (location.pathname === '/page/b') localStorage.setItem('leadline:q:old',"
        f" JSON.stringify([Object.assign({orjson.dumps(stale).decode()}, {{t: Date.now() - 25 * 3600e3}})]));"
    )
    recorder.pages["a"] = page_html("A")
    recorder.pages["b"] = page_html("B")
    recorder.fail_next = [503]
    async with new_page(browser, init_scripts=[init]) as page:
        await page.goto(f"{recorder.base}/page/a")
        [failed] = await recorder.wait_for(lambda: recorder.posts)
        [lost] = failed.events
        await page.goto(f"{recorder.base}/page/b")
        [resent] = await recorder.wait_for(lambda: [p for p in recorder.posts[1:] if len(p.events) == 2])
        assert await page.evaluate("localStorage.getItem('leadline:q:old')") is None
    assert resent.status == 200
    assert resent.events[0]["id"] == lost["id"]
    assert [e["title"] for e in resent.events] == ["A", "B"]
    assert recorder.events(name="stale") == []


async def test_single_page_apps_get_a_page_view_per_push_state_and_popstate(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    recorder.pages["spa"] = page_html("SPA")
    start = f"{recorder.base}/page/spa"
    await page.goto(start)
    await recorder.wait_for(lambda: recorder.posts)
    await page.evaluate("history.pushState({}, '', '/page/spa/pricing'); document.title = 'Pricing'")
    await page.evaluate("history.replaceState({}, '', '/page/spa/pricing?tab=2')")
    await page.evaluate("history.back()")
    views = await recorder.wait_for(lambda: (v := recorder.events(type="page_view"))[2:] and v)
    assert [(v["url"], v["ref"]) for v in views] == [
        (start, ""),
        (f"{start}/pricing", start),
        (start, f"{start}/pricing"),
    ]
    assert views[1]["title"] == "Pricing"
    assert len(views) == 3


async def test_form_submit_is_captured_without_sensitive_fields_and_identifies_the_email(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """Auto-capture keeps what a marketer needs and never passwords, hidden tokens, files or card data."""
    form = """
    <form id="signup" method="post" action="/elsewhere" enctype="multipart/form-data">
      <input type="email" name="email"><input name="name"><input name="company">
      <select name="plan"><option>free</option><option>pro</option></select>
      <input type="checkbox" name="newsletter">
      <input type="checkbox" name="topics" value="a"><input type="checkbox" name="topics" value="b">
      <input type="password" name="password"><input type="hidden" name="csrf" value="s3cr3t">
      <input type="file" name="cv"><input name="payment" autocomplete="cc-number">
      <input name="valid_thru" autocomplete="billing cc-exp">
      <input name="cvc"><input name="card_holder"><input name="ref_code">
      <textarea name="notes" data-leadline-ignore></textarea>
      <fieldset data-leadline-ignore><input name="internal"></fieldset>
      <textarea name="message"></textarea><button type="submit">Sign up</button>
    </form>"""
    recorder.pages["signup"] = page_html("Signup", body=form)
    await page.goto(f"{recorder.base}/page/signup")
    await page.wait_for_function("window.leadline && window.leadline.loaded")
    for name, value in {
        "email": "ann@example.com",
        "name": "Ann Lee",
        "company": "Acme",
        "password": "hunter2",
        "payment": "4242 4242 4242 4242",
        "valid_thru": "12/29",
        "cvc": "123",
        "card_holder": "Ann Lee",
        "ref_code": "4111111111111111",
        "notes": "private",
        "internal": "private",
        "message": "hello",
    }.items():
        await page.fill(f"[name={name}]", value)
    await page.select_option("[name=plan]", "pro")
    await page.check("[name=newsletter]")
    await page.check("[name=topics][value=a]")
    await page.check("[name=topics][value=b]")
    await page.click("button[type=submit]")
    [submitted] = await recorder.wait_for(lambda: recorder.events(type="form_submit"))
    assert submitted["form"] == {
        "id": "signup",
        "fields": {
            "email": "ann@example.com",
            "name": "Ann Lee",
            "company": "Acme",
            "plan": "pro",
            "newsletter": True,
            "topics": ["a", "b"],
            "message": "hello",
        },
    }
    [identify] = recorder.events(type="identify")
    assert identify["traits"] == {"email": "ann@example.com", "name": "Ann Lee", "company": "Acme"}
    wire = orjson.dumps([p.body for p in recorder.posts])
    # whole values and field names: a bare "4242" also turns up in random event ids now and then
    secrets = (b"hunter2", b"4242 4242", b"4111111111111111", b"s3cr3t", b"private", b'"123"', b"12/29")
    fields = (
        b'"password"',
        b'"csrf"',
        b'"payment"',
        b'"valid_thru"',
        b'"cvc"',
        b'"card_holder"',
        b'"ref_code"',
    )
    for secret in (*secrets, *fields, b'"notes"', b'"internal"', b'"cv"'):
        assert secret not in wire


async def test_demo_page_form_goes_to_the_collector_not_the_snippet_and_the_button_tracks(
    recorder: SnippetWireRecorder, page: Page
) -> None:
    """The demo form posts to {prefix}/f/demo, which the collector captures itself: the snippet must not
    send it a second time. The blue button sends demo_button; the thank-you banner shows after submit."""
    await page.goto(f"{recorder.base}/demo")
    await page.wait_for_function("window.leadline && window.leadline.loaded")
    await page.click("#demo-button")
    [button] = await recorder.wait_for(lambda: recorder.events(name="demo_button"))
    assert button["props"] == {"color": "blue"}
    await page.fill("[name=email]", "bob@example.com")
    await page.fill("[name=name]", "Bob")
    await page.check("[name=consent_marketing]")
    await page.click("form button[type=submit]")
    await page.wait_for_url("**/demo?thanks=1")
    assert await page.text_content(".banner") == "Thanks, we'll be in touch."
    assert await page.is_hidden("[name=website]") or await page.evaluate(
        "document.querySelector('[name=website]').getBoundingClientRect().right < 0"
    )
    await recorder.wait_for(lambda: len(recorder.events(type="page_view")) == 2)
    assert recorder.form_posts == [
        {
            "email": "bob@example.com",
            "name": "Bob",
            "phone": "",
            "company": "",
            "message": "",
            "website": "",
            "consent_marketing": "yes",
        }
    ]
    assert recorder.events(type="form_submit") == []
    assert recorder.events(type="identify") == []


async def test_cross_origin_collector_gets_credentialed_batches_and_uuid_fallback_ids(
    recorder: SnippetWireRecorder,
) -> None:
    """Site www.leadline.test embeds the snippet from collector.leadline.test (same site, other origin):
    the JSON POST is preflighted, carries the collector's cookie back (credentials: 'include'), and event
    ids are UUID v4 even without crypto.randomUUID (an http page is not a secure context)."""
    port = recorder.base.rsplit(":", 1)[1]
    collector = f"http://collector.leadline.test:{port}"
    recorder.pages["xo"] = page_html("XO", src=f"{collector}/s.js", attrs=f'data-endpoint="{collector}"')
    async with browser_page(args=[host_rules("*.leadline.test")]) as page:
        await page.goto(f"http://www.leadline.test:{port}/page/xo")
        [first] = await recorder.wait_for(lambda: recorder.posts)
        assert await page.evaluate("[window.isSecureContext, typeof crypto.randomUUID]") == [
            False,
            "undefined",
        ]
        await page.evaluate("leadline('track', 'second')")
        [second] = await recorder.wait_for(lambda: recorder.posts[1:])
    assert recorder.preflights >= 1
    assert first.cookie is None
    assert second.cookie is not None
    ids = [e["id"] for p in recorder.posts for e in p.events]
    assert all(UUID4.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
