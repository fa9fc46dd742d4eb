"""Webhook payloads respect consent (issue 16): a subscription for marketing is told nothing about a person who has
not granted marketing consent (withdrawn or never given), neither when the event is queued nor when a queued or
retried delivery is sent after a withdrawal; an operations subscription still gets ids and changed fields, never
contact data; a workflow's "send webhook" action obeys the same rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.webhooks.helpers import SEALER, Receiver
from crm_core.webhooks.test_dispatch import fan_out, running, subscribe, until
from leadline_crm.automation.events import DomainEvent
from leadline_crm.webhooks import fanout
from leadline_crm.webhooks.dispatch import Dispatcher

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


def _said(granted: bool | None) -> dict[str, Any]:
    if granted is None:
        return {}
    return {"marketing": {"granted": granted, "at": datetime.now(UTC).isoformat(), "source": "form"}}


async def person(pool: asyncpg.Pool, marketing: bool | None) -> uuid.UUID:
    """A person who granted (True), withdrew (False) or never stated (None) marketing consent."""
    pid: uuid.UUID = await pool.fetchval(
        "INSERT INTO persons (person_id, first_seen, last_seen, emails, consent)"
        " VALUES (gen_random_uuid(), now(), now(), ARRAY['p@example.com'], $1::jsonb) RETURNING person_id",
        _said(marketing),  # the pool's jsonb codec encodes it
    )
    return pid


def event(kind: str, who: uuid.UUID | None, key: str) -> DomainEvent:
    data = {"stage": "lead", "email": "p@example.com"}
    return DomainEvent(0, kind, who, None, data, key, datetime.now(UTC))


async def purposes(pool: asyncpg.Pool, purpose: str, sid: int) -> None:
    await pool.execute("UPDATE webhook_subscriptions SET purpose = $2 WHERE id = $1", sid, purpose)


async def test_a_marketing_subscription_hears_only_of_consenting_persons(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """Queued: the marketing subscription gets the consenting person's event and the person-less one; the
    operations subscription gets all four, without the e-mail address."""
    marketing, _ = await subscribe(pool, receiver.url, ["person.stage_changed"])
    operations, _ = await subscribe(pool, receiver.url, ["person.stage_changed"])
    await purposes(pool, "marketing", marketing)
    yes, withdrew, never = await person(pool, True), await person(pool, False), await person(pool, None)
    await fan_out(
        pool, [event("person.stage_changed", p, f"k{i}") for i, p in enumerate((yes, withdrew, never))]
    )
    await fan_out(pool, [event("person.stage_changed", None, "nobody")])
    rows = await pool.fetch(
        "SELECT subscription_id, person_id, payload::text AS body FROM webhook_deliveries"
    )
    told = {(r["subscription_id"], r["person_id"]) for r in rows}
    assert told == {(marketing, yes), (marketing, None)} | {
        (operations, p) for p in (yes, withdrew, never, None)
    }
    assert not [r for r in rows if "p@example.com" in r["body"]]


async def test_a_withdrawal_stops_what_was_queued_and_the_workflow_action(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """Queued while she consented, withdrawn before the send: the dispatcher withholds it (given up at once with
    the reason, no failing streak); the operations copy goes out. A workflow's send-webhook action for her queues
    nothing for the marketing receiver."""
    marketing, m_secret = await subscribe(pool, receiver.url, ["person.stage_changed"])
    operations, o_secret = await subscribe(pool, receiver.url, ["person.stage_changed"])
    receiver.secrets = [m_secret, o_secret]
    await purposes(pool, "marketing", marketing)
    she = await person(pool, True)
    await fan_out(pool, [event("person.stage_changed", she, "k1")])
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 2
    await pool.execute(
        "UPDATE persons SET consent = $2::jsonb WHERE person_id = $1",
        she,
        _said(False),
    )
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05)):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 0 FROM webhook_deliveries WHERE status = 'pending'")
        )
    rows = {r["subscription_id"]: r for r in await pool.fetch("SELECT * FROM webhook_deliveries")}
    assert rows[operations]["status"] == "delivered"
    assert rows[marketing]["status"] == "dead"
    assert rows[marketing]["last_error"] == "withheld: the person has not consented to marketing"
    assert len(receiver.received) == 1  # only the operations copy reached the receiver
    assert (
        await pool.fetchval("SELECT consecutive_failures FROM webhook_subscriptions WHERE id = $1", marketing)
        == 0
    )
    async with pool.acquire() as conn:
        data = {"rule": "hot lead"}
        assert not await fanout.enqueue(conn, marketing, "form.submitted", data, key="rule:1:x", person=she)
        assert await fanout.enqueue(conn, operations, "form.submitted", data, key="rule:1:x", person=she)


async def test_the_purpose_is_set_through_the_api(client: TestClient, auth_headers: H) -> None:
    """Operations by default; marketing when asked; anything else a 422 naming purpose."""
    admin = auth_headers["admin"]
    body = {"url": "https://hooks.example.com/x", "event_types": ["deal.won"]}
    resp = await client.post("/api/v1/webhooks", json=body, headers=admin)
    assert (await resp.json())["purpose"] == "operations"
    resp = await client.post("/api/v1/webhooks", json=body | {"purpose": "marketing"}, headers=admin)
    assert resp.status == 201
    assert (await resp.json())["purpose"] == "marketing"
    resp = await client.post("/api/v1/webhooks", json=body | {"purpose": "spam"}, headers=admin)
    assert resp.status == 422
    assert "purpose" in (await resp.json())["detail"]
