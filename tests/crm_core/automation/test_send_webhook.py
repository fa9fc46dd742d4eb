"""A workflow's "send webhook" action, carried out set-based with the batch's other simple actions (one statement
for the whole batch): each run queues one delivery with the rule and the person, a replay of the same events queues
nothing more, and a marketing receiver is told nothing about a person without marketing consent."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from crm_core.webhooks.helpers import SEALER
from leadline_crm.automation import events, rules
from leadline_crm.automation.runner import Runner
from leadline_crm.webhooks import signing
from leadline_shared import pg

pytestmark = pytest.mark.integration


async def _subscription(conn: asyncpg.Connection, purpose: str) -> int:
    sid: int = await conn.fetchval(
        "INSERT INTO webhook_subscriptions (url, event_types, secret, created_by, purpose)"
        " VALUES ('https://hooks.example.com/x', ARRAY['deal.won'], $1, 'test', $2) RETURNING id",
        SEALER.seal(signing.new_secret()),
        purpose,
    )
    return sid


async def _person(conn: asyncpg.Connection, marketing: bool) -> str:
    said = {"marketing": {"granted": marketing, "at": datetime.now(UTC).isoformat(), "source": "form"}}
    pid = await conn.fetchval(
        "INSERT INTO persons (person_id, first_seen, last_seen, consent)"
        " VALUES (gen_random_uuid(), now(), now(), $1) RETURNING person_id",
        said,
    )
    return str(pid)


async def test_send_webhook_runs_queue_once_each_and_respect_consent(pg_dsn: str, crm_schema: str) -> None:
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await _flow(pool, conn)
    finally:
        await pool.close()


async def _flow(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    ops, marketing = await _subscription(conn, "operations"), await _subscription(conn, "marketing")
    actions = [
        {"type": "add_tag", "tag": "hot"},
        {"type": "send_webhook", "subscription_id": ops},
        {"type": "send_webhook", "subscription_id": marketing},
    ]
    rule_id = await conn.fetchval(
        "INSERT INTO workflow_rules (name, enabled, trigger_type, trigger_params, conditions, actions)"
        " VALUES ('hot form', true, 'form.submitted', '{}', '[]', $1) RETURNING id",
        actions,
    )
    yes, no = await _person(conn, True), await _person(conn, False)
    batch = [events.NewEvent("form.submitted", f"f-{p}", p, "demo", {"form": "demo"}) for p in (yes, no)]
    evaluator = rules.Evaluator()
    runner = Runner(pool, [evaluator])
    for _ in range(2):  # the second pass replays the same events: nothing more is queued
        await events.emit(conn, batch)
        while await runner.step(conn):
            pass
    rows = await conn.fetch("SELECT subscription_id, person_id::text AS p, payload FROM webhook_deliveries")
    assert sorted((r["subscription_id"], r["p"]) for r in rows) == sorted(
        [(ops, yes), (ops, no), (marketing, yes)]
    )
    payload = orjson.loads(rows[0]["payload"]) if isinstance(rows[0]["payload"], str) else rows[0]["payload"]
    assert payload["data"]["rule_id"] == rule_id
    assert payload["data"]["rule"] == "hot form"
    assert payload["data"]["person_id"] in (yes, no)
    runs = await conn.fetch("SELECT status, actions_done FROM rule_runs WHERE rule_id = $1", rule_id)
    assert [r["status"] for r in runs] == ["done", "done"]
    tags = await conn.fetch("SELECT attributes->'tags' AS t FROM persons")
    assert all(
        orjson.loads(r["t"]) == ["hot"] if isinstance(r["t"], str) else r["t"] == ["hot"] for r in tags
    )
