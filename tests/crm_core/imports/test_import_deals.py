"""Imported deals (issue 15): the board's totals (deal_totals, kept by statement-level triggers since migration 0057)
equal a hand computation after an import of many deals at once and after single-deal edits through the API; and an
imported won deal raises what a deal moved to Won raises (``deal.stage_changed``, ``deal.won``), so a workflow rule
on them runs once per imported deal and not again when the same file is imported with on_duplicate=skip."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.automation.conftest import until
from crm_core.imports.test_imports import post, text

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
NIL = "00000000-0000-0000-0000-000000000000"
STAGES = ("Qualified", "Meeting", "Proposal", "Won", "Lost")
TOTALS = """
SELECT s.name AS stage, t.owner_key::text AS owner, t.currency, t.deals, t.amount
  FROM deal_totals t JOIN pipeline_stages s ON s.id = t.stage_id WHERE t.deals <> 0 OR t.amount <> 0"""


def deals_csv(n: int, owner: str) -> list[list[str]]:
    """``n`` deals with a company, spread over five stages, two currencies and an owner for every third."""
    rows = [["Deal name", "Value", "Currency", "Stage", "Company", "Lost reason", "Owner"]]
    for i in range(n):
        stage = STAGES[i % 5]
        rows.append([f"Deal {i}", f"{100 + i}.25", "USD" if i % 4 == 0 else "EUR", stage, "Acme",
                     "budget" if stage == "Lost" else "", owner if i % 3 == 0 else ""])  # fmt: skip
    return rows


def hand_totals(rows: list[list[str]], rep: str) -> dict[tuple[str, str, str], tuple[int, Decimal]]:
    """The totals per (stage, owner, currency) summed by hand from the file's rows."""
    out: dict[tuple[str, str, str], tuple[int, Decimal]] = {}
    for _, value, currency, stage, _, _, owner in rows[1:]:
        key = (stage, rep if owner else NIL, currency)
        n, amount = out.get(key, (0, Decimal(0)))
        out[key] = (n + 1, amount + Decimal(value))
    return out


async def totals(conn: asyncpg.Connection) -> dict[tuple[str, str, str], tuple[int, Decimal]]:
    return {
        (r["stage"], r["owner"], r["currency"]): (r["deals"], r["amount"]) for r in await conn.fetch(TOTALS)
    }


async def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_the_boards_totals_match_a_hand_count_after_an_import_and_after_api_edits(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """A manager's board must add up: 5,100 deals imported (two chunks, each one INSERT), then one deal moved,
    re-owned, re-priced, re-titled and deleted, one at a time through the API."""
    admin, sales = auth_headers["admin"], auth_headers["sales"]
    rep = str(await crm_conn.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'"))
    await ok(await client.post("/api/v1/companies", json={"name": "Acme"}, headers=sales), 201)
    rows = deals_csv(5100, "rep@example.com")
    job = await post(client, admin, text(rows), mode="commit", kind="deals")
    assert (job["created"], job["rejected"]) == (5100, 0)
    expected = hand_totals(rows, rep)
    assert await totals(crm_conn) == expected
    again = await post(client, admin, text(rows), mode="commit", kind="deals", on_duplicate="update")
    assert again["updated"] == 5100
    assert await totals(crm_conn) == expected  # an update that changes nothing counted moves nothing

    deal = await crm_conn.fetchrow(
        "SELECT id, amount FROM deals WHERE title = 'Deal 1'"
    )  # Meeting, EUR, no owner
    url = f"/api/v1/deals/{deal['id']}"
    await ok(
        await client.patch(url, json={"stage": "Proposal", "owner_id": rep, "amount": 50}, headers=sales)
    )
    moved_from, moved_to = ("Meeting", NIL, "EUR"), ("Proposal", rep, "EUR")
    n, amount = expected[moved_from]
    expected[moved_from] = (n - 1, amount - deal["amount"])
    n, amount = expected[moved_to]
    expected[moved_to] = (n + 1, amount + Decimal("50.00"))
    await ok(await client.patch(url, json={"title": "Renamed"}, headers=sales))
    assert await totals(crm_conn) == expected
    await crm_conn.execute("DELETE FROM deals WHERE id = $1", deal["id"])
    n, amount = expected[moved_to]
    expected[moved_to] = (n - 1, amount - Decimal("50.00"))
    assert await totals(crm_conn) == expected
    recount = await crm_conn.fetch(
        "SELECT stage_id, coalesce(owner_id::text, $1) AS o, currency, count(*) AS n, sum(amount) AS a FROM deals"
        " GROUP BY 1, 2, 3",
        NIL,
    )
    kept = await crm_conn.fetch("SELECT stage_id, owner_key::text AS o, currency, deals, amount FROM deal_totals"
                                " WHERE deals <> 0")  # fmt: skip
    assert {(r["stage_id"], r["o"], r["currency"], r["n"], r["a"]) for r in recount} == {
        (r["stage_id"], r["o"], r["currency"], r["deals"], r["amount"]) for r in kept
    }


async def _rule(client: TestClient, headers: dict[str, str], **body: Any) -> int:
    resp = await client.post("/api/v1/workflow-rules", json={"enabled": True, **body}, headers=headers)
    assert resp.status == 201, await resp.text()
    rule_id: int = (await resp.json())["id"]
    return rule_id


async def test_a_rule_on_won_deals_runs_once_per_imported_won_deal_and_not_again_on_reimport(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """A 'thank the customer' rule must see deals won before the team moved to Leadline, once each."""
    marketing, admin, sales = auth_headers["marketing"], auth_headers["admin"], auth_headers["sales"]
    won = await _rule(client, marketing, name="Thank", trigger_type="deal.won",
                      actions=[{"type": "add_tag", "tag": "customer"}])  # fmt: skip
    to_proposal = await _rule(
        client, marketing, name="Proposal sent", trigger_type="deal.stage_changed",
        trigger_params={"stage": "Proposal"}, actions=[{"type": "add_tag", "tag": "proposal"}],
    )  # fmt: skip
    await post(
        client, admin, text([["email"]] + [[f"buyer{i}@corp.example"] for i in range(20)]), mode="commit"
    )
    await ok(await client.post("/api/v1/companies", json={"name": "Corp"}, headers=sales), 201)
    rows = [["Deal name", "Value", "Stage", "Email", "Company", "Lost reason"]]
    rows += [[f"Deal {i}", "10", STAGES[i % 5], f"buyer{i}@corp.example", "Corp", "budget" if i % 5 == 4 else ""]
             for i in range(20)]  # fmt: skip
    job = await post(client, admin, text(rows), mode="commit", kind="deals")
    assert job["created"] == 20

    async def runs(rule: int, n: int) -> bool:
        return await crm_conn.fetchval("SELECT count(*) FROM rule_runs WHERE rule_id = $1", rule) >= n

    await until(lambda: runs(won, 4), "a run per imported won deal")
    await until(lambda: runs(to_proposal, 4), "a run per deal imported into Proposal")
    again = await post(client, admin, text(rows), mode="commit", kind="deals", on_duplicate="skip")
    assert (again["created"], again["skipped"]) == (0, 20)
    await until(lambda: crm_conn.fetchval("SELECT count(*) = 0 FROM domain_events"), "the loop drained")
    tagged = await crm_conn.fetch(
        "SELECT emails[1] AS email FROM persons WHERE attributes->'tags' ? 'customer' ORDER BY 1"
    )
    assert [r["email"] for r in tagged] == sorted(f"buyer{i}@corp.example" for i in range(3, 20, 5))
    per_deal = await crm_conn.fetch(
        "SELECT rule_id, count(*) AS n FROM rule_runs GROUP BY rule_id, trigger_key"
    )
    assert Counter(r["rule_id"] for r in per_deal) == {won: 4, to_proposal: 4}
    assert {r["n"] for r in per_deal} == {1}

    rows[1][2] = "Won"  # Deal 0 was Qualified: an update moves it, and that move is announced like a rep's
    moved = await post(client, admin, text(rows), mode="commit", kind="deals", on_duplicate="update")
    assert moved["updated"] == 20
    await until(lambda: runs(won, 5), "a run for the deal the update won")
    await until(lambda: crm_conn.fetchval("SELECT count(*) = 0 FROM domain_events"), "the loop drained")
    assert await crm_conn.fetchval("SELECT count(*) FROM rule_runs WHERE rule_id = $1", won) == 5
    assert await crm_conn.fetchval("SELECT count(*) FROM rule_runs WHERE rule_id = $1", to_proposal) == 4
