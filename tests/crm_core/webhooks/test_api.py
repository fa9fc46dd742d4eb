"""The webhooks API through the running crm-core: admins only; loopback, metadata and non-http targets refused
with 422 at creation; the secret shown once; a test ping delivered and signed end to end by the app's own
dispatcher; the delivery log, redelivery and secret rotation with an overlap."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp.test_utils import TestClient

from crm_core.webhooks.helpers import Receiver

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def _until_delivered(
    client: TestClient, headers: dict[str, str], sid: int, n: int
) -> list[dict[str, object]]:
    for _ in range(200):
        resp = await client.get(f"/api/v1/webhooks/{sid}/deliveries", headers=headers)
        items: list[dict[str, object]] = (await resp.json())["items"]
        if sum(1 for d in items if d["status"] == "delivered") >= n:
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"not delivered: {items}")


@pytest.mark.parametrize(
    ("url", "allowed", "why"),
    [
        ("http://127.0.0.1:9/hook", None, "loopback"),
        ("http://localhost:9/hook", None, "loopback"),
        ("http://169.254.169.254/latest/meta-data/", None, "metadata"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16", "metadata"),
        ("http://10.0.0.8/hook", "192.168.0.0/16", "private"),
        ("ftp://example.com/hook", None, "http"),
        ("http://127.0.0.1:9/hook", "not a network", "allowed_network"),
    ],
)
async def test_refused_targets_are_a_422(
    client: TestClient, auth_headers: H, url: str, allowed: str | None, why: str
) -> None:
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": url, "event_types": ["person.created"], "allowed_network": allowed},
        headers=auth_headers["admin"],
    )
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert why in (await resp.json())["detail"]


async def test_only_admins_manage_webhooks(client: TestClient, auth_headers: H) -> None:
    for role in ("sales", "marketing", "service", "read_only"):
        assert (await client.get("/api/v1/webhooks", headers=auth_headers[role])).status == 403
        resp = await client.post(
            "/api/v1/webhooks", json={"url": "https://hooks.example.com/x", "event_types": ["deal.won"]},
            headers=auth_headers[role],
        )  # fmt: skip
        assert resp.status == 403
    assert (await client.get("/api/v1/webhooks")).status == 401


async def test_a_ping_reaches_the_receiver_signed_and_the_log_shows_it(
    client: TestClient, auth_headers: H, receiver: Receiver
) -> None:
    """An admin allows 127.0.0.0/8 (the documented escape) for a local receiver; the secret comes once; the
    app's dispatcher delivers the ping, verified by the reference library; redelivery sends the same id again."""
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["person.created"], "allowed_network": "127.0.0.0/8",
              "description": "local receiver"},
        headers=admin,
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    sid, secret = created["id"], created["secret"]
    receiver.secrets = [secret]
    assert secret.startswith("whsec_")
    shown = await (await client.get(f"/api/v1/webhooks/{sid}", headers=admin)).json()
    assert "secret" not in shown
    assert shown["allowed_network"] == "127.0.0.0/8"
    assert secret not in await (await client.get("/api/v1/webhooks", headers=admin)).text()

    assert (await client.post(f"/api/v1/webhooks/{sid}/test", headers=admin)).status == 202
    [delivery] = await _until_delivered(client, admin, sid, 1)
    assert delivery["event_type"] == "ping"
    assert delivery["payload"]["data"] == {"subscription_id": sid}
    assert delivery["last_status"] == 200
    assert receiver.bad == []
    assert len(receiver.received) == 1

    resp = await client.post(f"/api/v1/webhook-deliveries/{delivery['id']}/redeliver", headers=admin)
    assert resp.status == 202
    for _ in range(200):
        if len(receiver.received) == 2:
            break
        await asyncio.sleep(0.05)
    assert [i for i, _ in receiver.received] == [delivery["msg_id"]] * 2  # the same message again

    resp = await client.post(f"/api/v1/webhooks/{sid}/rotate-secret?overlap_seconds=3600", headers=admin)
    new = (await resp.json())["secret"]
    assert new != secret
    receiver.secrets = [secret]  # a receiver still on the old secret keeps verifying during the overlap
    await client.post(f"/api/v1/webhooks/{sid}/test", headers=admin)
    await _until_delivered(client, admin, sid, 2)
    assert receiver.bad == []
    audit = await (await client.get("/api/v1/audit?entity_type=webhook_subscriptions", headers=admin)).text()
    assert "rotate_secret" in audit
    assert secret not in audit
    assert new not in audit


async def test_changes_are_vetted_and_missing_records_are_404(
    client: TestClient, auth_headers: H, receiver: Receiver
) -> None:
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["deal.won"], "allowed_network": "127.0.0.0/8"},
        headers=admin,
    )
    sid = (await resp.json())["id"]
    resp = await client.patch(f"/api/v1/webhooks/{sid}", json={"allowed_network": None}, headers=admin)
    assert resp.status == 422  # the URL would be refused without the network
    resp = await client.patch(f"/api/v1/webhooks/{sid}", json={"event_types": ["nope"]}, headers=admin)
    assert resp.status == 422
    resp = await client.patch(f"/api/v1/webhooks/{sid}", json={"enabled": False}, headers=admin)
    assert (await resp.json())["enabled"] is False
    assert (await client.post(f"/api/v1/webhooks/{sid}/test", headers=admin)).status == 409
    assert (await client.get("/api/v1/webhooks/999999", headers=admin)).status == 404
    assert (await client.get("/api/v1/webhooks/abc", headers=admin)).status == 404
    assert (await client.post("/api/v1/webhook-deliveries/999999/redeliver", headers=admin)).status == 404
    assert (await client.delete(f"/api/v1/webhooks/{sid}", headers=admin)).status == 204
    assert (await client.get(f"/api/v1/webhooks/{sid}", headers=admin)).status == 404


async def test_a_lead_entered_reaches_the_subscriber_through_the_automation_loop(
    client: TestClient, auth_headers: H, receiver: Receiver
) -> None:
    """End to end in crm-core: a rep enters a lead, the domain event goes through the automation loop's handler
    into a delivery, and the receiver gets a signed person.created with the person's id and no e-mail address."""
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["person.created"], "allowed_network": "127.0.0.0/8"},
        headers=auth_headers["admin"],
    )
    receiver.secrets = [(await resp.json())["secret"]]
    resp = await client.post(
        "/api/v1/leads",
        json={"email": "hook.lead@example.com", "first_name": "Hanna"},
        headers=auth_headers["sales"],
    )
    assert resp.status == 201, await resp.text()
    person_id = (await resp.json())["id"]
    for _ in range(300):
        if receiver.received:
            break
        await asyncio.sleep(0.05)
    [(msg_id, body)] = receiver.received
    doc = orjson.loads(body)
    assert doc["type"] == "person.created"
    assert doc["data"]["person_id"] == person_id
    assert b"hook.lead@example.com" not in body
    assert b"Hanna" not in body
    assert msg_id.startswith("msg_")
    assert receiver.bad == []


async def test_a_rules_send_webhook_action_delivers_once_to_its_subscription(
    client: TestClient, auth_headers: H, receiver: Receiver
) -> None:
    """A workflow rule on person.created whose action sends to a subscription (that does not itself subscribe to
    person.created): the receiver gets one signed delivery naming the rule and the person, nothing personal."""
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["deal.won"], "allowed_network": "127.0.0.0/8"},
        headers=admin,
    )
    sub = await resp.json()
    receiver.secrets = [sub["secret"]]
    rule = {
        "name": "Tell the automation tool",
        "trigger_type": "person.created",
        "actions": [{"type": "send_webhook", "subscription_id": sub["id"]}],
    }
    made = await client.post("/api/v1/workflow-rules", json=rule, headers=admin)
    assert made.status == 201, await made.text()
    rid = (await made.json())["id"]
    resp = await client.patch(f"/api/v1/workflow-rules/{rid}", json={"enabled": True}, headers=admin)
    assert resp.status == 200
    resp = await client.post(
        "/api/v1/leads", json={"email": "rule.hook@example.com"}, headers=auth_headers["sales"]
    )
    person_id = (await resp.json())["id"]
    for _ in range(300):
        if receiver.received:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # nothing more comes
    [(_, body)] = receiver.received
    doc = orjson.loads(body)
    assert doc["type"] == "person.created"
    assert doc["data"]["rule_id"] == rid
    assert doc["data"]["person_id"] == person_id
    assert b"rule.hook@example.com" not in body
    assert receiver.bad == []
