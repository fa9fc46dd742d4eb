"""Imported people announce what a rep-entered lead announces (issue 16): a workflow rule on "person became lead"
runs once per imported person, a rule on "lead assigned" once per row naming an owner, and importing the same file
again with on_duplicate=skip runs nothing more; with nobody listening (no enabled rule or webhook on those types)
an import writes no events at all. The events of a chunk are one multi-row insert (unit below)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.automation.conftest import until
from crm_core.imports.test_imports import post, text
from leadline_crm.automation import events
from leadline_crm.imports import load

H = dict[str, dict[str, str]]


def test_a_chunks_lead_events_are_the_ones_a_rep_entered_lead_gets() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    owner = uuid.uuid4()
    found = load.lead_events([{"person_id": a, "owner_id": None}, {"person_id": b, "owner_id": owner}])
    assert [(e.type, e.person_id) for e in found] == [
        ("person.created", a), ("person.stage_changed", a),
        ("person.created", b), ("person.stage_changed", b), ("lead.assigned", b),
    ]  # fmt: skip
    assert found[0].source_key == f"person:{a}"  # enter_lead's key: a person is created once
    assert found[1].data == {"from": "anonymous", "to": "lead"}
    assert found[4].data == {"owner_id": str(owner)}


async def _rule(client: TestClient, headers: dict[str, str], **body: Any) -> int:
    resp = await client.post("/api/v1/workflow-rules", json={"enabled": True, **body}, headers=headers)
    assert resp.status == 201, await resp.text()
    rule_id: int = (await resp.json())["id"]
    return rule_id


@pytest.mark.integration
async def test_a_rule_on_becoming_a_lead_runs_once_per_imported_person_and_not_again_on_reimport(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    marketing, admin = auth_headers["marketing"], auth_headers["admin"]
    became_lead = await _rule(
        client, marketing, name="Welcome imported", trigger_type="person.stage_changed",
        trigger_params={"stage": "lead"}, actions=[{"type": "add_tag", "tag": "welcomed"}],
    )  # fmt: skip
    assigned = await _rule(
        client, marketing, name="Tell the owner", trigger_type="lead.assigned",
        actions=[{"type": "add_tag", "tag": "owned"}],
    )  # fmt: skip
    rows = [["email", "first_name", "owner"]]
    rows += [[f"imp{i}@corp.example", f"Imp{i}", "rep@example.com" if i % 3 == 0 else ""] for i in range(30)]
    body = text(rows)
    job = await post(client, admin, body, mode="commit", on_duplicate="skip")
    assert job["created"] == 30

    async def runs(rule: int, n: int) -> bool:
        return await crm_conn.fetchval("SELECT count(*) FROM rule_runs WHERE rule_id = $1", rule) >= n

    await until(lambda: runs(became_lead, 30), "a run per imported person")
    await until(lambda: runs(assigned, 10), "a run per row naming an owner")
    await until(
        lambda: crm_conn.fetchval("SELECT count(*) FROM persons WHERE attributes->'tags' ? 'welcomed'"),
        "the rule's tag",
    )
    again = await post(client, admin, body, mode="commit", on_duplicate="skip")
    assert (again["created"], again["skipped"]) == (0, 30)
    await until(lambda: crm_conn.fetchval("SELECT count(*) = 0 FROM domain_events"), "the loop drained")
    per_person = await crm_conn.fetch(
        "SELECT person_id, count(*) AS n FROM rule_runs WHERE rule_id = $1 GROUP BY person_id", became_lead
    )
    assert len(per_person) == 30
    assert {r["n"] for r in per_person} == {1}
    assert await crm_conn.fetchval("SELECT count(*) FROM rule_runs WHERE rule_id = $1", assigned) == 10
    tagged = await crm_conn.fetchval("SELECT count(*) FROM persons WHERE attributes->'tags' ? 'welcomed'")
    assert tagged == 30


@pytest.mark.integration
async def test_only_the_types_somebody_listens_to_are_written(crm_conn: asyncpg.Connection) -> None:
    """No app (no loop) on this schema: the rows written stay to be counted."""
    person, owner = uuid.uuid4(), uuid.uuid4()
    found = load.lead_events([{"person_id": person, "owner_id": owner}])
    await events.emit_listened(crm_conn, found)
    assert await crm_conn.fetchval("SELECT count(*) FROM domain_events") == 0  # nobody listens
    await crm_conn.execute(
        "INSERT INTO workflow_rules (name, enabled, trigger_type) VALUES ('off', false, 'person.created'),"
        " ('on', true, 'lead.assigned')"
    )
    await events.emit_listened(crm_conn, found)
    rows = await crm_conn.fetch("SELECT type, person_id FROM domain_events")
    assert [(r["type"], r["person_id"]) for r in rows] == [("lead.assigned", person)]
