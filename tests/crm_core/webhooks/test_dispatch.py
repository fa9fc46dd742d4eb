"""The dispatcher against real PostgreSQL and a real receiver on loopback: every delivery arrives signed, a
receiver that is down for a while still gets each one exactly once in effect, a dispatcher cancelled mid-dispatch
loses nothing, refused addresses are never contacted, and a subscription that keeps failing is disabled with a
notice. The tests move the dispatcher's clock instead of waiting for the backoff."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from crm_core.webhooks.helpers import SEALER, Clock, Receiver
from leadline_crm.automation.events import DomainEvent
from leadline_crm.webhooks import fanout, queries, signing
from leadline_crm.webhooks.dispatch import Dispatcher

pytestmark = pytest.mark.integration


async def subscribe(
    pool: asyncpg.Pool,
    url: str,
    types: Sequence[str] = ("person.created",),
    allowed: str | None = "127.0.0.0/8",
    enabled: bool = True,
    rate: float = 10_000,
) -> tuple[int, str]:
    """A subscription written straight to the table (the API's vetting is tested elsewhere); its rate limit the
    most unless a test is about it."""
    secret = signing.new_secret()
    sid = await pool.fetchval(
        "INSERT INTO webhook_subscriptions (url, event_types, enabled, allowed_network, secret, created_by,"
        " rate_limit) VALUES ($1, $2, $3, $4::cidr, $5, 'test', $6) RETURNING id",
        url,
        list(types),
        enabled,
        allowed,
        SEALER.seal(secret),
        rate,
    )
    return sid, secret


def events(n: int, kind: str = "person.created", start: int = 0) -> list[DomainEvent]:
    return [
        DomainEvent(
            id=i,
            type=kind,
            person_id=uuid.uuid4(),
            subject=None,
            data={"stage": "lead", "email": "someone@example.com", "nested": {"phone": "+441234"}},
            source_key=f"evt-{i}",
            occurred_at=datetime.now(UTC),
        )
        for i in range(start, start + n)
    ]


async def fan_out(pool: asyncpg.Pool, batch: Sequence[DomainEvent]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await fanout.on_events(conn, batch)


@asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(dispatcher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: object, timeout: float = 30.0) -> None:
    """Wait until ``check()`` (sync or async) is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = check()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < end, "timed out waiting"
        await asyncio.sleep(0.05)


async def statuses(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def test_fanout_queues_once_per_subscription_and_a_replay_queues_nothing(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """Replayed events (same type and source key) queue no second delivery; only enabled subscriptions of the
    event's type get one; personal fields never reach the payload."""
    await subscribe(pool, receiver.url, ["person.created"])
    await subscribe(pool, receiver.url, ["person.created", "deal.won"])
    await subscribe(pool, receiver.url, ["deal.won"])
    await subscribe(pool, receiver.url, ["person.created"], enabled=False)
    batch = events(5)
    await fan_out(pool, batch)
    await fan_out(pool, batch)  # the replay
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 10
    payload = orjson.loads(await pool.fetchval("SELECT payload::text FROM webhook_deliveries LIMIT 1"))
    assert payload["type"] == "person.created"
    assert payload["data"]["stage"] == "lead"
    assert "person_id" in payload["data"]
    assert "email" not in payload["data"]
    assert payload["data"]["nested"] == {}
    assert "someone@example.com" not in orjson.dumps(payload).decode()


async def test_enqueue_is_idempotent_by_key(pool: asyncpg.Pool, receiver: Receiver) -> None:
    """A workflow's "send webhook" action run twice for the same trigger queues one delivery."""
    sid, _ = await subscribe(pool, receiver.url, ["deal.won"])
    async with pool.acquire() as conn:
        assert await fanout.enqueue(conn, sid, "workflow.action", {"deal_id": "d1"}, key="rule:1:evt-9")
        assert not await fanout.enqueue(conn, sid, "workflow.action", {"deal_id": "d1"}, key="rule:1:evt-9")
        assert not await fanout.enqueue(conn, sid + 100, "workflow.action", {}, key="other")
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 1
    payload = orjson.loads(await pool.fetchval("SELECT payload::text FROM webhook_deliveries"))
    assert payload["type"] == "workflow.action"  # an object, not a JSON string inside JSON
    assert payload["data"] == {"deal_id": "d1"}


async def test_every_delivery_arrives_signed(pool: asyncpg.Pool, receiver: Receiver) -> None:
    """The receiver verifies each POST with the reference library and gets the payload's fields."""
    _, secret = await subscribe(pool, receiver.url)
    receiver.secrets = [secret]
    await fan_out(pool, events(20))
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.1)):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 20 FROM webhook_deliveries WHERE status = 'delivered'")
        )
    assert receiver.bad == []
    assert receiver.ids == {fanout.msg_id("person.created", f"evt-{i}") for i in range(20)}
    assert len(receiver.received) == 20
    assert await statuses(pool) == {"delivered": 20}
    row = await pool.fetchrow(
        "SELECT last_status, last_response_ms, response_excerpt FROM webhook_deliveries LIMIT 1"
    )
    assert row["last_status"] == 200
    assert row["last_response_ms"] > 0
    assert row["response_excerpt"] == "ok"


async def test_a_receiver_down_for_a_while_gets_everything_exactly_once_in_effect(
    pool: asyncpg.Pool, receiver: Receiver, clock: Clock
) -> None:
    """Down (500) through several retries, then back: nothing is missing, and deduplicated by webhook-id the
    receiver got each delivery once; the log kept the failures' status and a short excerpt."""
    _, secret = await subscribe(pool, receiver.url)
    receiver.secrets = [secret]
    receiver.status = 500
    await fan_out(pool, events(300))
    dispatcher = Dispatcher(pool, sealer=SEALER, poll_seconds=0.05, clock=clock)
    async with running(dispatcher):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 300 FROM webhook_deliveries WHERE status = 'failed'")
        )
        row = await pool.fetchrow(
            "SELECT last_status, last_error, response_excerpt FROM webhook_deliveries LIMIT 1"
        )
        assert row["last_status"] == 500
        assert row["last_error"] == "HTTP 500"
        assert len(row["response_excerpt"].encode()) <= 500
        for _ in range(3):  # more failed rounds, each due only once the clock passes its backoff
            clock.advance(minutes=3)
            await until(lambda: pool.fetchval("SELECT min(attempts) >= 2 FROM webhook_deliveries"))
        receiver.status = 200
        clock.advance(hours=1)
        await until(lambda: len(receiver.ids) == 300)
        await until(
            lambda: pool.fetchval("SELECT count(*) = 300 FROM webhook_deliveries WHERE status = 'delivered'")
        )
    assert receiver.ids == {fanout.msg_id("person.created", f"evt-{i}") for i in range(300)}
    assert receiver.bad == []
    assert await pool.fetchval("SELECT consecutive_failures FROM webhook_subscriptions") == 0


async def test_a_dispatcher_cancelled_mid_dispatch_loses_nothing(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """A few thousand queued, the dispatcher cancelled while POSTs are in flight (as crm-core stopping would):
    what was cut off is handed back at once, and after a restart every delivery has arrived and is marked
    delivered."""
    _, secret = await subscribe(pool, receiver.url)
    receiver.secrets = [secret]
    receiver.delay = 0.02
    await fan_out(pool, events(3000))
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05, concurrency=64)):
        await until(lambda: len(receiver.received) >= 500)
    assert len(receiver.ids) < 3000, "cancel came too late to test anything"
    leased = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries"
        " WHERE status IN ('pending', 'failed') AND next_attempt_at > now() + interval '5 seconds'"
    )
    assert leased == 0  # nothing waits for a lease: the cut-off ones are due now
    receiver.delay = 0
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05)):
        await until(
            lambda: pool.fetchval(
                "SELECT count(*) = 3000 FROM webhook_deliveries WHERE status = 'delivered'"
            ),
            120,
        )
    assert receiver.ids == {fanout.msg_id("person.created", f"evt-{i}") for i in range(3000)}
    assert receiver.bad == []


async def test_a_crashed_dispatchers_claims_are_sent_once_their_lease_ends(
    pool: asyncpg.Pool, receiver: Receiver, clock: Clock
) -> None:
    """A dispatcher that died after claiming (a kill: nothing handed back) leaves its deliveries leased; another
    sends everything else at once and those once the lease has passed, so nothing is lost."""
    await subscribe(pool, receiver.url)
    await fan_out(pool, events(300))
    async with pool.acquire() as conn:  # what the dead dispatcher did before it died
        claimed = await conn.fetch(queries.CLAIM, clock(), 100, 60.0, [], [], 100)
    assert len(claimed) == 100
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05, clock=clock)):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 200 FROM webhook_deliveries WHERE status = 'delivered'")
        )
        await asyncio.sleep(0.3)
        assert len(receiver.ids) == 200
        clock.advance(seconds=61)
        await until(
            lambda: pool.fetchval("SELECT count(*) = 300 FROM webhook_deliveries WHERE status = 'delivered'")
        )
    assert receiver.ids == {fanout.msg_id("person.created", f"evt-{i}") for i in range(300)}


async def test_loopback_and_metadata_targets_are_refused_at_send_time(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """Without an allowed network, a host name that resolves to 127.0.0.1 and the metadata address are never
    contacted: the delivery fails with the reason, the receiver gets nothing."""
    await subscribe(pool, receiver.hostname_url, allowed=None)
    await subscribe(pool, "http://169.254.169.254/latest/meta-data/", allowed=None)
    await subscribe(pool, "http://169.254.169.254/latest/meta-data/", allowed="169.254.0.0/16")
    await fan_out(pool, events(1))
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05)):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 3 FROM webhook_deliveries WHERE status = 'failed'")
        )
    errors = [
        r[0] for r in await pool.fetch("SELECT last_error FROM webhook_deliveries ORDER BY subscription_id")
    ]
    assert "refused" in errors[0]
    assert "loopback" in errors[0]
    assert "metadata" in errors[1]
    assert "metadata" in errors[2]
    assert receiver.received == []


async def test_a_failing_streak_disables_the_subscription_with_a_notice(
    pool: asyncpg.Pool, receiver: Receiver, clock: Clock
) -> None:
    """Every delivery failing for more than a day disables the subscription, says why, and tells the admins;
    enabling it again (the API) clears the streak."""
    admin = await pool.fetchval(
        "INSERT INTO users (email, name, role) VALUES ('boss@example.com', 'Boss', 'admin') RETURNING id"
    )
    sid, _ = await subscribe(pool, receiver.url)
    receiver.status = 503
    await fan_out(pool, events(3))
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05, clock=clock)):
        await until(lambda: pool.fetchval("SELECT failing_since IS NOT NULL FROM webhook_subscriptions"))
        for _ in range(12):
            clock.advance(hours=3)
            await asyncio.sleep(0.15)
        await until(lambda: pool.fetchval("SELECT NOT enabled FROM webhook_subscriptions"))
    row = await pool.fetchrow(
        "SELECT disabled_reason, disabled_at FROM webhook_subscriptions WHERE id = $1", sid
    )
    assert "failed" in row["disabled_reason"]
    assert row["disabled_at"] is not None
    notice = await pool.fetchrow("SELECT text, link FROM notifications WHERE user_id = $1", admin)
    assert f"Webhook subscription {sid} was disabled" in notice["text"]
    assert notice["link"] == f"/app/settings/webhooks/{sid}"
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'") == 0


async def test_one_leader_per_schema(pool: asyncpg.Pool, receiver: Receiver) -> None:
    """A second dispatcher on the same schema stands by while the first leads."""
    first, second = (
        Dispatcher(pool, sealer=SEALER, standby_seconds=0.05),
        Dispatcher(pool, sealer=SEALER, standby_seconds=0.05),
    )
    async with running(first):
        await until(lambda: first.state == "leading")
        async with running(second):
            await until(lambda: second.state == "standby")
            assert first.state == "leading"


async def test_finished_deliveries_are_pruned_after_the_retention(
    pool: asyncpg.Pool, receiver: Receiver
) -> None:
    """The log keeps finished deliveries 30 days; queued ones stay however old (nothing is lost by pruning)."""
    sid, _ = await subscribe(pool, receiver.url)
    await pool.execute(
        "INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload, status, created_at,"
        " next_attempt_at) VALUES"
        " ($1, 'old-done', 't', '{}', 'delivered', now() - interval '31 days', now()),"
        " ($1, 'old-dead', 't', '{}', 'dead', now() - interval '31 days', now()),"
        " ($1, 'new-done', 't', '{}', 'delivered', now() - interval '29 days', now()),"
        " ($1, 'old-queued', 't', '{}', 'failed', now() - interval '31 days', now() + interval '1 hour')",
        sid,
    )
    async with pool.acquire() as conn:
        assert await Dispatcher(pool, sealer=SEALER).prune(conn, batch=1) == 2
    left = {r[0] for r in await pool.fetch("SELECT msg_id FROM webhook_deliveries")}
    assert left == {"new-done", "old-queued"}


async def test_redirects_timeouts_and_closed_ports_are_failures_with_a_reason(
    pool: asyncpg.Pool, receiver: Receiver, unused_tcp_port: int
) -> None:
    """A redirect is not followed, a receiver slower than the total timeout and a closed port fail; the log says
    which, and the retry is scheduled."""
    slow_sid, _ = await subscribe(pool, receiver.url, ["deal.won"])
    closed_sid, _ = await subscribe(pool, f"http://127.0.0.1:{unused_tcp_port}/hook", ["deal.won"])
    receiver.delay = 1.0
    await fan_out(pool, events(1, "deal.won"))
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05, total_timeout=0.3)):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 2 FROM webhook_deliveries WHERE status = 'failed'")
        )
    errors = dict(await pool.fetch("SELECT subscription_id, last_error FROM webhook_deliveries"))
    assert errors[slow_sid].startswith("timed out")
    assert errors[closed_sid].startswith("could not connect")
    await pool.execute("DELETE FROM webhook_deliveries")
    receiver.delay, receiver.status = 0, 302
    await fan_out(pool, events(1, "deal.won", start=50))
    async with running(Dispatcher(pool, sealer=SEALER, poll_seconds=0.05)):
        await until(
            lambda: pool.fetchval("SELECT count(*) = 2 FROM webhook_deliveries WHERE status = 'failed'")
        )
    assert (
        await pool.fetchval("SELECT last_error FROM webhook_deliveries WHERE subscription_id = $1", slow_sid)
        == "HTTP 302 (redirects are not followed)"
    )
    assert await pool.fetchval("SELECT bool_and(next_attempt_at > now()) FROM webhook_deliveries")
