"""Consent per person (issue 14): a form's checkbox and the snippet's consent call set it through ingestion (the
newest statement wins, so a late old event cannot undo a withdrawal), an agent sets it on the person page or a
program through the API, and the export carries it."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.builders import event
from crm_core.service.helpers import api, person
from crm_core.web import csrf_of, sign_in
from leadline_crm.ingest.touches import write_batch
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def _consent(conn: asyncpg.Connection, pid: str) -> dict[str, tuple[bool, str]]:
    doc = await conn.fetchval("SELECT consent FROM persons WHERE person_id = $1", pid)
    return {k: (v["granted"], v["source"]) for k, v in doc.items()}


async def test_forms_and_the_consent_call_set_consent_and_the_newest_wins(
    crm_conn: asyncpg.Connection,
) -> None:
    pid = new_id()
    form = event(pid, "form_submit", minutes_ago=10, form={"key": "contact", "fields": {"email": "c@example.com"}},
                 context={"url": "https://shop.example/", "consent": {"marketing": True}})  # fmt: skip
    await write_batch(crm_conn, [form])
    assert await _consent(crm_conn, pid) == {"marketing": (True, "form")}
    call = event(pid, "track", minutes_ago=5, context={"consent": {"marketing": False, "analytics": True}})
    call.source = "beacon"
    late_old = event(pid, "page_view", minutes_ago=60, context={"consent": {"marketing": True}})
    bot = event(pid, "form_submit", minutes_ago=1, context={"consent": {"analytics": False}})
    bot.bot = {"indicators": ["ua_spider"]}
    await write_batch(crm_conn, [call, bot])
    await write_batch(crm_conn, [late_old])  # older than the withdrawal: changes nothing
    assert await _consent(crm_conn, pid) == {"marketing": (False, "snippet"), "analytics": (True, "snippet")}


async def test_an_agent_and_a_program_set_consent_and_the_export_carries_it(
    client: TestClient, auth_headers: H
) -> None:
    pid = await person(client, auth_headers["sales"], "k@example.com", first_name="Kai")
    doc = await api(client, "PUT", f"/api/v1/persons/{pid}/consent", auth_headers["service"], 200,
                    json={"marketing": True})  # fmt: skip
    assert doc["consent"]["marketing"]["granted"] is True
    assert doc["consent"]["marketing"]["source"] == "api"
    await api(
        client, "PUT", f"/api/v1/persons/{pid}/consent", auth_headers["service"], 422, json={"sms": True}
    )
    await api(client, "PUT", f"/api/v1/persons/{pid}/consent", auth_headers["service"], 422, json={})
    await api(client, "PUT", f"/api/v1/persons/{new_id()}/consent", auth_headers["service"], 404,
              json={"marketing": True})  # fmt: skip
    await sign_in(client, "service")
    page = await (await client.get(f"/app/persons/{pid}")).text()
    assert 'data-purpose="marketing">Marketing: <b>granted</b>' in page
    assert 'data-purpose="analytics">Analytics: <b>not given</b>' in page
    token = await csrf_of(client, f"/app/persons/{pid}")
    resp = await client.post(f"/app/persons/{pid}/consent", data={"_csrf": token, "marketing": "no",
                                                                  "analytics": ""}, allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    none = await client.post(f"/app/persons/{pid}/consent", data={"_csrf": token, "marketing": ""})
    assert none.status == 422
    shown = await api(client, "GET", f"/api/v1/persons/{pid}/consent", auth_headers["marketing"], 200)
    assert shown["consent"]["marketing"]["granted"] is False
    assert shown["consent"]["marketing"]["source"] == "agent"
    export = await api(client, "GET", f"/api/v1/persons/{pid}/export", auth_headers["admin"], 200)
    assert export["profile"]["consent"]["marketing"]["granted"] is False


async def test_a_support_request_opens_its_case_whatever_the_consent_and_records_what_it_says(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """Service is contractual: a customer who withdrew marketing consent on the support form still gets their
    case, its number and its status page; the withdrawal is recorded from the form and the export carries it in its
    own section."""
    await api(client, "POST", "/api/v1/forms", auth_headers["marketing"], 201, json={
        "key": "help", "name": "Help", "fields": ["email", "message", "consent_marketing"], "required": ["email"],
        "thank_you_url": "/support/thanks",
        "support": True, "case_type": "fault"})  # fmt: skip
    pid = new_id()
    post = event(pid, "form_submit", form={"key": "help", "fields": {"email": "w@example.com", "message": "Broken"}},
                 ids={"email": "w@example.com"}, context={"url": "https://shop.example/",
                                                          "consent": {"marketing": False}})  # fmt: skip
    await write_batch(crm_conn, [post])
    assert await _consent(crm_conn, pid) == {"marketing": (False, "form")}
    number = await crm_conn.fetchval("SELECT tracking_number FROM cases WHERE event_id = $1", post.event_id)
    assert number is not None
    form = await (await client.get("/support/status")).text()
    token = form.split('name="_token" value="', 1)[1].split('"', 1)[0]
    shown = await client.post("/support/status", data={"tracking_number": number, "email": "w@example.com",
                                                       "_token": token})  # fmt: skip
    assert shown.status == 200
    assert number in await shown.text()
    export = await api(client, "GET", f"/api/v1/persons/{pid}/export", auth_headers["admin"], 200)
    assert export["consent"]["marketing"]["granted"] is False
    assert export["consent"]["marketing"]["source"] == "form"
    assert [c["tracking_number"] for c in export["cases"]] == [number]
