"""The dispatcher: sends queued webhook deliveries, at least once, and keeps their log.

One sender per schema: every crm-core replica runs a dispatcher, but only the one holding a PostgreSQL advisory
lock leads (:mod:`leadline_crm.leader`, as the outbox relay); the others stand by and take over when the leader's session ends. Claims
use ``FOR UPDATE SKIP LOCKED`` and a lease anyway, so even two leaders would not send a delivery twice at once.

At least once: a claim pushes the delivery's ``next_attempt_at`` out by a lease and counts the attempt, then the
POST is made, then its outcome is written. A crash (or a cancel) anywhere in between leaves the row due again when
the lease ends, and it is sent again with the same ``webhook-id``, which the receiver deduplicates on.

Pipelined: up to ``concurrency`` POSTs are in flight at once over keep-alive connections; as they finish, their
outcomes are written in batches and more deliveries are claimed, so one slow receiver (up to the 10 s timeout)
holds one slot, not the whole batch. Paced (pacing.py): each subscription is sent at most its ``rate_limit``
deliveries a second and holds at most ``share`` of the slots, so a hot or slow receiver cannot starve the others.
Secrets are stored sealed (sealing.py) and opened only to sign. Each subscription has its own connection pool, whose resolver pins what it
vetted (safety.py): a subscription's admin-allowed network never lets another subscription reach it.

Failures: any answer other than 2xx (redirects are not followed), a timeout or a refused address is a failure; the
delivery is tried again on the schedule of schedule.py and is 'dead' after it. A subscription whose deliveries
have all failed for ``disable_after`` (a day), or ``max_consecutive`` times in a row, is disabled with a reason,
and every active admin gets a notice; its queued deliveries wait for it to be enabled again.

Time is injectable (``clock`` for scheduling, ``wall`` for the signed timestamp) so tests need not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from leadline_crm import leader
from leadline_crm.webhooks import queries, safety, schedule, signing
from leadline_crm.webhooks.pacing import Pacer
from leadline_crm.webhooks.sealing import NoKey, Sealer

log = logging.getLogger(__name__)

EXCERPT_BYTES = 500
USER_AGENT = "Leadline-Webhooks/1"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    delivery_id: int
    subscription_id: int
    attempts: int
    queued_at: datetime
    ok: bool
    status: int | None
    ms: float
    error: str | None
    excerpt: str | None
    withheld: bool = False
    """Not sent: the subscription is for marketing and the person has not consented (given up at once, no streak)."""


async def excerpt(resp: aiohttp.ClientResponse) -> str | None:
    """At most :data:`EXCERPT_BYTES` of the answer (the rest is never read), as text."""
    data = b""
    while len(data) < EXCERPT_BYTES:
        chunk = await resp.content.read(EXCERPT_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    text = data[:EXCERPT_BYTES].decode("utf-8", "ignore").replace("\x00", "")
    return text or None


def _refusal(exc: BaseException) -> safety.Refused | None:
    """The resolver's refusal behind an aiohttp connection error (its ``os_error`` or cause), if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain: aiohttp wraps the resolver's error once
        if seen is None or isinstance(seen, safety.Refused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


def _error_text(exc: BaseException, total_timeout: float) -> str:
    """The log's reason for a failed attempt; never the URL (it may carry the receiver's token) or the body."""
    if isinstance(exc, NoKey):
        return str(exc)
    refused = _refusal(exc)
    if refused is not None:
        return f"refused: {refused}"
    if isinstance(exc, TimeoutError):
        return f"timed out (connect 3 s, total {total_timeout:g} s)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"could not connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    return f"failed: {type(exc).__name__}"


@functools.lru_cache(maxsize=4096)
def literal_problem(url: str, allowed: str | None) -> str | None:
    """Why an IP-literal URL may not be reached (host names are vetted by the pinned resolver), or None; cached,
    since the same few URLs are sent to thousands of times."""
    host, _ = safety.check_url(url)
    address = safety.literal(host)
    if address is None:
        return None
    problem = safety.address_problem(address, safety.parse_network(allowed))
    return f"{host} refused: {problem}" if problem else None


@dataclass
class Dispatcher:
    """Sends due deliveries while this replica holds the schema's webhook lock; stands by otherwise."""

    pool: asyncpg.Pool
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    concurrency: int = 64
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    standby_seconds: float = 5.0
    connect_timeout: float = 3.0
    total_timeout: float = 10.0
    disable_after: timedelta = timedelta(hours=24)
    max_consecutive: int = 1000
    retain: timedelta = timedelta(days=30)
    prune_seconds: float = 3600.0
    write_delay: float = 0.02
    trace_configs: tuple[aiohttp.TraceConfig, ...] = ()
    """aiohttp request tracing for every subscription's session (the benchmark times signing to send with it)."""
    sealer: Sealer = field(default_factory=Sealer)
    """Opens the stored (sealed) signing secrets."""
    share: float = 0.75
    """The part of the in-flight slots one subscription may hold, so a slow receiver leaves the rest to others."""
    clock: Callable[[], datetime] = _now
    wall: Callable[[], float] = time.time
    ticks: Callable[[], float] = time.monotonic
    """Monotonic seconds, for the rate limits' buckets."""
    rng: random.Random = field(default_factory=random.Random)
    state: leader.State = "starting"
    _sessions: dict[tuple[int, str | None], aiohttp.ClientSession] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.sent = Counter(
            "leadline_crm_webhook_attempts",
            "Webhook POSTs made, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadline_crm_webhook_seconds",
            "From signing a delivery to the receiver's answer",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.leading = Gauge(
            "leadline_crm_webhook_leader", "1 while this replica dispatches webhooks", registry=self.registry
        )

    async def run(self) -> None:
        """Dispatch until cancelled: lead when the lock is free, else stand by; back off after a failure."""
        try:
            await leader.keep(
                self._term,
                "webhook dispatcher",
                self._set_state,
                leader.Backoff(standby=self.standby_seconds),
            )
        finally:
            self.leading.set(0)
            await self._close_sessions()

    def _set_state(self, state: leader.State) -> None:
        self.state = state

    async def _term(self) -> bool:
        """One term as leader, until an error; False at once when another replica leads."""
        async with leader.term(self.pool, "webhooks") as term:
            if term is None:
                return False
            self.leading.set(1)
            self.state = "leading"
            try:
                await self._lead(term.conn, term.wake)
            finally:
                self.leading.set(0)
        return True

    async def _lead(self, conn: asyncpg.Connection, wake: asyncio.Event) -> None:
        """Keep up to ``concurrency`` attempts in flight and claim more as they finish; a writer task of its own
        records the outcomes in batches meanwhile, so claims and sends never wait for the log.

        Each finished attempt hands its outcome over in a done-callback and sets ``wake`` (as a NOTIFY does), so
        the loop waits on one event, not on every task in flight."""
        inflight: dict[asyncio.Task[Outcome], tuple[int, int]] = {}  # the attempt: its delivery, subscription
        pending: list[Outcome] = []
        ready = asyncio.Event()
        pacer = Pacer(max(1, int(self.concurrency * self.share)), self.ticks, self.concurrency)
        writer = asyncio.create_task(self._write(pending, ready))
        writer.add_done_callback(lambda _: wake.set())

        def finished(task: asyncio.Task[Outcome]) -> None:
            taken = inflight.pop(task, None)
            if taken is not None:
                pacer.finished(taken[1])
                if not task.cancelled():
                    pending.append(task.result())
                    ready.set()
            wake.set()

        threshold = max(1, self.concurrency // 4)
        claim: asyncio.Future[list[asyncpg.Record]] | None = None
        try:
            while True:
                if writer.done():
                    writer.result()  # the writer failed: end the term (raises)
                wake.clear()
                free = self.concurrency - len(inflight)
                if free >= threshold or not inflight:
                    ids, allowed = pacer.allowances()
                    # shielded: a claim that committed is always seen, so a stop can hand its rows back
                    claim = asyncio.ensure_future(
                        conn.fetch(
                            queries.CLAIM, self.clock(), free, self.lease_seconds, ids, allowed, pacer.most()
                        )
                    )
                    for row in await asyncio.shield(claim):
                        pacer.sent(row["subscription_id"], row["rate_limit"])
                        task = asyncio.create_task(self._attempt(row))
                        inflight[task] = (row["id"], row["subscription_id"])
                        task.add_done_callback(finished)
                    claim = None
                    if len(inflight) >= self.concurrency:
                        wake.clear()  # full: wait for a slot (a NOTIFY meanwhile is caught by the next claim)
                if wake.is_set():
                    continue
                token = pacer.next_token()  # a subscription held back by its rate may send again then
                timeout = self.poll_seconds if token is None else min(self.poll_seconds, max(token, 0.005))
                await leader.woken(wake, timeout)
        finally:
            await self._stop(conn, writer, inflight, pending, claim)

    async def _stop(
        self,
        conn: asyncpg.Connection,
        writer: asyncio.Task[None],
        inflight: dict[asyncio.Task[Outcome], tuple[int, int]],
        pending: list[Outcome],
        claim: asyncio.Future[list[asyncpg.Record]] | None,
    ) -> None:
        """End a term: cancel what is in flight, write what finished, and hand the deliveries cut off mid-send
        back at once (a restart sends them without waiting for their lease). Best effort: after a crash, or if
        the connection is unusable, the leases do the same a minute later."""
        cut = [
            delivery_id for delivery_id, _ in inflight.values()
        ]  # what finishes from here on is taken out again
        tasks = list(inflight)
        writer.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(writer, *tasks, return_exceptions=True)
        done = {d.delivery_id for d in pending}
        cut = [delivery_id for delivery_id in cut if delivery_id not in done]
        if claim is not None:  # stopped while claiming: those rows were never sent
            with contextlib.suppress(Exception):
                cut += [row["id"] for row in await claim]
        if conn.is_closed():
            return
        with contextlib.suppress(Exception):
            await self.record(conn, pending)
        with contextlib.suppress(Exception):
            await conn.execute(queries.RELEASE, cut, self.clock())

    async def _write(self, pending: list[Outcome], ready: asyncio.Event) -> None:
        """Record whatever outcomes have piled up, one batch at a time, on a connection of its own; prune the log
        at the start of the term and every ``prune_seconds``."""
        loop = asyncio.get_running_loop()
        async with self.pool.acquire() as conn:
            await self.prune(conn)
            due = loop.time() + self.prune_seconds
            while True:
                await leader.woken(ready, max(0.0, due - loop.time()))
                if loop.time() >= due:
                    await self.prune(conn)
                    due = loop.time() + self.prune_seconds
                if not ready.is_set():
                    continue
                await asyncio.sleep(self.write_delay)  # let a batch gather: one statement for many outcomes
                ready.clear()
                batch = pending[:]
                await self.record(conn, batch)
                del pending[: len(batch)]

    async def prune(self, conn: asyncpg.Connection, batch: int = 5000) -> int:
        """Delete finished deliveries older than ``retain``; how many."""
        cutoff, total = self.clock() - self.retain, 0
        while True:
            status = await conn.execute(queries.PRUNE, cutoff, batch)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < batch:
                return total

    def _session(self, subscription_id: int, allowed: str | None) -> aiohttp.ClientSession:
        """The subscription's keep-alive session, whose resolver returns only addresses its policy allows."""
        key = (subscription_id, allowed)
        session = self._sessions.get(key)
        if session is None:
            policy = safety.Policy(safety.parse_network(allowed))
            connector = aiohttp.TCPConnector(
                resolver=safety.PinnedResolver(policy), use_dns_cache=False, limit=self.concurrency
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.total_timeout, sock_connect=self.connect_timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                trace_configs=list(self.trace_configs) or None,
            )
            self._sessions[key] = session
        return session

    async def _close_sessions(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def _keys(self, row: asyncpg.Record) -> list[str]:
        """The secrets that sign, opened: the current one, and the previous one while its overlap lasts."""
        keys = [self.sealer.open(row["secret"])]
        expires = row["previous_secret_expires_at"]
        if row["previous_secret"] and expires is not None and expires > self.clock():
            keys.append(self.sealer.open(row["previous_secret"]))
        return keys

    async def _attempt(self, row: asyncpg.Record) -> Outcome:
        """Sign and POST one delivery; never raises (a failure is an outcome)."""
        start = time.perf_counter()
        status: int | None = None
        text: str | None = None
        error: str | None = None
        if not row["consented"]:
            return self._withheld(row)
        try:
            problem = literal_problem(row["url"], row["allowed"])
            if problem:
                raise safety.Refused(problem)
            body = row["body"].encode()
            headers = signing.headers(self._keys(row), row["msg_id"], int(self.wall()), body)
            headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
            session = self._session(row["subscription_id"], row["allowed"])
            async with session.post(row["url"], data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                text = await excerpt(resp)
            if not 200 <= status < 300:
                error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, NoKey) as exc:
            error = _error_text(exc, self.total_timeout)
        seconds = time.perf_counter() - start
        self.latency.observe(seconds)
        self.sent.labels("delivered" if error is None else "failed").inc()
        return Outcome(
            row["id"], row["subscription_id"], row["attempts"], row["created_at"],
            error is None, status, seconds * 1000, error, text,
        )  # fmt: skip

    def _withheld(self, row: asyncpg.Record) -> Outcome:
        self.sent.labels("withheld").inc()
        return Outcome(
            row["id"], row["subscription_id"], row["attempts"], row["created_at"], False, None, 0.0,
            "withheld: the person has not consented to marketing", None, withheld=True,
        )  # fmt: skip

    async def record(self, conn: asyncpg.Connection, outcomes: Iterable[Outcome]) -> None:
        """Write the outcomes, schedule the failures' next attempts, and keep each subscription's streak."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        now = self.clock()
        good = [o for o in outcomes if o.ok]
        bad = [o for o in outcomes if not o.ok]
        async with conn.transaction():
            if good:
                await conn.execute(
                    queries.DELIVERED, [o.delivery_id for o in good], now, [o.status for o in good],
                    [o.ms for o in good], [o.excerpt for o in good],
                )  # fmt: skip
                await conn.execute(queries.SUBSCRIPTION_OK, list({o.subscription_id for o in good}))
            if bad:
                await conn.execute(
                    queries.FAILED, [o.delivery_id for o in bad],
                    [None if o.withheld else schedule.next_attempt(o.attempts, o.queued_at, now, self.rng)
                     for o in bad],
                    [o.status for o in bad], [o.ms for o in bad], [o.error for o in bad], [o.excerpt for o in bad],
                )  # fmt: skip
                recovered = {o.subscription_id for o in good}
                streaks = Tally(
                    o.subscription_id for o in bad if o.subscription_id not in recovered and not o.withheld
                )
                for subscription_id, failures in streaks.items():
                    await self._streak(conn, subscription_id, failures, now)

    async def _streak(
        self, conn: asyncpg.Connection, subscription_id: int, failures: int, now: datetime
    ) -> None:
        """Count a subscription's failures; disable it (with a notice) once the streak is too long."""
        row = await conn.fetchrow(queries.SUBSCRIPTION_FAILED, subscription_id, failures, now)
        if row is None:
            return
        reason = None
        if row["consecutive_failures"] >= self.max_consecutive:
            reason = f"{row['consecutive_failures']} deliveries failed in a row"
        elif now - row["failing_since"] >= self.disable_after:
            hours = (now - row["failing_since"]) / timedelta(hours=1)
            reason = f"every delivery failed for {hours:.0f} hours"
        if reason is None:
            return
        if await conn.fetchval(queries.DISABLE, subscription_id, now, reason) is None:
            return
        log.warning("webhook subscription disabled", extra={"subscription_id": subscription_id})
        if await conn.fetchval(queries.HAS_NOTIFICATIONS):
            await conn.execute(
                queries.NOTIFY_ADMINS,
                f"Webhook subscription {subscription_id} was disabled: {reason}.",
                f"/app/settings/webhooks/{subscription_id}",
            )
