"""The demo's sales additions against a real crm-core (deploy/local's demo/sales.py): the fair's contacts go through
the import API (the unfinished row rejected, a second run creates nothing) and each rep's targets are set once."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from leadline_localstack.demo import sales
from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_the_demo_imports_the_fair_contacts_and_sets_targets_once(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    ids = {"user": {}}
    for rep in w.SALES_REPS:
        uid = await crm_conn.fetchval(
            "INSERT INTO users (email, name, role) VALUES ($1, $2, 'sales') RETURNING id", rep.email, rep.name
        )
        ids["user"][rep.email] = str(uid)
    token = auth_headers["admin"]["Authorization"].removeprefix("Bearer ")
    api = Api(client.session, str(client.make_url("")), token)
    today = datetime.now(UTC).date()

    assert await sales.import_fair_contacts(api) == {"created": 10, "skipped": 0, "rejected": 1}
    assert await sales.set_targets(api, ids, today) == 2 * len(w.SALES_REPS)
    assert await sales.import_fair_contacts(api) == {"created": 0, "skipped": 10, "rejected": 1}
    assert await sales.set_targets(api, ids, today) == 0

    hannah = await crm_conn.fetchrow(
        "SELECT * FROM persons WHERE emails = ARRAY['hannah.weber@mailbox.example']"
    )
    assert (hannah["first_name"], hannah["city"], hannah["phones"]) == (
        "Hannah",
        "Bristol",
        ["+442079460101"],
    )
    assert hannah["owner_id"] == await crm_conn.fetchval(
        "SELECT id FROM users WHERE email = $1", w.SALES_REPS[0].email
    )
    doc = await (await client.get(f"/api/v1/sales/targets?month={today.isoformat()[:7]}",
                                  headers=auth_headers["sales"])).json()  # fmt: skip
    assert sorted(t["target"] for t in doc["items"]) == [20000, 25000, 30000, 35000]
