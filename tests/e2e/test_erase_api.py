"""An admin erases a person from crm-core's API (issue 14): the identity graph tombstones the person's identifiers
as ``leadline erase`` does, crm-core applies the graph's erase change, and replaying the person's old raw events
brings nothing back."""

from __future__ import annotations

import asyncpg
import pytest

from crm_pipeline import Pipeline, eventually
from e2e.test_erase import rows_holding
from leadline_crm.http import auth

pytestmark = pytest.mark.integration

EMAIL, PHONE = "ada.apierase@shop.example", "+14155550199"


async def test_erase_through_the_api_reaches_the_identity_graph_and_replays_bring_nothing_back(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    view = await p.page_view("v-ada")
    form = await p.form("v-ada", email=EMAIL, phone=PHONE, name="Ada Apierase")

    async def known() -> bool:
        return bool(await p.persons_with(EMAIL))

    await eventually(known, "the form's person reaches the CRM")
    person = (await p.persons_with(EMAIL))[0]["id"]
    crm = await asyncpg.connect(p.dsn, server_settings={"search_path": p.crm_schema})
    graph = await asyncpg.connect(p.dsn, server_settings={"search_path": p.identity_schema})
    try:
        admin = {"Authorization": f"Bearer {await auth.create_token(crm, 'dpo', 'admin')}"}
        resp = await p.crm.post(f"/api/v1/persons/{person}/erase", json={"reference": "DSR-9"}, headers=admin)
        assert resp.status == 202, await resp.text()
        assert p.topics.raw in (await resp.json())["retention"]
        assert not await p.persons_with(EMAIL), "crm-core erases at once"

        async def graph_erased() -> bool:
            erased = await graph.fetchval("SELECT erased_at FROM persons WHERE person_id = $1", person)
            applied = await crm.fetchval(
                "SELECT count(*) FROM identity_changes WHERE person_id = $1 AND kind = 'erase'", person
            )
            return erased is not None and applied >= 2  # crm-core's own and the graph's answer

        await eventually(graph_erased, "the graph erases the person and crm-core applies its change")
        assert await rows_holding(p.dsn, [p.crm_schema, p.identity_schema], [EMAIL, PHONE, PHONE[2:]]) == []

        await p.publish(view)  # the person's old raw events again: their identifiers are tombstoned
        await p.publish(form)
        marker = await p.page_view("v-after", "https://shop.example/after")

        async def replayed() -> bool:
            return bool(await crm.fetchval("SELECT 1 FROM touchpoints WHERE event_id = $1", marker.event_id))

        await eventually(replayed, "events after the replay reach the CRM")
        assert not await p.persons_with(EMAIL)
        row = await crm.fetchrow(
            "SELECT emails, phones, first_name FROM persons WHERE person_id = $1", person
        )
        assert (row["emails"], row["phones"], row["first_name"]) == ([], [], None)
        assert await crm.fetchval("SELECT count(*) FROM erasures WHERE person_id = $1", person) == 1
        again = await p.crm.post(
            f"/api/v1/persons/{person}/erase", json={"reference": "DSR-9"}, headers=admin
        )
        assert again.status == 409
    finally:
        await crm.close()
        await graph.close()
