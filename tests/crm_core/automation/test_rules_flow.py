"""Workflow rules end to end against real Kafka and PostgreSQL: what a rule does happens once per triggering event,
delayed steps wait in PostgreSQL (and survive a restart), a rule never runs on its own effects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_core.automation.conftest import until
from crm_core.builders import event, form
from leadline_crm.app import create_app
from leadline_crm.automation import events
from leadline_crm.settings import CrmSettings
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


async def _publish(bootstrap: str, topic: str, batch: list[EnrichedEvent]) -> None:
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for e in batch:
            await producer.send(topic, e.to_json(), key=e.person_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _rule(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/workflow-rules", json={"enabled": True, **body}, headers=headers)
    assert resp.status == 201, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_a_score_threshold_rule_assigns_and_creates_a_task_once_when_events_are_replayed(
    client: TestClient,
    db: asyncpg.Connection,
    auth_headers: dict[str, dict[str, str]],
    kafka_bootstrap: str,
    topics: kafka.Topics,
) -> None:
    """The same enriched events published twice through Kafka give one owner change, one task and one run."""
    rep = await db.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'")
    rule = await _rule(
        client, auth_headers["marketing"], name="Hot lead", trigger_type="score.changed",
        trigger_params={"threshold": 25},
        actions=[{"type": "assign_owner", "user_id": str(rep)},
                 {"type": "create_task", "title": "Call the hot lead", "due_in_hours": 4}],
    )  # fmt: skip
    person = new_id()
    batch = [
        form(person, email="kim@acme.example"),
        event(person, context={"url": "https://x.example/pricing"}),
    ]
    await _publish(kafka_bootstrap, topics.enriched, batch)

    async def done() -> Any:
        return await db.fetchval("SELECT count(*) FROM rule_runs WHERE status = 'done'")

    await until(done, "the rule's run")
    marker = event(person)  # after the replay on the person's partition: once stored, the replay was consumed
    await _publish(kafka_bootstrap, topics.enriched, [*batch, marker])
    await until(
        lambda: db.fetchval("SELECT count(*) FROM touchpoints WHERE event_id = $1", marker.event_id),
        "the replay consumed",
    )
    await asyncio.sleep(1.5)  # let the loop pass over anything the replay could have produced
    assert await db.fetchval("SELECT owner_id FROM persons WHERE person_id = $1", person) == rep
    assert await db.fetchval("SELECT count(*) FROM tasks WHERE person_id = $1", person) == 1
    assert await db.fetchval("SELECT title FROM tasks WHERE person_id = $1", person) == "Call the hot lead"
    runs = await client.get(f"/api/v1/workflow-rules/{rule['id']}/runs", headers=auth_headers["read_only"])
    items = (await runs.json())["items"]
    assert [(r["status"], r["person_id"]) for r in items] == [("done", person)]
    mine = await client.get(f"/api/v1/persons/{person}/workflow-runs", headers=auth_headers["read_only"])
    assert [r["rule_name"] for r in (await mine.json())["items"]] == ["Hot lead"]
    assert await db.fetchval("SELECT count(*) FROM domain_events") == 0  # all handled and deleted


async def _delayed_rule(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return await _rule(
        client, headers, name="Demo follow-up", trigger_type="form.submitted", trigger_params={"form": "demo"},
        delay_seconds=3600, unless_activity="phone_call",
        actions=[{"type": "add_tag", "tag": "demo-follow-up"}],
    )  # fmt: skip


async def _submit(bootstrap: str, topics: kafka.Topics) -> str:
    person = new_id()
    await _publish(bootstrap, topics.enriched, [form(person, email=f"{person[:8]}@acme.example")])
    return person


async def test_a_delayed_rule_fires_without_a_call_and_is_skipped_after_one(
    client: TestClient,
    db: asyncpg.Connection,
    auth_headers: dict[str, dict[str, str]],
    kafka_bootstrap: str,
    topics: kafka.Topics,
) -> None:
    """'3 days after the form unless a call was logged': the wait is a row; once due (moved here in SQL) it acts
    for the person nobody called and is skipped, with the reason, for the one who got a call."""
    await _delayed_rule(client, auth_headers["marketing"])
    quiet, called = await _submit(kafka_bootstrap, topics), await _submit(kafka_bootstrap, topics)
    await until(
        lambda: db.fetchval("SELECT count(*) = 2 FROM rule_runs WHERE status = 'waiting'"), "waiting runs"
    )
    await db.execute("INSERT INTO activities (person_id, kind) VALUES ($1, 'phone_call')", called)
    await db.execute("UPDATE rule_runs SET due_at = now()")
    await until(
        lambda: db.fetchval("SELECT count(*) = 0 FROM rule_runs WHERE status = 'waiting'"), "due runs"
    )
    rows = dict(
        await db.fetch("SELECT person_id::text, status || ':' || coalesce(reason, '') FROM rule_runs")
    )
    assert rows == {quiet: "done:", called: "skipped:a phone call was logged"}
    tags = await db.fetchval("SELECT attributes->'tags' FROM persons WHERE person_id = $1", quiet)
    assert json.loads(tags) == ["demo-follow-up"]
    assert await db.fetchval("SELECT attributes->'tags' FROM persons WHERE person_id = $1", called) is None


async def test_waiting_runs_survive_a_restart(
    crm_settings: CrmSettings,
    pg_dsn: str,
    schema: str,
    auth_headers: dict[str, dict[str, str]],
    client: TestClient,
    db: asyncpg.Connection,
    kafka_bootstrap: str,
    topics: kafka.Topics,
) -> None:
    """crm-core closed while runs wait, and started again: none is lost, each is carried out once."""
    await _delayed_rule(client, auth_headers["marketing"])
    people = [await _submit(kafka_bootstrap, topics) for _ in range(3)]
    await until(
        lambda: db.fetchval("SELECT count(*) = 3 FROM rule_runs WHERE status = 'waiting'"), "waiting runs"
    )
    await client.close()  # crm-core stops
    await db.execute("UPDATE rule_runs SET due_at = now()")
    async with TestClient(TestServer(create_app(crm_settings))):
        await until(
            lambda: db.fetchval("SELECT count(*) = 3 FROM rule_runs WHERE status = 'done'"), "runs done"
        )
    tagged = await db.fetchval(
        "SELECT count(*) FROM persons WHERE person_id = ANY($1::uuid[]) AND attributes->'tags' ? 'demo-follow-up'",
        people,
    )
    assert tagged == 3


async def test_a_rule_that_would_trigger_itself_is_stopped_with_the_reason(
    client: TestClient, db: asyncpg.Connection, auth_headers: dict[str, dict[str, str]]
) -> None:
    """A rule on stage changes that moves the stage: the move it makes comes back to it and is stopped."""
    person = new_id()
    await db.execute(
        "INSERT INTO persons (person_id, stage, first_seen, last_seen) VALUES ($1, 'lead', now(), now())",
        person,
    )
    rule = await _rule(
        client, auth_headers["admin"], name="Leads to prospects", trigger_type="person.stage_changed",
        actions=[{"type": "move_stage", "stage": "prospect", "reason": "rule"}],
    )  # fmt: skip
    await events.emit(db, [events.NewEvent("person.stage_changed", "t1", person, None,
                                           {"from": "anonymous", "to": "lead"})])  # fmt: skip
    await db.execute("SELECT pg_notify(left('automation_' || current_schema(), 63), '')")
    await until(lambda: db.fetchval("SELECT count(*) = 2 FROM rule_runs"), "both runs")
    rows = await db.fetch(
        "SELECT status, reason, chain FROM rule_runs WHERE rule_id = $1 ORDER BY id", rule["id"]
    )
    assert [(r["status"], r["reason"]) for r in rows] == [("done", None), ("stopped", "would trigger itself")]
    assert rows[1]["chain"] == [rule["id"]]
    assert await db.fetchval("SELECT stage FROM persons WHERE person_id = $1", person) == "prospect"
