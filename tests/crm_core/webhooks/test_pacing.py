"""A per-subscription rate limit on dispatch (issue 16): a hot subscription's backlog goes out at its own pace
while another subscription's deliveries go out at once beside it; the limit is set per subscription through the
API and the settings page, and refused with a clear 422 when it is not a rate."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in
from crm_core.webhooks.helpers import SEALER, Receiver
from crm_core.webhooks.test_dispatch import events, fan_out, running, subscribe, until
from leadline_crm.http.keys import POOL
from leadline_crm.webhooks import fanout
from leadline_crm.webhooks.dispatch import Dispatcher
from leadline_crm.webhooks.pacing import Pacer

H = dict[str, dict[str, str]]


def test_a_bucket_allows_a_seconds_worth_then_its_rate() -> None:
    """Unit: 5/s allows 5 at once, none more until time passes, then 5 a second; the in-flight share caps it
    too, and a finished attempt gives its slot back."""
    now = [100.0]
    pacer = Pacer(share=3, ticks=lambda: now[0])
    for _ in range(3):
        pacer.sent(7, 5.0)
    assert pacer.allowances() == ([7], [0])  # 2 tokens left, but 3 of a share of 3 in flight
    for _ in range(3):
        pacer.finished(7)
    assert pacer.allowances() == ([7], [2])
    pacer.sent(7, 5.0)
    pacer.sent(7, 5.0)
    assert pacer.allowances() == ([7], [0])
    assert pacer.next_token() == pytest.approx(0.2)
    now[0] += 0.4
    assert pacer.allowances() == ([7], [1])  # 2 tokens again, but 2 of the share of 3 in flight
    pacer.finished(7)
    pacer.finished(7)
    now[0] += 10
    assert pacer.allowances() == ([7], [3])  # at most a second's worth (5) kept, and never above the share


def test_a_lone_subscription_may_use_every_slot_until_another_is_sent_to() -> None:
    """Unit: the reserve kept for other receivers applies once there is another receiver this term."""
    pacer = Pacer(share=3, ticks=lambda: 0.0, slots=8)
    for _ in range(5):
        pacer.sent(1, 100.0)
    assert pacer.most() == 8
    assert pacer.allowances() == ([1], [3])  # 8 slots, 5 in flight
    pacer.sent(2, 100.0)
    assert pacer.most() == 3
    assert pacer.allowances() == ([1, 2], [0, 2])


@pytest.mark.integration
async def test_a_hot_subscription_is_paced_and_cannot_starve_another(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """400 deliveries queued for a subscription limited to 20/s, then 30 for another: the other's 30 all arrive
    within a couple of seconds, long before the hot backlog is through, and the hot one is never sent more than
    its rate allows (a second's worth at first, then 20 a second)."""
    _, hot_secret = await subscribe(pool, receiver.url, ["deal.won"], rate=20)
    _, other_secret = await subscribe(pool, receiver.url, ["person.created"])
    receiver.secrets = [hot_secret, other_secret]
    await fan_out(pool, events(400, kind="deal.won"))
    await fan_out(pool, events(30, kind="person.created", start=1000))
    others = {fanout.msg_id("person.created", f"evt-{i}") for i in range(1000, 1030)}
    loop = asyncio.get_running_loop()
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05)):
        started = loop.time()
        await until(lambda: others <= receiver.ids, timeout=10)
        took = loop.time() - started
        await asyncio.sleep(1.0)
        elapsed = loop.time() - started
        hot = len(receiver.ids - others)
    assert took < 3.0
    assert hot <= 20 + 20 * elapsed + 5  # the burst, then the rate (a few for timing slack)
    assert hot >= 20  # and it is not stopped either
    assert receiver.bad == []


async def test_the_rate_limit_is_set_through_the_api_and_the_settings_page(
    client: TestClient, auth_headers: H
) -> None:
    """Default 100/s; a PATCH sets it; 0, a negative or more than 10,000 is a 422 naming rate_limit; the
    subscription page shows it and its form changes it (a bad value answered with a readable 422 page)."""
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "event_types": ["deal.won"]},
        headers=admin,
    )
    sub = await resp.json()
    assert sub["rate_limit"] == 100
    resp = await client.patch(f"/api/v1/webhooks/{sub['id']}", json={"rate_limit": 2.5}, headers=admin)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["rate_limit"] == 2.5
    for bad in (0, -1, 10_001, "fast"):
        resp = await client.patch(f"/api/v1/webhooks/{sub['id']}", json={"rate_limit": bad}, headers=admin)
        assert resp.status == 422
        assert "rate_limit" in (await resp.json())["detail"]

    await sign_in(client, "admin")
    page = f"/app/settings/webhooks/{sub['id']}"
    assert "at most 2.5 deliveries/s" in await (await client.get(page)).text()
    form = {"url": "https://hooks.example.com/x", "event_types": "deal.won", "description": "", "_csrf": ""}
    form["_csrf"] = await csrf_of(client, page)
    resp = await client.post(page, data=form | {"rate_limit": "40"}, allow_redirects=False)
    assert resp.status == 303
    assert await client.server.app[POOL].fetchval("SELECT rate_limit FROM webhook_subscriptions") == 40
    resp = await client.post(page, data=form | {"rate_limit": "0"}, allow_redirects=False)
    assert resp.status == 422
    assert "rate_limit: deliveries per second" in await resp.text()
