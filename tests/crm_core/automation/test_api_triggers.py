"""Changes made through the API trigger rules: a complaint case notifies the support lead, a deal moved to Won tags
its person, a lead entered by a rep starts a rule on new leads; a rule's actions see each change once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.automation.conftest import until
from crm_core.service.helpers import api, case, person

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_cases_deals_and_leads_from_the_api_trigger_their_rules(
    client: TestClient, db: asyncpg.Connection, auth_headers: H
) -> None:
    lead_user = await db.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'")
    admin = auth_headers["admin"]
    rules = [
        {"name": "Complaint → support lead", "trigger_type": "case.created",
         "trigger_params": {"case_type": "complaint"},
         "actions": [{"type": "notify", "user_id": str(lead_user), "text": "A complaint came in"}]},
        {"name": "Won → customer tag", "trigger_type": "deal.won", "actions": [{"type": "add_tag", "tag": "won"}]},
        {"name": "New lead → welcome", "trigger_type": "person.stage_changed", "trigger_params": {"stage": "lead"},
         "actions": [{"type": "set_attribute", "key": "welcomed", "value": True}]},
    ]  # fmt: skip
    for rule in rules:
        await api(client, "POST", "/api/v1/workflow-rules", admin, 201, json={"enabled": True, **rule})
    pid = await person(client, auth_headers["sales"], "cora@acme.example")
    await case(client, auth_headers["sales"], pid, type="fault")
    await case(client, auth_headers["sales"], pid, type="complaint")
    deal = await api(client, "POST", "/api/v1/deals", auth_headers["sales"], 201,
                     json={"title": "Acme rollout", "person_id": pid, "amount": 100})  # fmt: skip
    await api(client, "PATCH", f"/api/v1/deals/{deal['id']}", auth_headers["sales"], 200,
              json={"stage": "Won", "reason": "signed"})  # fmt: skip
    await until(lambda: db.fetchval("SELECT count(*) = 3 FROM rule_runs WHERE status = 'done'"), "three runs")
    notes = await db.fetch("SELECT text, link FROM notifications WHERE user_id = $1", lead_user)
    assert [(n["text"], n["link"]) for n in notes] == [("A complaint came in", f"/app/persons/{pid}")]
    attrs = await db.fetchval("SELECT attributes::text FROM persons WHERE person_id = $1", pid)
    assert '"tags": ["won"]' in attrs
    assert '"welcomed": true' in attrs


async def test_a_case_past_its_due_time_is_announced_breached_once(
    client: TestClient, db: asyncpg.Connection, auth_headers: H
) -> None:
    """The loop finds unresolved cases past due_at: case.breached runs a rule once per case, not once per pass."""
    lead_user = await db.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'")
    await api(client, "POST", "/api/v1/workflow-rules", auth_headers["admin"], 201, json={
        "name": "Breach → support lead", "enabled": True, "trigger_type": "case.breached",
        "actions": [{"type": "notify", "user_id": str(lead_user), "text": "A case breached its service level"}]})  # fmt: skip
    pid = await person(client, auth_headers["sales"], "late@acme.example")
    late = await case(client, auth_headers["sales"], pid)
    on_time = await case(client, auth_headers["sales"], pid)
    await db.execute("UPDATE cases SET due_at = now() - interval '1 minute' WHERE tracking_number = $1",
                     late["tracking_number"])  # fmt: skip
    await until(
        lambda: db.fetchval("SELECT count(*) FROM rule_runs WHERE status = 'done'"), "the breach's run"
    )
    await asyncio.sleep(2.5)  # two more passes of the loop
    runs = await db.fetch("SELECT subject FROM rule_runs")
    assert [r["subject"] for r in runs] == [late["tracking_number"]]
    assert on_time["tracking_number"] != late["tracking_number"]
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1", lead_user) == 1


async def test_a_persons_export_holds_their_workflow_runs_and_lists(
    client: TestClient, db: asyncpg.Connection, auth_headers: H
) -> None:
    """What the rules did about a person, and the static lists they are on, are part of what is held on them."""
    admin = auth_headers["admin"]
    pid = await person(client, auth_headers["sales"], "runs@acme.example")
    lst = await db.fetchval("INSERT INTO lists (name) VALUES ('Webinar guests') RETURNING id")
    await until(
        lambda: db.fetchval("SELECT count(*) = 0 FROM domain_events"), "the lead's own events handled"
    )
    await api(client, "POST", "/api/v1/workflow-rules", admin, 201, json={
        "name": "New lead → webinar list", "enabled": True, "trigger_type": "person.stage_changed",
        "trigger_params": {"stage": "lead"}, "actions": [{"type": "add_to_list", "list_id": lst}]})  # fmt: skip
    await api(
        client, "PATCH", f"/api/v1/persons/{pid}", admin, 200, json={"stage": "prospect", "reason": "x"}
    )
    await api(client, "PATCH", f"/api/v1/persons/{pid}", admin, 200, json={"stage": "lead", "reason": "back"})
    await until(
        lambda: db.fetchval("SELECT count(*) FROM list_members WHERE person_id = $1", pid), "the list"
    )
    doc = await api(client, "GET", f"/api/v1/persons/{pid}/export", admin, 200)
    assert [r["status"] for r in doc["workflow_runs"]] == ["done"]
    assert [m["name"] for m in doc["lists"]] == ["Webinar guests"]
