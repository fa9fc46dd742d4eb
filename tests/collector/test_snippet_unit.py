"""The snippet's delivery (size, ETag, 304, gzip) and the demo page's HTML, without a browser."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from leadline_collector.demo import render_demo
from leadline_collector.snippet import Snippet, accepts_gzip, load_snippet, response

SIX_KB = 6 * 1024


@pytest.fixture
def snippet() -> Snippet:
    return load_snippet()


@pytest.fixture
async def client(snippet: Snippet) -> AsyncIterator[TestClient]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return response(request, snippet)

    app = web.Application()
    app.router.add_get("/s.js", handler)
    async with TestClient(TestServer(app), auto_decompress=False) as c:
        yield c


def test_snippet_stays_under_six_kilobytes_gzipped(snippet: Snippet) -> None:
    """Every page of a customer's site loads the snippet: the budget is 6 KB on the wire."""
    assert len(snippet.gzipped) <= SIX_KB, len(snippet.gzipped)
    assert gzip.decompress(snippet.gzipped) == snippet.body
    assert b"leadline" in snippet.body


def test_etag_is_strong_and_follows_the_body(snippet: Snippet) -> None:
    """A changed snippet gets a new validator, so caches pick it up after max-age."""
    assert snippet.etag.startswith('"')
    assert snippet.etag.endswith('"')
    assert not snippet.etag.startswith("W/")
    assert load_snippet().etag == snippet.etag
    assert snippet.gzip_etag != snippet.etag


async def test_gzip_is_served_when_accepted_with_caching_headers(
    client: TestClient, snippet: Snippet
) -> None:
    resp = await client.get("/s.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert resp.headers["ETag"] == snippet.gzip_etag
    assert gzip.decompress(await resp.read()) == snippet.body


async def test_identity_is_served_when_gzip_is_refused(client: TestClient, snippet: Snippet) -> None:
    resp = await client.get("/s.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert resp.status == 200
    assert "Content-Encoding" not in resp.headers
    assert resp.headers["ETag"] == snippet.etag
    assert await resp.read() == snippet.body


async def test_revalidation_with_the_etag_answers_304_without_a_body(client: TestClient) -> None:
    """A browser revalidating its cached copy gets a 304 for either encoding's ETag, also weak-prefixed."""
    first = await client.get("/s.js", headers={"Accept-Encoding": "gzip"})
    etag = first.headers["ETag"]
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        resp = await client.get("/s.js", headers={"Accept-Encoding": "gzip", "If-None-Match": inm})
        assert resp.status == 304, inm
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
        assert resp.headers["Cache-Control"] == "public, max-age=300"
    stale = await client.get("/s.js", headers={"Accept-Encoding": "gzip", "If-None-Match": '"stale"'})
    assert stale.status == 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("br, *;q=0.1", True),
        ("", False),
        ("identity", False),
        ("br", False),
        ("gzip;q=0", False),
        ("*;q=0", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_negotiation(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


class _Collect(HTMLParser):
    """The tags and attributes of a page, and its text, for assertions on structure rather than strings."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def test_demo_page_has_the_snippet_the_lead_form_and_the_honeypot() -> None:
    page = _parse(render_demo("/ll", [("Pricing", "/ll/c/tok.sig")], thanks=False))
    assert "Leadline demo" in "".join(page.text)
    assert page.find("script", src="/ll/s.js")
    [form] = page.find("form", action="/ll/f/demo")
    assert form["method"] == "post"
    names = {a["name"] for t, a in page.tags if t in ("input", "textarea") and a.get("name")}
    assert names == {"email", "name", "phone", "company", "message", "website", "consent_marketing"}
    [email] = page.find("input", name="email")
    assert "required" in email
    [honeypot] = page.find("input", name="website")
    assert (honeypot["tabindex"], honeypot["autocomplete"]) == ("-1", "off")
    [consent] = page.find("input", name="consent_marketing")
    assert consent["type"] == "checkbox"
    assert "leadline('track','demo_button',{color:'blue'})" in render_demo("", [], thanks=False)
    assert "Thanks, we'll be in touch" not in "".join(page.text)


def test_demo_page_thanks_banner_and_no_prefix() -> None:
    html = render_demo("", [], thanks=True)
    page = _parse(html)
    assert "Thanks, we'll be in touch." in "".join(page.text)
    assert page.find("script", src="/s.js")
    assert page.find("form", action="/f/demo")


def test_demo_page_escapes_link_labels_hrefs_and_prefix() -> None:
    """Labels and hrefs come from configuration: markup in them must show as text, never run."""
    html = render_demo(
        '/x"><script>alert(1)</script>',
        [("<img src=x onerror=alert(1)>", 'https://a.example/?q="><script>alert(2)</script>&x=1')],
        thanks=False,
    )
    page = _parse(html)
    assert "<img" not in html
    assert "alert(1)</script>" not in html
    assert "alert(2)</script>" not in html
    [link] = [a for t, a in page.tags if t == "a"]
    assert link["href"] == 'https://a.example/?q="><script>alert(2)</script>&x=1'
    assert "<img src=x onerror=alert(1)>" in page.text
    assert not page.find("img")
