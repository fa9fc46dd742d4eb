"""The settings pages under /app/settings (catalog/pages.py): admins and marketers set up forms (with their embed
code), write keys, campaigns, affiliates and ads (with their tracking URLs), email sends, score rules and custom
fields through the API's own functions and rules; everyone else gets a readable 403. What is typed wrong comes
back as a sentence per field with a 422, keeping the input; captured text shows as text."""

from __future__ import annotations

import re
from html import unescape

import orjson
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in
from leadline_shared import kafka
from support import read_topic

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
COLLECTOR = "http://127.0.0.1:8080"  # LEADLINE_COLLECTOR_PUBLIC_URL's default


async def post(
    client: TestClient, path: str, data: dict[str, str], page: str = "/app/settings"
) -> tuple[int, str]:
    resp = await client.post(path, data={**data, "_csrf": await csrf_of(client, page)}, allow_redirects=False)
    return resp.status, (resp.headers.get("Location") or await resp.text())


def pre(html: str, element_id: str) -> str:
    """The text of a copyable code block, as the browser's clipboard gets it."""
    found = re.search(rf'<pre class="code" id="{element_id}">(.*?)</pre>', html, re.S)
    assert found, f"no #{element_id} on the page"
    return unescape(found.group(1))


@pytest.mark.parametrize("role", ["sales", "service", "read_only"])
async def test_only_admins_and_marketers_reach_the_settings(
    client: TestClient, auth_headers: H, role: str
) -> None:
    """Others get a readable 403 page on every settings page and every write, and no Settings link."""
    await sign_in(client, auth_headers[role])
    for path in ("/app/settings", "/app/settings/forms", "/app/settings/forms/new", "/app/settings/links",
                 "/app/settings/score-rules"):  # fmt: skip
        resp = await client.get(path)
        assert resp.status == 403, path
        assert "Your role may not do this" in await resp.text()
    status, _ = await post(client, "/app/settings/forms", {"key": "x", "fields": "email", "thank_you_url": "/t"},
                           page="/app/people")  # fmt: skip
    assert status == 403
    assert 'href="/app/settings"' not in await (await client.get("/app/people")).text()


async def test_a_marketer_creates_a_form_and_copies_its_embed_code(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, auth_headers["marketing"])
    index = await client.get("/app/settings")
    assert index.status == 200
    assert f"&lt;script async src=&#34;{COLLECTOR}/s.js&#34;&gt;&lt;/script&gt;" in await index.text()
    new = await (await client.get("/app/settings/forms/new")).text()
    assert "email\nfirst_name" in new  # a useful start
    status, location = await post(
        client, "/app/settings/forms",
        {"key": "contact", "name": "Contact us", "fields": "email\nfirst_name, company\nmessage\nconsent_marketing",
         "required": "email", "allowed_origins": "https://www.shop.example", "thank_you_url": "/thanks"},
    )  # fmt: skip
    assert status == 303
    assert location == "/app/settings/forms/contact?saved=1"
    page = await (await client.get(location)).text()
    assert "Saved." in page
    embed = pre(page, "embed-code")
    assert f'<form method="post" action="{COLLECTOR}/f/contact"' in embed
    assert '<input type="email" name="email" autocomplete="email" required>' in embed
    assert '<input type="text" name="company" autocomplete="organization">' in embed
    assert '<textarea name="message" rows="4"></textarea>' in embed
    assert '<input type="checkbox" name="consent_marketing" value="yes">' in embed
    assert 'name="website"' in embed  # the collector's honeypot
    assert pre(page, "snippet-tag") == f'<script async src="{COLLECTOR}/s.js"></script>'
    api = await client.get("/api/v1/forms/contact", headers=auth_headers["read_only"])
    doc = await api.json()
    assert doc["fields"] == ["email", "first_name", "company", "message", "consent_marketing"]
    assert doc["allowed_origins"] == ["https://www.shop.example"]
    listing = await (await client.get("/app/settings/forms")).text()
    assert 'href="/app/settings/forms/contact"' in listing
    audit = await client.get("/api/v1/audit", params={"entity_type": "forms"}, headers=auth_headers["admin"])
    [entry] = (await audit.json())["items"]
    assert (entry["action"], entry["entity_id"], entry["via"]) == ("create", "contact", "ui")


async def test_a_form_that_breaks_the_apis_rules_comes_back_with_sentences_and_the_input(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, auth_headers["marketing"])
    status, html = await post(
        client, "/app/settings/forms",
        {"key": "bad key!", "name": "Keep me", "fields": "", "thank_you_url": "javascript:alert(1)"},
    )  # fmt: skip
    assert status == 422
    assert "Key: use letters, digits" in html
    assert "Fields: is required" in html
    assert (
        "Thank-you page: enter a web address starting with http:// or https://, or a path starting with /"
        in html
    )
    assert 'value="Keep me"' in html
    assert 'value="bad key!"' in html
    assert "does not match" not in html  # no schema jargon
    ok = {"key": "dup", "fields": "email", "thank_you_url": "/t"}
    assert (await post(client, "/app/settings/forms", ok))[0] == 303
    status, html = await post(client, "/app/settings/forms", ok)
    assert status == 422
    assert "Key: a form with this value already exists" in html
    status, html = await post(
        client, "/app/settings/forms", {**ok, "key": "o", "allowed_origins": "www.shop.example"}
    )
    assert status == 422
    assert "Allowed sites: line 1: enter a web address starting with http:// or https://" in html


async def test_captured_text_shows_as_text_everywhere(client: TestClient, auth_headers: H) -> None:
    """A form name or field name holding markup is shown, never run: in the list, the form and the embed code."""
    xss = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await client.post(
        "/api/v1/forms",
        json={
            "key": "xss",
            "name": xss,
            "fields": ["email", 'a"><script>alert(2)</script>'],
            "thank_you_url": "/t",
        },
        headers=auth_headers["marketing"],
    )
    await sign_in(client, auth_headers["marketing"])
    for path in ("/app/settings/forms", "/app/settings/forms/xss"):
        html = await (await client.get(path)).text()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    embed = pre(await (await client.get("/app/settings/forms/xss")).text(), "embed-code")
    assert "<script>alert(2)" not in embed  # even the code to paste escapes the field name
    assert 'name="a&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"' in embed


async def test_a_marketer_edits_and_deletes_a_record(client: TestClient, auth_headers: H) -> None:
    await sign_in(client, auth_headers["marketing"])
    status, location = await post(client, "/app/settings/campaigns", {"name": "Spring", "channel": "email",
                                                                       "starts_on": "2026-03-01"})  # fmt: skip
    assert status == 303
    key = location.split("/")[-1].split("?")[0]
    page = f"/app/settings/campaigns/{key}"
    status, html = await post(client, page, {"name": "Spring", "channel": "email", "starts_on": "2026-03-01",
                                             "ends_on": "2026-02-01"}, page)  # fmt: skip
    assert status == 422
    assert (
        "ends_on: 2026-02-01 is before starts_on 2026-03-01" in html
        or "Ends on: 2026-02-01 is before" in html
    )
    status, _ = await post(client, page, {"name": "Spring sale", "channel": "paid", "starts_on": "",
                                          "ends_on": "2026-04-01"}, page)  # fmt: skip
    assert status == 303
    doc = await (await client.get(f"/api/v1/campaigns/{key}", headers=auth_headers["read_only"])).json()
    assert (doc["name"], doc["channel"], doc["starts_on"], doc["ends_on"]) == (
        "Spring sale",
        "paid",
        None,
        "2026-04-01",
    )
    status, location = await post(client, f"{page}/delete", {}, page)
    assert (status, location) == (303, "/app/settings/campaigns")
    assert (await client.get(f"/api/v1/campaigns/{key}", headers=auth_headers["read_only"])).status == 404
    assert (await client.get(page)).status == 404


async def test_ads_show_their_tracking_urls(client: TestClient, auth_headers: H) -> None:
    await sign_in(client, auth_headers["marketing"])
    assert (await post(client, "/app/settings/affiliates", {"affiliate_id": "partner1", "name": "Partner"}))[
        0
    ] == 303
    new = await (await client.get("/app/settings/ads/new")).text()
    assert '<option value="partner1">partner1 · Partner</option>' in new
    status, html = await post(client, "/app/settings/ads", {"affiliate_id": "nobody", "ad_id": "a1",
                                                            "landing_url": "https://shop.example/"})  # fmt: skip
    assert status == 422
    assert "Affiliate: there is no affiliate nobody" in html
    status, location = await post(client, "/app/settings/ads", {
        "affiliate_id": "partner1", "ad_id": "banner-1", "name": "Banner", "landing_url": "https://shop.example/x",
        "creative": '{"size": "300x250"}'})  # fmt: skip
    assert status == 303
    url = f"{COLLECTOR}/a/partner1/banner-1"
    assert pre(await (await client.get(location)).text(), "tracking-url") == url
    assert f">{url}</code>" in await (await client.get("/app/settings/ads")).text()
    status, html = await post(client, "/app/settings/ads", {"affiliate_id": "partner1", "ad_id": "b2",
                                                            "landing_url": "https://x.example/", "creative": "{nope"})  # fmt: skip
    assert status == 422
    assert "Creative: enter a JSON object" in html


async def test_score_rules_and_custom_fields_are_the_admins(client: TestClient, auth_headers: H) -> None:
    """A marketer reads them (as the API allows) but only an admin changes them."""
    await sign_in(client, auth_headers["marketing"])
    rules = await (await client.get("/app/settings/score-rules")).text()
    assert "pricing page view" in rules  # the rules the schema starts with
    assert "Only admins change these." in rules
    assert (await client.get("/app/settings/custom-fields/new")).status == 403
    status, _ = await post(client, "/app/settings/scoring", {"half_life_days": "10"})
    assert status == 403

    await sign_in(client, auth_headers["admin"])
    status, html = await post(client, "/app/settings/score-rules", {"name": "demo", "event_type": "page_view",
                                                                    "points": "5000", "active": "1"})  # fmt: skip
    assert status == 422
    assert "Points: must be at most 1000" in html
    status, _ = await post(client, "/app/settings/score-rules", {"name": "demo", "event_type": "page_view",
                                                                 "url_contains": "/demo", "points": "15", "active": "1"})  # fmt: skip
    assert status == 303
    status, html = await post(
        client, "/app/settings/scoring", {"half_life_days": "0", "prospect_threshold": "40"}
    )
    assert status == 422
    assert "Score half-life (days): must be more than 0" in html
    status, _ = await post(client, "/app/settings/scoring", {"half_life_days": "14", "prospect_threshold": "40",
                                                             "repeat_visit_days": "2"})  # fmt: skip
    assert status == 303
    scoring = await (await client.get("/api/v1/scoring", headers=auth_headers["admin"])).json()
    assert scoring == {"half_life_days": 14, "prospect_threshold": 40, "repeat_visit_days": 2}
    status, _ = await post(client, "/app/settings/custom-fields", {"name": "plan", "label": "Plan", "type": "choice",
                                                                   "choices": "basic\npro"})  # fmt: skip
    assert status == 303
    status, html = await post(
        client, "/app/settings/custom-fields", {"name": "Bad Name", "label": "", "type": "text"}
    )
    assert status == 422
    assert "Name: use lower-case letters, digits and &#39;_&#39;, starting with a letter" in html
    assert "Label: is required" in html or "Label: must not be empty" in html
    doc = await (await client.get("/api/v1/field_definitions/plan", headers=auth_headers["admin"])).json()
    assert doc["choices"] == ["basic", "pro"]


async def test_write_keys_reach_the_collectors_configuration(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """A write key made on the page reaches the collector's configuration topic like one made through the API."""
    await sign_in(client, auth_headers["marketing"])
    new = await (await client.get("/app/settings/write-keys/new")).text()
    assert re.search(r'name="write_key" type="text" value="wk_[A-Za-z0-9]{24}"', new)
    status, location = await post(client, "/app/settings/write-keys", {"write_key": "wk_test", "name": "App",
                                                                        "settings": '{"platform": "ios"}'})  # fmt: skip
    assert status == 303
    assert f"{COLLECTOR}/v1" in await (await client.get(location)).text()
    [(key, value, _)] = await read_topic(kafka_bootstrap, topics.config, 1)
    assert key == b"source:wk_test"
    assert orjson.loads(value)["settings"] == {"platform": "ios"}


async def test_deleting_an_affiliate_makes_the_collector_forget_its_ads(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Its ads go with it (the foreign key cascades); without their tombstones the collector would keep
    redirecting their tracking URLs."""
    h = auth_headers["marketing"]
    await client.post("/api/v1/affiliates", json={"affiliate_id": "gone", "name": "Gone"}, headers=h)
    for ad in ("a1", "a2"):
        body = {"affiliate_id": "gone", "ad_id": ad, "landing_url": "https://shop.example/"}
        assert (await client.post("/api/v1/ads", json=body, headers=h)).status == 201
    await sign_in(client, h)
    page = "/app/settings/affiliates/gone"
    assert (await post(client, f"{page}/delete", {}, page)) == (303, "/app/settings/affiliates")
    messages = await read_topic(kafka_bootstrap, topics.config, 4)
    assert sorted(k or b"" for k, v, _ in messages if v is None) == [b"ad:gone/a1", b"ad:gone/a2"]
    assert (await (await client.get("/api/v1/ads", headers=h)).json())["items"] == []
