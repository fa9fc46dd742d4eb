"""Assignment rules give new leads an owner: by country, by the form that made the lead, and round robin within a
team, fair across two app instances (the turn is a row-locked counter in PostgreSQL); leads made by ingestion's
stage moves (stages.apply_moves) get owners the same way; every assignment is audited. Companies take in leads by
their email domain, free-mail addresses excepted."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_core.web import csrf_of, sign_in
from leadline_crm import lifecycle, stages
from leadline_crm.app import create_app
from leadline_crm.http.keys import POOL
from leadline_crm.settings import CrmSettings

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def users(pool: asyncpg.Pool, *names: str) -> dict[str, uuid.UUID]:
    out = {}
    for name in names:
        out[name] = await pool.fetchval(
            "INSERT INTO users (email, name, role) VALUES ($1, $2, 'sales') RETURNING id",
            f"{name}@example.com",
            name,
        )
    return out


async def rules(client: TestClient, admin: dict[str, str], reps: dict[str, uuid.UUID]) -> None:
    """Germany goes to Greta; the 'enterprise' form to Erik; everyone else round robin within the team."""
    team = await (await client.post("/api/v1/teams", json={"name": "Inbound"}, headers=admin)).json()
    for name in ("Ann", "Bob", "Cid"):
        resp = await client.post("/api/v1/team_members", json={"team_id": team["id"], "user_id": str(reps[name])},
                                 headers=admin)  # fmt: skip
        assert resp.status == 201, await resp.text()
    for body in (
        {"name": "Germany", "position": 1, "country": "DE", "user_id": str(reps["Greta"])},
        {"name": "Enterprise form", "position": 2, "form_key": "enterprise", "user_id": str(reps["Erik"])},
        {"name": "Everyone else", "position": 3, "team_id": team["id"]},
    ):
        resp = await client.post("/api/v1/assignment_rules", json=body, headers=admin)
        assert resp.status == 201, await resp.text()


async def test_rules_give_a_fixed_set_of_leads_the_expected_owners(
    client: TestClient, auth_headers: H
) -> None:
    """A sales manager's rules decide who calls whom; a lead given an owner keeps it."""
    pool = client.server.app[POOL]
    reps = await users(pool, "Ann", "Bob", "Cid", "Greta", "Erik")
    await rules(client, auth_headers["admin"], reps)
    admin = auth_headers["admin"]
    leads = [("a1@x.example", "DE", None), ("a2@x.example", "FR", None), ("a3@x.example", "de", None),
             ("a4@x.example", "US", None), ("a5@x.example", None, None), ("a6@x.example", "GB", str(reps["Erik"])),
             ("a7@x.example", "IT", None)]  # fmt: skip
    owners = []
    for email, country, owner in leads:
        body = {
            "email": email,
            **({"country": country} if country else {}),
            **({"owner_id": owner} if owner else {}),
        }
        resp = await client.post("/api/v1/leads", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        owners.append((await resp.json())["owner_id"])
    names = {str(v): k for k, v in reps.items()}
    assert [names.get(str(o)) for o in owners] == ["Greta", "Ann", "Greta", "Bob", "Cid", "Erik", "Ann"]

    # a lead ingestion makes (a form's stage move out of anonymous) by the form it came through
    person = uuid.uuid4()
    await pool.execute("INSERT INTO persons (person_id, first_seen, last_seen, emails, identified)"
                       " VALUES ($1, now(), now(), '{x@big.example}', true)", person)  # fmt: skip
    await pool.execute(
        "INSERT INTO touchpoints (event_id, person_id, type, source, occurred_at, received_at, event)"
        " VALUES ($1, $2, 'form_submit', 'form', now(), now(), $3)",
        str(uuid.uuid4()), person, '{"form": {"key": "enterprise"}}',
    )  # fmt: skip
    row = {"person_id": str(person), "stage": "anonymous", "identified": True, "score": 0.0, "clicked": False,
           "rep_contacted": False, "visit_days": 0, "purchases": 0, "cause": None}  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        moved = await stages.apply_moves(conn, [row], lifecycle.Scoring(), datetime.now(UTC), "identified")
    assert moved == 1
    assert await pool.fetchval("SELECT owner_id FROM persons WHERE person_id = $1", person) == reps["Erik"]
    audit = await pool.fetchrow("SELECT actor, via, changes FROM audit_log WHERE action = 'assign' AND entity_id = $1",
                                str(person))  # fmt: skip
    assert (audit["actor"], audit["via"]) == ("assignment rules", "cli")
    assert audit["changes"] == {"owner_id": [None, str(reps["Erik"])], "rule": "Enterprise form"}


async def test_round_robin_is_fair_across_two_app_instances(
    client: TestClient, auth_headers: H, crm_settings: CrmSettings
) -> None:
    """Two replicas entering leads at once still deal them out in turn: each rep gets a third."""
    pool = client.server.app[POOL]
    reps = await users(pool, "Ann", "Bob", "Cid", "Greta", "Erik")
    await rules(client, auth_headers["admin"], reps)
    admin = auth_headers["admin"]
    async with TestClient(TestServer(create_app(crm_settings))) as second:

        async def enter(c: TestClient, i: int) -> str:
            resp = await c.post(
                "/api/v1/leads", json={"email": f"rr{i}@y.example", "country": "NL"}, headers=admin
            )
            assert resp.status == 201, await resp.text()
            return str((await resp.json())["owner_id"])

        owners = await asyncio.gather(*(enter(client if i % 2 else second, i) for i in range(30)))
    counts = Counter(owners)
    assert counts == {str(reps["Ann"]): 10, str(reps["Bob"]): 10, str(reps["Cid"]): 10}
    assert await pool.fetchval("SELECT turn FROM teams") == 30


async def test_companies_take_in_people_by_email_domain_but_not_free_mail(
    client: TestClient, auth_headers: H
) -> None:
    """A company page lists its people without a rep linking each; gmail users are not one company."""
    sales = auth_headers["sales"]
    pool = client.server.app[POOL]
    before = await (
        await client.post("/api/v1/leads", json={"email": "ola@acme.example"}, headers=sales)
    ).json()
    acme = await (await client.post("/api/v1/companies", json={"name": "Acme", "domain": "acme.example"},
                                    headers=sales)).json()  # fmt: skip
    after = await (
        await client.post("/api/v1/leads", json={"email": "pia@acme.example"}, headers=sales)
    ).json()
    free = await (await client.post("/api/v1/leads", json={"email": "quinn@gmail.com"}, headers=sales)).json()
    linked = {r["person_id"] for r in await pool.fetch("SELECT person_id FROM persons WHERE company_id = $1",
                                                         uuid.UUID(acme["id"]))}  # fmt: skip
    assert {str(p) for p in linked} == {before["id"], after["id"]}
    refused = await client.post(
        "/api/v1/companies", json={"name": "Google", "domain": "gmail.com"}, headers=sales
    )
    assert refused.status == 422
    # by hand: the gmail user works at Acme; a changed domain lets go of the domain's people, not the hand-linked
    resp = await client.post(
        f"/api/v1/companies/{acme['id']}/people", json={"person_id": free["id"]}, headers=sales
    )
    assert resp.status == 201
    resp = await client.patch(f"/api/v1/companies/{acme['id']}", json={"domain": "acme.test"}, headers=sales)
    assert resp.status == 200, await resp.text()
    linked = {str(r["person_id"]) for r in await pool.fetch("SELECT person_id FROM persons WHERE company_id = $1",
                                                              uuid.UUID(acme["id"]))}  # fmt: skip
    assert linked == {free["id"]}
    resp = await client.delete(f"/api/v1/companies/{acme['id']}/people/{free['id']}", headers=sales)
    assert resp.status == 204


async def test_an_admin_sets_up_teams_and_rules_on_the_page(client: TestClient, auth_headers: H) -> None:
    """Without the API: a team, its members and a rule made on /app/sales/rules give the next lead an owner."""
    pool = client.server.app[POOL]
    reps = await users(pool, "Ann", "Bob")
    await sign_in(client, "admin")
    token = await csrf_of(client, "/app/sales/rules")
    post = {"allow_redirects": False}
    assert (
        await client.post("/app/sales/teams", data={"_csrf": token, "name": "Inbound"}, **post)
    ).status == 303
    team = await pool.fetchval("SELECT id FROM teams WHERE name = 'Inbound'")
    for name in ("Ann", "Bob"):
        resp = await client.post(
            f"/app/sales/teams/{team}/members", data={"_csrf": token, "user_id": str(reps[name])}, **post
        )
        assert resp.status == 303
    resp = await client.post("/app/sales/rules", data={"_csrf": token, "name": "All NL", "country": "NL",
                                                       "target": f"team:{team}", "position": "5"}, **post)  # fmt: skip
    assert "Rule+added" in resp.headers["Location"]
    refused = await client.post(
        "/app/sales/rules", data={"_csrf": token, "name": "x", "target": "nobody"}, **post
    )
    assert "Not+saved" in refused.headers["Location"]
    page = await (await client.get("/app/sales/rules")).text()
    assert "All NL" in page
    assert "Ann" in page
    lead = await (await client.post("/api/v1/leads", json={"email": "z@nl.example", "country": "NL"},
                                    headers=auth_headers["admin"])).json()  # fmt: skip
    assert lead["owner_id"] == str(reps["Ann"])
    rule = await pool.fetchval("SELECT id FROM assignment_rules")
    resp = await client.post(
        f"/app/sales/rules/{rule}/active", data={"_csrf": token, "active": "false"}, **post
    )
    assert resp.status == 303
    lead = await (await client.post("/api/v1/leads", json={"email": "y@nl.example", "country": "NL"},
                                    headers=auth_headers["admin"])).json()  # fmt: skip
    assert lead["owner_id"] is None
    await sign_in(client, "sales")
    assert (await client.post("/app/sales/teams", data={"_csrf": await csrf_of(client, "/app/sales/rules"),
                                                        "name": "Mine"}, **post)).status == 403  # fmt: skip
