"""Cases from the outside (issue 14): a support form's submissions open cases through ingestion (once per
submission, none for a bot or an ordinary form), the thank-you page shows the tracking number once the case exists,
and the customer's status page shows status and public comments only when the number and the email fit, with one
answer for every miss."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.builders import event
from crm_core.service.helpers import api, case, person
from leadline_crm.catalog import routes
from leadline_crm.ingest.touches import write_batch
from leadline_shared.events import EnrichedEvent
from leadline_shared.ids import new_id
from leadline_shared.siteconfig import FormConfig

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
FIELDS = ["email", "name", "type", "subject", "message", "order_number"]


async def support_form(client: TestClient, headers: H, key: str = "help", **extra: Any) -> None:
    await api(client, "POST", "/api/v1/forms", headers["marketing"], 201, json={
        "key": key, "name": "Contact support", "fields": FIELDS, "required": ["email", "message"],
        "thank_you_url": "/support/thanks", "support": True, "case_type": "question", **extra})  # fmt: skip


def submitted(person_id: str, key: str = "help", **fields: str) -> EnrichedEvent:
    ids = {"email": fields["email"]} if "email" in fields else {}
    return event(person_id, "form_submit", form={"key": key, "fields": fields}, ids=ids)


async def test_a_support_forms_submission_opens_one_case(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """The form's fields make the case (type chosen, subject, message plus the other fields), the person is the
    submitter, and a redelivered submission opens no second case."""
    await support_form(client, auth_headers)
    pid = new_id()
    ev = submitted(pid, email="ann@example.com", name="Ann Lee", type="complaint", subject="Broken <lid>",
                   message="The lid cracked.", order_number="A-17")  # fmt: skip
    assert await write_batch(crm_conn, [ev]) == 1
    row = await crm_conn.fetchrow("SELECT * FROM cases WHERE event_id = $1", ev.event_id)
    assert str(row["person_id"]) == pid
    assert (row["type"], row["subject"], row["status"]) == ("complaint", "Broken <lid>", "new")
    assert row["description"] == "The lid cracked.\n\norder_number: A-17"
    assert re.fullmatch(r"SR-\d{4}-\d{6}", row["tracking_number"])
    # the same event again (a redelivery, a replay): nothing new
    assert await write_batch(crm_conn, [ev]) == 0
    assert await crm_conn.fetchval("SELECT count(*) FROM cases") == 1
    doc = await api(client, "GET", f"/api/v1/cases/{row['tracking_number']}", auth_headers["service"], 200)
    assert doc["person_id"] == pid
    assert (
        await crm_conn.fetchval(
            "SELECT count(*) FROM case_events WHERE case_id = $1 AND kind = 'created'", row["id"]
        )
        == 1
    )


async def test_the_form_type_stands_in_and_ordinary_forms_and_bots_open_nothing(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    await support_form(client, auth_headers, "faults", case_type="fault")
    await api(client, "POST", "/api/v1/forms", auth_headers["marketing"], 201, json={
        "key": "news", "fields": ["email"], "thank_you_url": "/thanks"})  # fmt: skip
    plain = submitted(
        new_id(), "faults", email="b@example.com", type="nonsense", message="It stopped.\nTwice."
    )
    ordinary = submitted(new_id(), "news", email="c@example.com")
    bot = submitted(new_id(), "faults", email="d@example.com", message="spam")
    bot.bot = {"is_bot": True, "indicators": ["ua_spider"]}
    await write_batch(crm_conn, [plain, ordinary, bot])
    rows = await crm_conn.fetch("SELECT event_id, type, subject FROM cases")
    assert [tuple(r) for r in rows] == [(plain.event_id, "fault", "It stopped.")]


async def test_the_thank_you_page_shows_the_number_once_the_case_exists(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    await support_form(client, auth_headers)
    page = await client.get("/support/forms/help")
    assert page.status == 200
    html = await page.text()
    ref = re.search(r'name="support_ref" value="([^"]+)"', html)
    assert ref is not None
    assert 'action="http' in html
    assert "/f/help" in html
    assert "form-action 'self' http" in page.headers["Content-Security-Policy"]
    assert (
        client.session.cookie_jar.filter_cookies(client.make_url("/support/thanks"))["ll_support_ref"].value
        == ref[1]
    )
    waiting = await (await client.get("/support/thanks")).text()
    assert 'hx-get="/support/thanks"' in waiting
    assert "tracking-number" not in waiting
    ev = submitted(new_id(), email="e@example.com", message="Help", support_ref=ref[1])
    await write_batch(crm_conn, [ev])
    number = await crm_conn.fetchval("SELECT tracking_number FROM cases WHERE form_ref = $1", ref[1])
    assert number is not None
    card = await (await client.get("/support/thanks", headers={"HX-Request": "true"})).text()
    assert f'<strong id="tracking-number">{number}</strong>' in card
    assert "hx-get" not in card
    assert "<html" not in card
    by_event = await (await client.get(f"/support/submissions/{ev.event_id}")).text()
    assert number in by_event
    assert number not in await (await client.get(f"/support/submissions/{new_id()}")).text()
    assert (await client.get("/support/forms/nosuch")).status == 404


async def _lookup(client: TestClient, number: str, email: str, token: bool = True) -> tuple[int, str]:
    form = await (await client.get("/support/status")).text()
    found = re.search(r'name="_token" value="([^"]+)"', form)
    assert found is not None
    data = {"tracking_number": number, "email": email, "_token": found[1] if token else "x"}
    resp = await client.post("/support/status", data=data)
    return resp.status, await resp.text()


async def test_the_status_page_shows_public_comments_only_and_the_same_answer_for_every_miss(
    client: TestClient, auth_headers: H
) -> None:
    pid = await person(client, auth_headers["sales"], "Gil@Example.com", first_name="Gil")
    number = (await case(client, auth_headers["service"], pid, subject="Pump <b>noise</b>"))[
        "tracking_number"
    ]
    for body, public in (("We sent a <i>technician</i>.", True), ("Customer seems annoyed", False)):
        await api(client, "POST", f"/api/v1/cases/{number}/comments", auth_headers["service"], 201,
                  json={"body": body, "public": public})  # fmt: skip
    status, html = await _lookup(client, number.lower(), " gil@example.com ")
    assert status == 200
    assert "Pump &lt;b&gt;noise&lt;/b&gt;" in html
    assert "We sent a &lt;i&gt;technician&lt;/i&gt;." in html
    assert "annoyed" not in html
    assert 'id="case-status">received<' in html
    wrong_email = await _lookup(client, number, "someone@example.com")
    unknown = await _lookup(client, "SR-2001-000001", "gil@example.com")
    assert wrong_email[0] == unknown[0] == 404
    strip = re.compile(r'name="(?:tracking_number|email|_token)" value="[^"]*"')
    assert strip.sub("", wrong_email[1]) == strip.sub("", unknown[1])
    assert "We found no case with this tracking number and email" in unknown[1]
    assert (await _lookup(client, number, "gil@example.com", token=False))[0] == 403
    bad = await _lookup(client, "SR-<script>", "gil@example.com")
    assert bad[0] == 422
    assert "<script>" not in bad[1]
    assert "SR-&lt;SCRIPT&gt;" in bad[1]
    assert (await _lookup(client, number, "not an email"))[0] == 422


def test_the_collector_keeps_a_support_forms_reference_field() -> None:
    """The collector drops fields a form does not name: a support form's config names support_ref, so the
    thank-you page's reference reaches ingestion; an ordinary form's does not."""
    row = {"key": "help", "fields": ["email", "message"], "thank_you_url": "/support/thanks",
           "allowed_origins": [], "required": ["email"], "support": True}  # fmt: skip
    support, ordinary = routes.form_entry(row), routes.form_entry(row | {"support": False})
    assert isinstance(support, FormConfig)
    assert isinstance(ordinary, FormConfig)
    assert support.fields == ("email", "message", "support_ref")
    assert ordinary.fields == ("email", "message")
