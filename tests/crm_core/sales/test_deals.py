"""Deals in pipelines through the API: the default pipeline the migration seeds, stage moves kept in a history and
audited and shown on the person's timeline, won and lost with a reason, unknown stages and pipelines refused with
422, and the weighted pipeline value against a hand computation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json() if status != 204 else None


async def default_pipeline(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    pipelines = (await ok(await client.get("/api/v1/pipelines", headers=headers)))["items"]
    [default] = [p for p in pipelines if p["is_default"]]
    return dict(default)


async def lead(client: TestClient, headers: dict[str, str], email: str) -> str:
    person = await ok(await client.post("/api/v1/leads", json={"email": email}, headers=headers), 201)
    return str(person["id"])


async def test_a_deals_stage_history_audit_and_timeline(client: TestClient, auth_headers: H) -> None:
    """A manager reads how a deal went: every stage with when, who and why; the person's timeline shows it too."""
    sales = auth_headers["sales"]
    pipeline = await default_pipeline(client, sales)
    stages = {s["name"]: s for s in pipeline["stages"]}
    assert [s["name"] for s in pipeline["stages"]] == [
        "Qualified",
        "Meeting",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]
    person = await lead(client, sales, "dora@acme.example")
    deal = await ok(
        await client.post(
            "/api/v1/deals",
            json={"title": "Acme rollout", "person_id": person, "amount": 12000, "currency": "EUR"},
            headers=sales,
        ),
        201,
    )
    assert (deal["stage"], deal["status"], deal["pipeline_id"]) == ("Qualified", "open", pipeline["id"])
    url = f"/api/v1/deals/{deal['id']}"
    await ok(await client.patch(url, json={"stage": "Proposal", "reason": "demo went well"}, headers=sales))
    await ok(await client.patch(url, json={"stage_id": stages["Negotiation"]["id"]}, headers=sales))
    won = await ok(await client.patch(url, json={"stage": "Won", "reason": "signed"}, headers=sales))
    assert (won["status"], won["close_reason"]) == ("won", "signed")
    assert won["closed_at"]

    history = (await ok(await client.get(url, headers=sales)))["history"]
    assert [(h["from_stage"], h["to_stage"], h["reason"]) for h in history] == [
        (None, "Qualified", "created"),
        ("Qualified", "Proposal", "demo went well"),
        ("Proposal", "Negotiation", None),
        ("Negotiation", "Won", "signed"),
    ]
    audit = (await ok(await client.get(f"/api/v1/audit?entity_type=deals&entity_id={deal['id']}",
                                       headers=auth_headers["admin"])))["items"]  # fmt: skip
    assert [a["action"] for a in audit] == ["update", "update", "update", "create"]
    assert audit[0]["changes"]["status"] == ["open", "won"]
    assert audit[0]["changes"]["reason"] == "signed"

    timeline = (await ok(await client.get(f"/api/v1/persons/{person}/timeline", headers=sales)))["items"]
    moves = [(i["data"]["from"], i["data"]["to"]) for i in timeline if i["kind"] == "deal"]
    assert moves == [
        ("Negotiation", "Won"),
        ("Proposal", "Negotiation"),
        ("Qualified", "Proposal"),
        (None, "Qualified"),
    ]
    page = await client.get(f"/api/v1/persons/{person}/timeline", headers=sales)
    assert page.status == 200


async def test_unknown_stage_or_pipeline_is_422_and_a_lost_deal_needs_a_reason(
    client: TestClient, auth_headers: H
) -> None:
    """A deal never lands in a stage its pipeline does not have."""
    sales = auth_headers["sales"]
    person = await lead(client, sales, "eve@beta.example")
    other = await ok(
        await client.post(
            "/api/v1/pipelines",
            json={"name": "Renewals", "stages": [{"name": "Due", "probability": 60}, {"name": "Renewed", "probability": 100, "kind": "won"}]},
            headers=auth_headers["admin"],
        ),
        201,
    )  # fmt: skip
    base = {"title": "Beta", "person_id": person}
    for bad in (
        {"pipeline_id": "00000000-0000-4000-8000-000000000000"},
        {"stage_id": other["stages"][0]["id"]},  # a stage of another pipeline
        {"stage": "Nope"},
    ):
        resp = await client.post("/api/v1/deals", json=base | bad, headers=sales)
        assert resp.status == 422, (bad, await resp.text())
    assert (await client.post("/api/v1/deals", json={"title": "nobody"}, headers=sales)).status == 422
    deal = await ok(await client.post("/api/v1/deals", json=base, headers=sales), 201)
    url = f"/api/v1/deals/{deal['id']}"
    assert (await client.patch(url, json={"stage_id": other["stages"][0]["id"]}, headers=sales)).status == 422
    assert (await client.patch(url, json={"stage": "Lost"}, headers=sales)).status == 422  # no reason
    lost = await ok(await client.patch(url, json={"stage": "Lost", "reason": "budget cut"}, headers=sales))
    assert (lost["status"], lost["close_reason"]) == ("lost", "budget cut")
    moved = await ok(await client.patch(url, json={"pipeline_id": other["id"]}, headers=sales))
    assert (moved["stage"], moved["status"], moved["closed_at"]) == ("Due", "open", None)  # reopened
    assert (await client.patch(url, json={"title": "x"}, headers=auth_headers["marketing"])).status == 403


async def test_weighted_pipeline_value_matches_a_hand_computation(
    client: TestClient, auth_headers: H
) -> None:
    """The dashboard's weighted value: each open deal's amount times its stage's probability, per stage."""
    sales = auth_headers["sales"]
    person = await lead(client, sales, "fay@gamma.example")
    pipeline = await default_pipeline(client, sales)
    deals = [("Qualified", "1000.00"), ("Qualified", "250.50"), ("Proposal", "4000.00"), ("Negotiation", "999.99"),
             ("Won", "7000.00"), ("Lost", "5000.00")]  # fmt: skip
    for stage, amount in deals:
        body = {"title": f"{stage} {amount}", "person_id": person, "amount": float(amount), "stage": stage}
        await ok(await client.post("/api/v1/deals", json=body | {"reason": "r"}, headers=sales), 201)
    rows = (await ok(await client.get(f"/api/v1/pipelines/{pipeline['id']}/value", headers=sales)))["items"]
    got = {r["stage"]: (r["deals"], Decimal(str(r["amount"])), Decimal(str(r["weighted"]))) for r in rows}
    # by hand: Qualified 10 %, Proposal 50 %, Negotiation 75 %; won and lost deals are not in the pipeline
    assert got == {
        "Qualified": (2, Decimal("1250.50"), Decimal("125.05")),
        "Proposal": (1, Decimal("4000.00"), Decimal("2000.00")),
        "Negotiation": (1, Decimal("999.99"), Decimal("749.99")),
    }
