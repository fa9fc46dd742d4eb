"""The import pages without JavaScript (plain form posts): an upload that is not CSV is a readable 422 page, a good
one leads to its mapping, a mapping without an email or phone column is a 422 page keeping the choice, and the run
started by the page's button ends on the report."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in

pytestmark = pytest.mark.integration


def upload(token: str, body: bytes, kind: str = "people") -> FormData:
    form = FormData()
    form.add_field("_csrf", token)
    form.add_field("kind", kind)
    form.add_field("file", body, filename="list.csv", content_type="text/csv")
    return form


async def test_the_import_pages_work_without_javascript(
    client: TestClient, crm_conn: asyncpg.Connection
) -> None:
    await sign_in(client, "sales")
    token = await csrf_of(client, "/app/import")
    refused = await client.post("/app/import", data=upload(token, b"\xff\xfe\x00\x00binary"))
    assert refused.status == 422
    assert "binary file, not CSV" in await refused.text()
    assert await crm_conn.fetchval("SELECT count(*) FROM import_jobs") == 0

    resp = await client.post(
        "/app/import", data=upload(token, b"Name,Mail\nAnn,ann@example.com\n"), allow_redirects=False
    )
    assert resp.status == 303
    job = resp.headers["Location"]
    page = await (await client.get(job)).text()
    assert '<option value="Mail" selected>' in page  # guessed: Mail is the email

    bad = await client.post(f"{job}/start", data={"_csrf": token, "map_first_name": "Name", "mode": "dry_run",
                                                  "on_duplicate": "skip"})  # fmt: skip
    assert bad.status == 422
    assert "choose the column of email or phone" in await bad.text()
    started = await client.post(f"{job}/start", data={"_csrf": token, "map_email": "Mail", "map_first_name": "Name",
                                                      "mode": "commit", "on_duplicate": "skip"}, allow_redirects=False)  # fmt: skip
    assert started.status == 303
    assert "<noscript><button>Start</button></noscript>" in await (await client.get(job)).text()
    ran = await client.post(f"{job}/work", data={"_csrf": token}, allow_redirects=False)
    assert ran.status == 303
    report = await (await client.get(job)).text()
    assert "Import finished." in report
    assert (
        await crm_conn.fetchval("SELECT first_name FROM persons WHERE emails = ARRAY['ann@example.com']")
        == "Ann"
    )
    again = await client.post(f"{job}/start", data={"_csrf": token, "map_email": "Mail", "mode": "commit"})
    assert again.status == 422  # the file is dropped after a real run
    assert "upload the file again" in await again.text()
    assert (await client.get("/app/import/not-a-job")).status == 404
