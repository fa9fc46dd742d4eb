"""The workflow rules' API: bad rules are a 422 problem naming the field, the test endpoint changes nothing,
only admins and marketers manage rules, and every change is audited."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

GOOD: dict[str, Any] = {
    "name": "Hot lead",
    "trigger_type": "score.changed",
    "trigger_params": {"threshold": 50},
    "conditions": [{"field": "country", "op": "eq", "value": "DE"}],
    "actions": [
        {"type": "create_task", "title": "Call", "due_in_hours": 2},
        {"type": "add_tag", "tag": "hot"},
    ],
}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"trigger_type": "moon.phase"}, "trigger_type"),
    ({"conditions": [{"field": "shoe_size", "op": "eq", "value": 1}]}, "field"),
    ({"conditions": [{"field": "stage", "op": "like", "value": "x"}]}, "op"),
    ({"conditions": [{"field": "score", "op": "gt", "value": "lots"}]}, "conditions"),
    ({"actions": [{"type": "launch_rocket"}]}, "actions"),
    ({"actions": [{"type": "create_task"}]}, "actions"),
    ({"actions": []}, "actions"),
    ({"trigger_type": "form.submitted", "trigger_params": {"threshold": 5}}, "threshold"),
    ({"delay_seconds": -1}, "delay_seconds"),
    ({"unless_activity": "telepathy"}, "unless_activity"),
]


async def test_a_bad_rule_is_a_422_problem_naming_what_is_wrong(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    """An unknown trigger, field, op or action, a missing action field, a threshold on the wrong trigger..."""
    for change, names in BAD:
        resp = await client.post("/api/v1/workflow-rules", json=GOOD | change, headers=auth_headers["admin"])
        assert resp.status == 422, change
        assert resp.content_type == "application/problem+json"
        assert names in (await resp.json())["detail"], change
    listed = await client.get("/api/v1/workflow-rules", headers=auth_headers["admin"])
    assert (await listed.json())["items"] == []


async def test_rules_are_managed_by_admins_and_marketers_and_audited(
    client: TestClient, auth_headers: dict[str, dict[str, str]], pg_dsn: str, schema: str
) -> None:
    denied = await client.post("/api/v1/workflow-rules", json=GOOD, headers=auth_headers["sales"])
    assert denied.status == 403
    made = await client.post("/api/v1/workflow-rules", json=GOOD, headers=auth_headers["marketing"])
    assert made.status == 201
    rule = await made.json()
    assert rule["enabled"] is False
    assert rule["conditions"] == GOOD["conditions"]
    changed = await client.patch(f"/api/v1/workflow-rules/{rule['id']}", json={"enabled": True},
                                 headers=auth_headers["admin"])  # fmt: skip
    assert (await changed.json())["enabled"] is True
    listed = await client.get("/api/v1/workflow-rules", headers=auth_headers["read_only"])
    assert [r["name"] for r in (await listed.json())["items"]] == ["Hot lead"]
    gone = await client.delete(f"/api/v1/workflow-rules/{rule['id']}", headers=auth_headers["admin"])
    assert gone.status == 204
    missing = await client.get(f"/api/v1/workflow-rules/{rule['id']}", headers=auth_headers["admin"])
    assert missing.status == 404
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        actions = await conn.fetch(
            "SELECT action FROM audit_log WHERE entity_type = 'workflow_rules' ORDER BY id"
        )
    finally:
        await conn.close()
    assert [a["action"] for a in actions] == ["create", "update", "delete"]


async def test_the_test_endpoint_says_what_would_happen_and_changes_nothing(
    client: TestClient, auth_headers: dict[str, dict[str, str]], pg_dsn: str, schema: str
) -> None:
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        de, fr = new_id(), new_id()
        for person, country in ((de, "DE"), (fr, "FR")):
            await conn.execute(
                "INSERT INTO persons (person_id, first_seen, last_seen, country, stage)"
                " VALUES ($1, now(), now(), $2, 'lead')", person, country,
            )  # fmt: skip
        made = await client.post("/api/v1/workflow-rules", json=GOOD, headers=auth_headers["admin"])
        rule = await made.json()
        before = await conn.fetchval("SELECT count(*) FROM audit_log")
        url = f"/api/v1/workflow-rules/{rule['id']}/test"
        yes = await (await client.post(url, json={"person_id": de}, headers=auth_headers["admin"])).json()
        assert yes["would_run"] is True
        assert yes["actions"] == ["create_task (title=Call, due_in_hours=2)", "add_tag (tag=hot)"]
        no = await (await client.post(url, json={"person_id": fr}, headers=auth_headers["admin"])).json()
        assert no == {"would_run": False, "reason": "condition not met: country eq DE", "delay_seconds": 0,
                      "unless_activity": None, "actions": []}  # fmt: skip
        unknown = await client.post(url, json={"person_id": new_id()}, headers=auth_headers["admin"])
        assert unknown.status == 404
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM rule_runs) AS runs,"
            " (SELECT count(*) FROM audit_log) AS audit,"
            " (SELECT count(*) FROM persons WHERE attributes ? 'tags') AS tagged"
        )
        assert dict(counts) == {"tasks": 0, "runs": 0, "audit": before, "tagged": 0}
    finally:
        await conn.close()


async def test_a_rules_json_is_stored_as_json_not_as_a_string_of_it(
    client: TestClient, auth_headers: dict[str, dict[str, str]], pg_dsn: str, schema: str
) -> None:
    """SQL reads the rules' JSON (which lists a rule uses), so it must be arrays and objects, not one JSON string
    (text handed to the pool's jsonb codec is encoded again); an update keeps the shape."""
    made = await client.post("/api/v1/workflow-rules", json=GOOD, headers=auth_headers["admin"])
    assert made.status == 201
    rule = await made.json()
    changed = await client.patch(
        f"/api/v1/workflow-rules/{rule['id']}", json={"name": "Hotter"}, headers=auth_headers["admin"]
    )
    assert changed.status == 200
    assert (await changed.json())["actions"] == GOOD["actions"]
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        shapes = await conn.fetchrow(
            "SELECT jsonb_typeof(trigger_params) AS p, jsonb_typeof(conditions) AS c, jsonb_typeof(actions) AS a,"
            " actions->0->>'type' AS first FROM workflow_rules WHERE id = $1",
            rule["id"],
        )
    finally:
        await conn.close()
    assert dict(shapes) == {"p": "object", "c": "array", "a": "array", "first": "create_task"}


async def test_a_consent_condition_reads_the_persons_recorded_marketing_consent(
    client: TestClient, auth_headers: dict[str, dict[str, str]], pg_dsn: str, schema: str
) -> None:
    """The condition follows what the person said (form, snippet, agent, API: persons.consent), not a custom
    attribute of the same meaning: a withdrawal stops the rule, never stated is not given."""
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        granted, withdrawn, silent = new_id(), new_id(), new_id()
        for person in (granted, withdrawn, silent):
            await conn.execute(
                "INSERT INTO persons (person_id, first_seen, last_seen, stage, attributes)"
                """ VALUES ($1, now(), now(), 'lead', '{"marketing_consent": true}')""", person,
            )  # fmt: skip
    finally:
        await conn.close()
    admin = auth_headers["admin"]
    for person, said in ((granted, True), (withdrawn, True), (withdrawn, False)):
        put = await client.put(f"/api/v1/persons/{person}/consent", json={"marketing": said}, headers=admin)
        assert put.status == 200
    rule = {**GOOD, "conditions": [{"field": "consent", "op": "consent", "value": True}]}
    made = await client.post("/api/v1/workflow-rules", json=rule, headers=admin)
    assert made.status == 201, await made.text()
    url = f"/api/v1/workflow-rules/{(await made.json())['id']}/test"
    verdicts = {}
    for person in (granted, withdrawn, silent):
        answer = await client.post(url, json={"person_id": person}, headers=admin)
        verdicts[person] = (await answer.json())["would_run"]
    assert verdicts == {granted: True, withdrawn: False, silent: False}
