"""crm-core: enriched events into PostgreSQL, against a naive one-INSERT-per-event writer; a person's timeline.

1. A realistic enriched stream is written to a topic first (mostly page views of a few thousand persons, some
   pricing views, email and ad clicks, identifying form submissions). crm-core's own ingestion loop
   (:class:`leadline_crm.ingest.consumer.Ingestor`: consume, decode, batch upsert with unnest arrays, person facts,
   score and lifecycle, commit offsets after the PostgreSQL transaction) then drains it into a fresh schema.
   The rate is events divided by the time from the first records fetched to the last touchpoint stored.
2. The naive baseline writes a slice of the same events with one INSERT per event (its person upsert and its
   touchpoint, each event its own transaction), reading them from memory, not from Kafka, so it pays no
   consumer cost: the ratio is, if anything, in the baseline's favour.
3. A person with 10,000 touchpoints (plus activities and stage moves) is read through the HTTP API:
   ``GET /api/v1/persons/{id}`` and ``GET /api/v1/persons/{id}/timeline`` (first page, 50 items), each timed
   from request to parsed JSON over many calls; and the whole history paged through at 500 per page.
4. Would partitioning touchpoints by month pay (issue 6)? The same year of events (arriving in time order, one
   heavy person among them) is written into two fresh schemas through crm-core's write path
   (:func:`leadline_crm.ingest.touches.write_batch`, from memory, batch by batch alternating between the schemas):
   one with touchpoints as migrated, one where touchpoints is ``PARTITION BY RANGE (occurred_at)`` with a
   partition per calendar month and the same indexes (the primary key has to include ``occurred_at``). Then
   both answer the timeline's SQL (:data:`leadline_crm.people.queries.TIMELINE`, first page) for the heavy person and a
   marketing-style report (touchpoints by type in one month), calls alternating between the two.

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

from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import auth
from leadline_crm.ingest.consumer import Ingestor, tune_gc
from leadline_crm.ingest.touch import rows_for
from leadline_crm.ingest.touches import write_batch
from leadline_crm.people import queries
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
PARTITION_EVENTS = int(os.environ.get("LEADLINE_BENCH_CRM_PARTITION_EVENTS", "100000"))
PARTITION_DAYS = 365  # about twelve months of events for the partitioning comparison
TIMELINE_CALLS = 200
REPORT_CALLS = 20
# A marketing report over one month: what partitioning by month should make cheap. $1, $2: the month.
MONTH_REPORT = """
SELECT type, count(*) AS n FROM touchpoints WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY type ORDER BY type
"""
PAGES = ["/", "/pricing", "/features", "/blog/a", "/blog/b", "/contact", "/docs", "/about"]

NAIVE_PERSON = """
INSERT INTO persons (person_id, first_seen, last_seen) VALUES ($1, $2, $2)
ON CONFLICT (person_id) DO UPDATE SET last_seen = GREATEST(persons.last_seen, EXCLUDED.last_seen)
"""
NAIVE_TOUCHPOINT = """
INSERT INTO touchpoints (event_id, person_id, anon_id, type, source, occurred_at, received_at, url, event, automated)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) ON CONFLICT (event_id) DO NOTHING
"""


def generate(count: int, persons: int = PERSONS, seed: int = 11, days: int = 30) -> list[EnrichedEvent]:
    """``count`` enriched events over ``persons`` persons, in visits (sessions) of 1 to 12 events.

    Like a real stream, about a hundred visits are under way at any moment and their events interleave; each
    visit's events are seconds apart, visits are spread over the last ``days`` days.
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
                [
                    rng.choice(people),
                    rng.randint(1, 12),
                    now - timedelta(seconds=rng.randint(60, days * 86400)),
                ]
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


def _month(at: datetime, ahead: int = 0) -> datetime:
    """The first instant (UTC) of ``at``'s calendar month, ``ahead`` months later."""
    index = at.year * 12 + at.month - 1 + ahead
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


async def partition_by_month(conn: asyncpg.Connection, first: datetime, last: datetime) -> int:
    """Replace the (empty) touchpoints table of the connection's schema with one partitioned by month on
    ``occurred_at``, a partition per month from ``first``'s to ``last``'s; returns how many partitions.

    Same columns (LIKE) and the same secondary indexes (replayed from pg_indexes onto the partitioned table, so
    each partition gets them); the primary key becomes (event_id, occurred_at), as PostgreSQL requires the
    partition key in a unique index of a partitioned table.
    """
    indexes = await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'touchpoints'"
        " AND indexname <> 'touchpoints_pkey'"
    )
    await conn.execute(
        "CREATE TABLE touchpoints_by_month (LIKE touchpoints INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
        " PRIMARY KEY (event_id, occurred_at)) PARTITION BY RANGE (occurred_at)"
    )
    await conn.execute("DROP TABLE touchpoints")
    await conn.execute("ALTER TABLE touchpoints_by_month RENAME TO touchpoints")
    for row in indexes:
        await conn.execute(row["indexdef"])
    count, start = 0, _month(first)
    while start <= last:
        end = _month(start, 1)
        await conn.execute(
            f"CREATE TABLE touchpoints_{start:%Y_%m} PARTITION OF touchpoints"
            f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        count, start = count + 1, end
    return count


async def _alternate(
    conns: list[asyncpg.Connection], calls: int, query: str, *args: Any
) -> list[list[float]]:
    """``calls`` runs of ``query`` on each connection, alternating (so a busy moment hits both); ms each."""
    times: list[list[float]] = [[] for _ in conns]
    for i in range(calls):
        for j in sorted(range(len(conns)), key=lambda k: (k + i) % len(conns)):
            started = time.perf_counter()
            await conns[j].fetch(query, *args)
            times[j].append((time.perf_counter() - started) * 1000)
    return times


async def measure_partitioning(dsn: str, flat: str, monthly: str) -> dict[str, float]:
    """Touchpoints as they are (``flat``) vs. partitioned by month (``monthly``), both freshly migrated: the
    write path's rate, the heavy person's first timeline page and a one-month report; ms, events/s."""
    person = new_id()
    heavy = generate(TIMELINE_TOUCHPOINTS, persons=1, seed=5, days=PARTITION_DAYS)
    for ev in heavy:
        ev.person_id = person
        ev.anon_id = f"v{person[:12]}"
    events = sorted(
        generate(PARTITION_EVENTS, seed=13, days=PARTITION_DAYS) + heavy, key=lambda e: e.occurred_at or ""
    )  # a year of live traffic arrives in time order
    times = [datetime.fromisoformat(e.occurred_at or "") for e in (events[0], events[-1])]
    pools = [await pg.create_pool(dsn, schema, min_size=1, max_size=1) for schema in (flat, monthly)]
    try:
        async with pools[0].acquire() as a, pools[1].acquire() as b:
            conns: list[asyncpg.Connection] = [a, b]
            partitions = await partition_by_month(b, *times)
            spent = [0.0, 0.0]
            for n, i in enumerate(range(0, len(events), BATCH_MAX)):
                batch = events[i : i + BATCH_MAX]
                for j in (n % 2, 1 - n % 2):
                    started = time.perf_counter()
                    await write_batch(conns[j], batch)
                    spent[j] += time.perf_counter() - started
            for conn in conns:
                await conn.execute("ANALYZE touchpoints, persons")
            page = await _alternate(conns, 20 + TIMELINE_CALLS, queries.TIMELINE, person, None, None, 51)
            month = _month(times[0], partitions // 2)
            report = await _alternate(conns, 2 + REPORT_CALLS, MONTH_REPORT, month, _month(month, 1))
            counts = [await c.fetch(MONTH_REPORT, month, _month(month, 1)) for c in conns]
            if counts[0] != counts[1] or not counts[0]:
                raise RuntimeError(f"the two tables disagree on the month's report: {counts}")
    finally:
        for pool in pools:
            await pool.close()
    out: dict[str, float] = {"partitions": float(partitions), "events": float(len(events))}
    for j, name in enumerate(("flat", "monthly")):
        out[f"{name}_rate"] = len(events) / spent[j]
        out[f"{name}_timeline_p50"] = statistics.median(page[j][20:])
        out[f"{name}_timeline_p95"] = _p(page[j][20:], 95)
        out[f"{name}_report_p50"] = statistics.median(report[j][2:])
        out[f"{name}_report_p95"] = _p(report[j][2:], 95)
    out["report_rows"] = float(sum(r["n"] for r in counts[0]))
    return out


def _row(metric: str, value: float, unit: str, baseline: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "value": value, "unit": unit, "target": None, "baseline": baseline}


def partition_rows(m: dict[str, float]) -> list[dict[str, Any]]:
    """The comparison as table rows: each figure for touchpoints as is, then partitioned by month."""
    rows: list[dict[str, Any]] = []
    figures = (
        ("rate", "ingestion (write path, from memory)", "events/s", 0),
        (
            "timeline_p50",
            f"timeline first page SQL, {TIMELINE_TOUCHPOINTS:,}-touchpoint person, p50",
            "ms",
            2,
        ),
        ("timeline_p95", "timeline first page SQL, p95", "ms", 2),
        (
            "report_p50",
            f"month report (count by type of one month, {m['report_rows']:,.0f} rows), p50",
            "ms",
            2,
        ),
        ("report_p95", "month report, p95", "ms", 2),
    )
    for key, what, unit, digits in figures:
        flat, monthly = m[f"flat_{key}"], m[f"monthly_{key}"]
        as_is = f"touchpoints as is: {what}"
        by_month = f"touchpoints by month ({m['partitions']:.0f} partitions): {what}"
        rows.append(_row(as_is, round(flat, digits), unit))
        rows.append(_row(by_month, round(monthly, digits), unit, f"{monthly / flat:.2f}x as is"))
    return rows


def _change(new: float, old: float, better: str, worse: str) -> str:
    """``new`` against ``old`` in words, e.g. "4 % slower" (rates: higher is better, give better/worse so)."""
    if abs(new / old - 1) < 0.005:
        return "the same"
    return f"{abs(new / old - 1) * 100:.0f} % {better if new > old else worse}"


def partition_verdict(m: dict[str, float]) -> str:
    """One sentence: what partitioning by month gained and cost in this run (issue 6 asks whether it pays)."""
    report = m["flat_report_p50"] / m["monthly_report_p50"]
    ingest = _change(m["monthly_rate"], m["flat_rate"], "faster", "slower")
    timeline = _change(m["monthly_timeline_p50"], m["flat_timeline_p50"], "slower", "faster")
    return (
        f"In this run, by month against as is: the month report {report:.1f}x as fast (p50), ingestion {ingest}, "
        f"the timeline's first page {timeline} (p50); it pays only where the report gains without a loss in the "
        "other two, and the dedup lookup by event_id probes every partition, so that cost grows with the months "
        "kept."
    )


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
    """The four measurements; a :class:`benchmarks.harness.BenchResult`."""
    tag = uuid.uuid4().hex[:8]
    schema, naive_schema, prefix = f"bench_crm_{tag}", f"bench_crm_naive_{tag}", f"bench-crm-{tag}."
    flat_schema, monthly_schema = f"bench_crm_flat_{tag}", f"bench_crm_monthly_{tag}"
    topics = kafka.Topics.with_prefix(prefix)
    api_prefix = f"{prefix}api."  # the API's own (empty) topics: its consumer must not re-read the stream
    try:
        await kafka.ensure_topics(kafka_bootstrap, topics, PARTITIONS)
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        await pg.migrate(pg_dsn, naive_schema, MIGRATIONS)
        await pg.migrate(pg_dsn, flat_schema, MIGRATIONS)
        await pg.migrate(pg_dsn, monthly_schema, MIGRATIONS)
        events = generate(EVENTS)
        await _produce(kafka_bootstrap, topics.enriched, events)
        tune_gc()  # as `leadline crm-core` does at start
        rate = await measure_ingest(kafka_bootstrap, pg_dsn, schema, topics, len(events))
        naive = await measure_naive(pg_dsn, naive_schema, generate(NAIVE_EVENTS, seed=12))
        read = await measure_timeline(kafka_bootstrap, pg_dsn, schema, api_prefix)
        parts = await measure_partitioning(pg_dsn, flat_schema, monthly_schema)
    finally:
        await _drop_schemas(pg_dsn, schema, naive_schema, flat_schema, monthly_schema)
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
            *partition_rows(parts),
        ],
        "notes": (
            f"{len(events):,} enriched events over {PERSONS:,} persons (3 % identifying forms, 3 % email clicks, "
            f"2 % ad clicks, the rest page views) in interleaved visits of 1-12 events, {PARTITIONS} partitions, "
            f"batches of up to {BATCH_MAX:,} split by person over {WRITERS} connections; each shard is one "
            "PostgreSQL transaction (dedup lookup, person facts with score and stage log, COPY of the new "
            "touchpoints) and offsets are committed after all shards of a batch. GC thresholds as the service "
            f"sets them (leadline_crm.ingest.consumer.tune_gc). The naive writer stores {NAIVE_EVENTS:,} events, one "
            "transaction each, from memory. The timeline is read over HTTP from crm-core's own app on a loopback "
            "port (default page of 50, all sources merged), 200 calls after 20 warm-up calls; Kafka, PostgreSQL "
            "and the benchmark share the machine's cores. Partitioning by month (issue 6): "
            f"{parts['events']:,.0f} events over {PARTITION_DAYS} days, in time order, including a person with "
            f"{TIMELINE_TOUCHPOINTS:,} touchpoints, written batch by batch (up to {BATCH_MAX:,}) through "
            "write_batch on one connection into touchpoints as migrated and into a copy partitioned by range on "
            "occurred_at, one partition per calendar month with the same indexes (primary key (event_id, "
            "occurred_at)), batches alternating between the two; then the timeline's SQL (first page of 50, "
            f"{TIMELINE_CALLS} calls after 20) and a count of touchpoints by type in one month ({REPORT_CALLS} "
            "calls after 2) on each, calls alternating; the 'by month' rows say how they compare with 'as is'. "
            f"{partition_verdict(parts)}"
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
