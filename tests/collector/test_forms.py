"""Web forms: a plain HTML form and a fetch call both work; bad input gets a clear answer and records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_shared import kafka
from sites import DEMO_FORM, publish_config
from support import read_topic

MakeClient = Callable[..., Awaitable[TestClient]]
ORIGIN = {"Origin": "https://www.shop.example", "Referer": "https://www.shop.example/contact?utm_source=news"}
GOOD = {
    "email": " Ann.Lee@Example.COM ",
    "name": "Ann Lee",
    "phone": "(415) 555-2671",
    "company": "Acme",
    "message": "Call me",
    "consent_marketing": "on",
    "unexpected": "dropped",
}


@pytest.fixture
async def client(site: kafka.Topics, make_client: MakeClient) -> TestClient:
    """A collector on the real broker whose config topic holds the demo form."""
    return await make_client()


@pytest.mark.integration
async def test_a_plain_html_form_post_lands_on_the_thank_you_page_and_the_lead_is_on_the_topic(
    client: TestClient, kafka_bootstrap: str, site: kafka.Topics
) -> None:
    resp = await client.post("/f/demo", data=GOOD, headers=ORIGIN, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "https://www.shop.example/demo?thanks=1"
    assert "ll_vid" in resp.cookies
    [(key, value, _)] = await read_topic(kafka_bootstrap, site.raw, 1)
    event = orjson.loads(value)
    assert (event["type"], event["source"]) == ("form_submit", "form")
    assert event["form"] == {
        "key": "demo",
        "fields": {
            "email": "ann.lee@example.com",
            "name": "Ann Lee",
            "phone": "+14155552671",
            "company": "Acme",
            "message": "Call me",
        },
    }
    assert event["ids"] == {"email": "ann.lee@example.com", "phone": "+14155552671"}
    assert event["context"]["consent"] == {"marketing": True}
    assert event["context"]["campaign"] == {"source": "news"}
    assert key == resp.cookies["ll_vid"].value.encode()


async def test_fetch_with_json_gets_json_and_multipart_works_too(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    client = memory_client
    resp = await client.post("/ll/f/demo", json={"email": "bo@example.com"}, headers=ORIGIN)
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True
    assert body["redirect"] == "https://www.shop.example/demo?thanks=1"
    form = aiohttp.FormData()
    form.add_field("email", "cy@example.com")
    form.add_field("name", "Cy")
    resp = await client.post("/f/demo", data=form, headers={**ORIGIN, "Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    events = memory_sink.messages()
    assert sorted(e["ids"]["email"] for e in events) == ["bo@example.com", "cy@example.com"]
    assert body["event_id"] in {e["event_id"] for e in events}
    assert memory_sink.durable == [True, True]  # answered only once the event is safe


async def test_a_sink_that_cannot_take_the_submission_gets_503_with_retry_after(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    """A full spool is said plainly: the visitor is asked to retry, never told a lost lead was saved."""
    memory_sink.unavailable = True
    resp = await memory_client.post("/f/demo", data=GOOD, headers=ORIGIN, allow_redirects=False)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"
    assert "nothing was recorded" in await resp.text()
    assert "ll_vid" not in resp.cookies
    assert memory_sink.events == []
    metrics = await (await memory_client.get("/metrics")).text()
    assert 'leadline_collector_rejected_total{endpoint="form",reason="unavailable"} 1.0' in metrics


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"data": {"name": "No Email"}}, 422, "email: is required"),
        ({"data": {"email": "not-an-email"}}, 422, "not a valid email"),
        ({"data": {"email": "a@example.com", "phone": "12"}}, 422, "phone"),
        ({"data": b"\xff\xfe", "headers": {"Content-Type": "text/csv"}}, 415, "Unsupported content type"),
        (
            {
                "data": b"email=" + b"x" * 70_000,
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            413,
            "too large",
        ),
    ],
)
async def test_bad_submissions_get_a_readable_page_and_record_nothing(
    memory_client: TestClient,
    memory_sink: MemorySink,
    kwargs: dict[str, object],
    status: int,
    needle: str,
) -> None:
    headers = {**ORIGIN, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    resp = await memory_client.post("/f/demo", headers=headers, allow_redirects=False, **kwargs)  # type: ignore[arg-type]
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("text/html")
    assert needle in await resp.text()
    assert memory_sink.events == []


async def test_api_callers_get_problem_json_with_field_errors(memory_client: TestClient) -> None:
    client = memory_client
    resp = await client.post("/f/demo", json={"email": "nope", "phone": "x"}, headers=ORIGIN)
    assert resp.status == 422
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = await resp.json()
    assert set(body["errors"]) == {"email", "phone"}
    bad_json = await client.post(
        "/f/demo", data=b"{oops", headers={**ORIGIN, "Content-Type": "application/json"}
    )
    assert bad_json.status == 400
    assert (await bad_json.json())["title"] == "Malformed submission"


async def test_file_parts_unknown_forms_and_foreign_origins_are_refused(memory_client: TestClient) -> None:
    client = memory_client
    form = aiohttp.FormData()
    form.add_field("email", "a@example.com")
    form.add_field("cv", b"%PDF-1.4", filename="cv.pdf", content_type="application/pdf")
    assert (await client.post("/f/demo", data=form, headers=ORIGIN)).status == 415
    assert (await client.post("/f/nope", data={"email": "a@example.com"}, headers=ORIGIN)).status == 404
    evil = {"Origin": "https://evil.example"}
    assert (await client.post("/f/demo", data={"email": "a@example.com"}, headers=evil)).status == 403


async def test_the_honeypot_pretends_success_but_records_nothing(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    resp = await memory_client.post(
        "/f/demo", data={**GOOD, "website": "http://spam.example"}, headers=ORIGIN, allow_redirects=False
    )
    assert resp.status == 303
    assert memory_sink.events == []


async def test_one_ip_is_rate_limited_with_retry_after(make_memory_client: MakeClient) -> None:
    client = await make_memory_client(LEADLINE_FORM_RATE_PER_IP="1")
    statuses = [
        (await client.post("/f/demo", json={"email": f"r{i}@example.com"}, headers=ORIGIN)).status
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = await client.post("/f/demo", json={"email": "r9@example.com"}, headers=ORIGIN)
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.integration
async def test_a_form_added_in_crm_core_is_live_within_seconds_and_a_deleted_one_is_gone(
    client: TestClient, kafka_bootstrap: str, site: kafka.Topics
) -> None:
    await publish_config(kafka_bootstrap, site.config, [replace(DEMO_FORM, key="late", allowed_origins=())])
    for _ in range(50):
        resp = await client.post("/f/late", json={"email": "late@example.com"})
        if resp.status != 404:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200
    await publish_config(kafka_bootstrap, site.config, [], tombstones=("form:late",))
    for _ in range(50):
        resp = await client.post("/f/late", json={"email": "late@example.com"})
        if resp.status == 404:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 404
