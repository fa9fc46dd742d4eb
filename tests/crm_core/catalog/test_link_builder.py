"""The email-link builder (/app/settings/links): a CSV of recipients in, a CSV of per-recipient signed click and
open URLs out, minted like POST /api/v1/links. The URLs must really work: the collector, holding the same keys,
follows the click to the destination and records who clicked for which campaign and send."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.memory_sink import MemorySink, sites_in_memory
from crm_core.web import csrf_of, sign_in
from leadline_collector.app import create_app as create_collector
from leadline_collector.settings import CollectorSettings
from leadline_crm.catalog.recipients import MAX_ROWS
from leadline_crm.settings import CrmSettings
from leadline_shared import config
from leadline_shared.signing import KeyRing

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
TARGET = "https://shop.example/spring?utm_medium=email"


async def build(
    client: TestClient, csv_text: str | bytes, fields: dict[str, str], csrf: bool = True
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    if csrf:
        form.add_field("_csrf", await csrf_of(client, "/app/settings/links"))
    for name, value in fields.items():
        form.add_field(name, value)
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    form.add_field("recipients", data, filename="list.csv", content_type="text/csv")
    return await client.post("/app/settings/links", data=form)


async def campaign_and_send(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    camp = await (await client.post("/api/v1/campaigns", json={"name": "Spring"}, headers=headers)).json()
    send = await (
        await client.post(
            "/api/v1/email_sends", json={"campaign_id": camp["id"], "subject": "Hi"}, headers=headers
        )
    ).json()
    return camp["id"], send["id"]


async def test_a_marketer_gets_signed_links_that_the_collector_follows(
    client: TestClient, auth_headers: H, crm_settings: CrmSettings, tmp_path: Path
) -> None:
    campaign, send = await campaign_and_send(client, auth_headers["marketing"])
    await sign_in(client, auth_headers["marketing"])
    page = await (await client.get("/app/settings/links")).text()
    assert f'<option value="{send}">Hi · ' in page
    resp = await build(
        client,
        "Email;First name;Last name\r\nAda@Example.com;Ada;Lovelace\r\n=1+1@x.example;=cmd;\r\n",
        {"target": TARGET, "campaign_id": campaign, "send_id": send, "ttl_days": "30"},
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert f'filename="links-{send}.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["email"] for r in rows] == [
        "ada@example.com",
        "'=1+1@x.example",
    ]  # no spreadsheet formulas
    assert rows[0]["name"] == "Ada Lovelace"
    assert rows[1]["name"] == "'=cmd"
    ring = KeyRing.parse(crm_settings.link_keys)
    token = rows[0]["click_url"].rsplit("/", 1)[1]
    payload = ring.verify(token)
    assert payload["target"] == TARGET
    assert (payload["campaign_id"], payload["send_id"]) == (campaign, send)
    assert payload["recipient_token"] == rows[0]["recipient_token"]
    assert rows[0]["recipient_token"] != rows[1]["recipient_token"]
    assert rows[0]["open_url"] == f"http://127.0.0.1:8080/o/{token}.gif"
    assert rows[0]["open_img"] == f'<img src="{rows[0]["open_url"]}" width="1" height="1" alt="">'

    # The same address gets the same recipient token next time, so its clicks join one person.
    again = await build(client, "email\nada@example.com\n", {"target": TARGET, "ttl_days": "1"})
    assert (
        next(csv.DictReader(io.StringIO(await again.text())))["recipient_token"] == rows[0]["recipient_token"]
    )

    sink = MemorySink()
    settings = config.load(
        CollectorSettings,
        {"LEADLINE_KAFKA_BOOTSTRAP": "127.0.0.1:1", "LEADLINE_SPOOL_DIR": str(tmp_path / "spool"),
         "LEADLINE_LINK_KEYS": crm_settings.link_keys},
    )  # fmt: skip
    sites = sites_in_memory(tmp_path / "sites.json", [])
    async with TestClient(TestServer(create_collector(settings, sink=sink, sites=sites))) as collector:
        click = await collector.get(urlsplit(rows[0]["click_url"]).path, allow_redirects=False)
        assert click.status == 302
        assert click.headers["Location"] == TARGET
        opened = await collector.get(urlsplit(rows[0]["open_url"]).path)
        assert opened.status == 200
        assert opened.headers["Content-Type"] == "image/gif"
    clicked, open_event = sink.messages()
    assert clicked["type"] == "link_click"
    assert open_event["type"] == "email_open"
    assert clicked["ids"] == {"recipient_token": rows[0]["recipient_token"]}
    assert clicked["link"]["campaign_id"] == campaign
    assert clicked["link"]["send_id"] == send


async def test_a_new_email_send_can_be_made_on_the_way(client: TestClient, auth_headers: H) -> None:
    await sign_in(client, auth_headers["admin"])
    resp = await build(client, "ada@example.com,Ada\n", {"target": TARGET, "subject": "Spring news"})
    assert resp.status == 200
    sends = await (await client.get("/api/v1/email_sends", headers=auth_headers["admin"])).json()
    [send] = sends["items"]
    assert send["subject"] == "Spring news"
    [row] = csv.DictReader(io.StringIO(await resp.text()))
    assert row["name"] == "Ada"  # no header: email first, name second


@pytest.mark.parametrize(
    ("file", "fields", "expected"),
    [
        ("email\nada@example.com\n", {"target": "javascript:alert(1)"},
         "Destination URL: enter a web address starting with http:// or https://"),
        ("email\nada@example.com\n", {"target": TARGET, "ttl_days": "0"}, "Links work for (days): must be at least 1"),
        ("name,phone\nAda,123\n", {"target": TARGET}, "no email column"),
        (b"\x00\x01PK\x03\x04binary", {"target": TARGET}, "that is not a CSV text file"),
        ("email\n", {"target": TARGET}, "the file lists no recipients"),
        ("email\n" + "a@example.com\n" * 2 + "".join(f"u{i}@example.com\n" for i in range(MAX_ROWS)),
         {"target": TARGET}, "more than 20000 recipients"),
    ],
)  # fmt: skip
async def test_what_cannot_be_used_is_said_on_the_page(
    client: TestClient, auth_headers: H, file: str | bytes, fields: dict[str, str], expected: str
) -> None:
    await sign_in(client, auth_headers["marketing"])
    resp = await build(client, file, fields)
    text = await resp.text()
    assert resp.status == 422, text[:500]
    assert expected in text
    assert 'value="' + fields["target"].replace("&", "&amp;") in text  # what was typed stays


async def test_bad_rows_are_reported_by_line_and_nothing_is_downloaded(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, auth_headers["marketing"])
    rows = 'email,name\nada@example.com,Ada\nnot-an-email,Bob\n,Nobody\nADA@example.com,Ada again\n"<b>x</b>@@",X\n'
    resp = await build(client, rows, {"target": TARGET})
    text = await resp.text()
    assert resp.status == 422
    assert "4 rows of the file cannot be used" in text
    assert '<td class="num">3</td><td>&#39;not-an-email&#39; is not an email address</td>' in text
    assert '<td class="num">4</td><td>no email address</td>' in text
    assert "ada@example.com is listed again (first on line 2); left out" in text
    assert "&lt;b&gt;x&lt;/b&gt;@@" in text  # shown, not run


async def test_the_upload_needs_the_csrf_token_and_the_role(client: TestClient, auth_headers: H) -> None:
    """The CSRF guard reads multipart forms too; a rep may not mint links."""
    await sign_in(client, auth_headers["marketing"])
    forged = await build(client, "email\nada@example.com\n", {"target": TARGET}, csrf=False)
    assert forged.status == 403
    assert "reload and try again" in await forged.text()
    await sign_in(client, auth_headers["sales"])
    form = aiohttp.FormData()
    form.add_field("_csrf", await csrf_of(client, "/app/people"))
    form.add_field("target", TARGET)
    form.add_field("recipients", b"email\nada@example.com\n", filename="l.csv")
    refused = await client.post("/app/settings/links", data=form)
    assert refused.status == 403


async def test_a_file_over_the_apps_body_limit_gets_a_readable_page(
    client: TestClient, auth_headers: H
) -> None:
    """Bodies over 1 MiB are refused before the page runs (the CSRF guard reads the form): a 413 page, no 500."""
    await sign_in(client, auth_headers["marketing"])
    resp = await build(client, "email\n" + "someone@example.com\n" * 60_000, {"target": TARGET})
    assert resp.status == 413
    assert "<h1>Request Entity Too Large</h1>" in await resp.text()
