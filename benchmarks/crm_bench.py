"""crm-core: enriched events into PostgreSQL, against a naive one-INSERT-per-event writer; a person's timeline.

1. A realistic enriched stream is written to a topic first (mostly page views of a few thousand persons, some
   pricing views, email and ad clicks, identifying form submissions). crm-core's own ingestion loop
   (:class:`leadline_crm.ingest.Ingestor`: consume, decode, batch upsert with unnest arrays, person facts,
   score and lifecycle, commit offsets after the PostgreSQL transaction) then drains it into a fresh schema.
   The rate is events divided by the time from the first records fetched to the last touchpoint stored.
2. The naive baseline writes a slice of the same events with one INSERT per event (its person upsert and its
   touchpoint, each event its own transaction), reading them from memory, not from Kafka, so it pays no
   consumer cost: the ratio is, if anything, in the baseline's favour.
3. A person with 10,000 touchpoints (plus activities and stage moves) is read through the HTTP API:
   ``GET /api/v1/persons/{id}`` and ``GET /api/v1/persons/{id}/timeline`` (first page, 50 items), each timed
   from request to parsed JSON over many calls; and the whole history paged through at 500 per page.

``python -m benchmarks.crm_bench`` runs it against the local stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from leadline_crm import auth
from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.ingest import Ingestor, rows_for, tune_gc, write_batch
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, pg
from leadline_shared.events import EnrichedEvent, RawEvent
from leadline_shared.ids import new_id

EVENTS = int(os.environ.get("LEADLINE_BENCH_CRM_EVENTS", "100000"))
NAIVE_EVENTS = int(os.environ.get("LEADLINE_BENCH_CRM_NAIVE_EVENTS", "5000"))
TIMELINE_TOUCHPOINTS = 10_000
PERSONS = 10_000
PARTITIONS = 6
BATCH_MAX = CrmSettings().batch_max  # the service default
WRITERS = 2
TARGET_RATE = 20_000.0
TARGET_READ_MS = 50.0
PAGES = ["/", "/pricing", "/features", "/blog/a", "/blog/b", "/contact", "/docs", "/about"]

NAIVE_PERSON = """
INSERT INTO persons (person_id, first_seen, last_seen) VALUES ($1, $2, $2)
ON CONFLICT (person_id) DO UPDATE SET last_seen = GREATEST(persons.last_seen, EXCLUDED.last_seen)
"""
NAIVE_TOUCHPOINT = """
INSERT INTO touchpoints (event_id, person_id, anon_id, type, source, occurred_at, received_at, url, event)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT (event_id) DO NOTHING
"""


def generate(count: int, persons: int = PERSONS, seed: int = 11) -> list[EnrichedEvent]:
    """``count`` enriched events over ``persons`` persons, in visits (sessions) of 1 to 12 events.

    Like a real stream, about a hundred visits are under way at any moment and their events interleave; each
    visit's events are seconds apart, visits are spread over the last 30 days.
    """
    rng = random.Random(seed)
    people = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(persons)]
    emails = {p: f"p{i}@example.com" for i, p in enumerate(people)}
    now = datetime.now(UTC)
    live: list[list[Any]] = []  # [person, events left, time]
    out = []
    for _ in range(count):
        if len(live) < 100 or rng.random() < 0.01:
            live.append(
                [rng.choice(people), rng.randint(1, 12), now - timedelta(seconds=rng.randint(60, 30 * 86400))]
            )
        visit = rng.choice(live)
        person, at = visit[0], visit[2]
        visit[1] -= 1
        visit[2] = at + timedelta(seconds=rng.randint(5, 120))
        if visit[1] <= 0:
            live.remove(visit)
        roll = rng.random()
        kind, source = "page_view", "pixel"
        extra: dict[str, Any] = {}
        if roll < 0.03:
            kind, source = "form_submit", "form"
            email = emails[person]
            extra = {
                "form": {"key": "demo", "fields": {"email": email, "name": "Pat Doe", "company": "Acme"}},
                "ids": {"email": email},
            }
        elif roll < 0.06:
            kind, source = "link_click", "link"
            extra = {"link": {"campaign_id": "spring", "send_id": "s1", "target": "https://shop.example/"}}
        elif roll < 0.08:
            kind, source = "ad_click", "affiliate"
            extra = {"affiliate": {"affiliate_id": "aff1", "ad_id": "ad1"}}
        url = f"https://shop.example{rng.choice(PAGES)}"
        raw = RawEvent(
            event_id=new_id(),
            type=kind,
            source=source,
            received_at=at.isoformat(timespec="milliseconds"),
            occurred_at=at.isoformat(timespec="milliseconds"),
            anon_id=f"v{person[:12]}",
            context={
                "url": url,
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
                "ip": "203.0.113.0",
                "referrer": "https://www.google.com/",
                "title": "Shop",
            },
            **extra,
        )
        out.append(
            EnrichedEvent.from_raw(
                raw,
                person,
                ua={"browser": "Firefox", "os": "Linux", "device": "desktop", "is_mobile": False},
                bot={"is_bot": False, "indicators": []},
                referrer_class="search",
            )
        )
    return out


async def _produce(bootstrap: str, topic: str, events: list[EnrichedEvent]) -> None:
    producer = kafka.producer(bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, ev.to_json(), key=ev.person_id.encode()) for ev in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def measure_ingest(bootstrap: str, dsn: str, schema: str, topics: kafka.Topics, count: int) -> float:
    """crm-core's ingestion loop over ``count`` events already on the topic; events per second."""
    pool = await pg.create_pool(dsn, schema, min_size=1, max_size=4)
    ingestor = Ingestor(
        bootstrap=bootstrap,
        topics=topics,
        group_id=f"bench-{schema}",
        pool=pool,
        registry=CollectorRegistry(),
        batch_max=BATCH_MAX,
        writers=WRITERS,
    )
    await ingestor.start()
    assert ingestor.consumer is not None
    first_batch: list[float] = []
    fetch = ingestor.consumer.getmany

    async def timed_fetch(*args: Any, **kwargs: Any) -> Any:
        batch = await fetch(*args, **kwargs)
        if batch and not first_batch:
            first_batch.append(
                time.perf_counter()
            )  # the clock starts at the first records (group join excluded)
        return batch

    ingestor.consumer.getmany = timed_fetch
    task = asyncio.ensure_future(ingestor.run())
    try:
        while int(ingestor.written._value.get()) < count:
            if task.done():
                task.result()
            await asyncio.sleep(0.002)
        return count / (time.perf_counter() - first_batch[0])
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ingestor.stop()
        await pool.close()


async def measure_naive(dsn: str, schema: str, events: list[EnrichedEvent]) -> float:
    """One INSERT per event (and its person upsert), each event its own transaction; events per second."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        rows = rows_for(events)
        started = time.perf_counter()
        for row in rows:
            async with conn.transaction():
                await conn.execute(NAIVE_PERSON, row[1], row[5])
                await conn.execute(NAIVE_TOUCHPOINT, *row)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def _timed(session: aiohttp.ClientSession, url: str, headers: dict[str, str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            await resp.json()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def measure_timeline(bootstrap: str, dsn: str, schema: str, prefix: str) -> dict[str, float]:
    """Read a person with 10,000 touchpoints through the HTTP API; latencies in milliseconds."""
    person = new_id()
    events = generate(TIMELINE_TOUCHPOINTS, persons=1, seed=5)
    for ev in events:
        ev.person_id = person
        ev.anon_id = f"v{person[:12]}"
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        for i in range(0, len(events), 2000):
            await write_batch(conn, events[i : i + 2000])
        await conn.execute("ANALYZE")
        token = await auth.create_token(conn, "bench", "read_only")
    finally:
        await conn.close()
    settings = config.load(
        CrmSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": bootstrap,
            "LEADLINE_TOPIC_PREFIX": prefix,
            "LEADLINE_PG_DSN": dsn,
            "LEADLINE_CRM_SCHEMA": schema,
            "LEADLINE_CRM_GROUP": f"bench-api-{schema}",
        },
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/persons/{person}"
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            await _timed(session, f"{base}/timeline", headers, 20)  # warm up connections and plans
            page = await _timed(session, f"{base}/timeline", headers, 200)
            one = await _timed(session, base, headers, 200)
            started = time.perf_counter()
            total, cursor = 0, None
            while True:
                params = {"limit": "500"} | ({"cursor": cursor} if cursor else {})
                async with session.get(f"{base}/timeline", params=params, headers=headers) as resp:
                    doc = await resp.json()
                total += len(doc["items"])
                cursor = doc["next"]
                if cursor is None:
                    break
            walk_ms = (time.perf_counter() - started) * 1000
        return {
            "timeline_p50": statistics.median(page),
            "timeline_p95": _p(page, 95),
            "person_p50": statistics.median(one),
            "person_p95": _p(one, 95),
            "walk_ms": walk_ms,
            "walk_items": float(total),
        }
    finally:
        await runner.cleanup()


async def _drop_schemas(dsn: str, *schemas: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for schema in schemas:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def _delete_topics(bootstrap: str, *sets: kafka.Topics) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [
            t
            for topics in sets
            for t in (topics.raw, topics.enriched, topics.identity_changes, topics.dlq, topics.config)
            if t in existing
        ]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """The three measurements; a :class:`benchmarks.harness.BenchResult`."""
    tag = uuid.uuid4().hex[:8]
    schema, naive_schema, prefix = f"bench_crm_{tag}", f"bench_crm_naive_{tag}", f"bench-crm-{tag}."
    topics = kafka.Topics.with_prefix(prefix)
    api_prefix = f"{prefix}api."  # the API's own (empty) topics: its consumer must not re-read the stream
    try:
        await kafka.ensure_topics(kafka_bootstrap, topics, PARTITIONS)
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        await pg.migrate(pg_dsn, naive_schema, MIGRATIONS)
        events = generate(EVENTS)
        await _produce(kafka_bootstrap, topics.enriched, events)
        tune_gc()  # as `leadline crm-core` does at start
        rate = await measure_ingest(kafka_bootstrap, pg_dsn, schema, topics, len(events))
        naive = await measure_naive(pg_dsn, naive_schema, generate(NAIVE_EVENTS, seed=12))
        read = await measure_timeline(kafka_bootstrap, pg_dsn, schema, api_prefix)
    finally:
        await _drop_schemas(pg_dsn, schema, naive_schema)
        await _delete_topics(kafka_bootstrap, topics, kafka.Topics.with_prefix(api_prefix))
    ratio = rate / naive
    return {
        "title": "crm-core: capture.enriched.v1 into PostgreSQL; a person's timeline",
        "rows": [
            {
                "metric": "ingestion (Kafka → PostgreSQL, crm-core's loop)",
                "value": round(rate),
                "unit": "events/s",
                "target": f">= {TARGET_RATE:.0f}",
                "baseline": f"{naive:.0f} events/s naive",
            },
            {
                "metric": "ingestion vs naive one-INSERT-per-event",
                "value": round(ratio, 1),
                "unit": "x",
                "target": ">= 10",
                "baseline": None,
            },
            {
                "metric": "naive one INSERT per event (from memory)",
                "value": round(naive),
                "unit": "events/s",
                "target": None,
                "baseline": None,
            },
            {
                "metric": f"timeline first page, person with {TIMELINE_TOUCHPOINTS:,} touchpoints, p50",
                "value": round(read["timeline_p50"], 2),
                "unit": "ms",
                "target": f"<= {TARGET_READ_MS:.0f}",
                "baseline": None,
            },
            {
                "metric": "timeline first page, p95",
                "value": round(read["timeline_p95"], 2),
                "unit": "ms",
                "target": f"<= {TARGET_READ_MS:.0f}",
                "baseline": None,
            },
            {
                "metric": "GET person, p50",
                "value": round(read["person_p50"], 2),
                "unit": "ms",
                "target": f"<= {TARGET_READ_MS:.0f}",
                "baseline": None,
            },
            {
                "metric": f"whole timeline ({read['walk_items']:.0f} items, pages of 500)",
                "value": round(read["walk_ms"], 1),
                "unit": "ms",
                "target": None,
                "baseline": None,
            },
        ],
        "notes": (
            f"{len(events):,} enriched events over {PERSONS:,} persons (3 % identifying forms, 3 % email clicks, "
            f"2 % ad clicks, the rest page views) in interleaved visits of 1-12 events, {PARTITIONS} partitions, "
            f"batches of up to {BATCH_MAX:,} split by person over {WRITERS} connections; each shard is one "
            "PostgreSQL transaction (dedup lookup, person facts with score and stage log, COPY of the new "
            "touchpoints) and offsets are committed after all shards of a batch. GC thresholds as the service "
            f"sets them (leadline_crm.ingest.tune_gc). The naive writer stores {NAIVE_EVENTS:,} events, one "
            "transaction each, from memory. The timeline is read over HTTP from crm-core's own app on a loopback "
            "port (default page of 50, all sources merged), 200 calls after 20 warm-up calls; Kafka, PostgreSQL "
            "and the benchmark share the machine's cores."
        ),
    }


def main() -> int:
    """Run against the local stack (or LEADLINE_KAFKA_BOOTSTRAP / LEADLINE_PG_DSN) and print the figures."""
    bootstrap = os.environ.get("LEADLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    dsn = os.environ.get("LEADLINE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/leadline")
    result = asyncio.run(run(bootstrap, dsn))
    for row in result["rows"]:
        print(f"{row['metric']}: {row['value']} {row['unit']} (target {row['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
