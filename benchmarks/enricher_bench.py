"""Enricher throughput: raw topic → enriched topic with identity resolution on, against the bare Kafka rate.

A realistic stream is written to a raw topic first: mostly anonymous page views from repeat visitors (a
few thousand user agents, referrers from search, social and campaigns), some email and ad clicks, a few
identifying forms (some with an email already seen on another device, so persons merge) and a few bots.
Then, in this one process:

1. the bare rate: the same consumer group settings and transactional consume → produce → commit-offsets
   loop, copying each record unchanged (no decoding, no database);
2. the enricher's own pipeline (decode, enrich, resolve identity in PostgreSQL, encode, one Kafka
   transaction per batch) over the same stream, on a fresh identity schema, then over the same visitors again;
3. the same visitors' page and track calls as Segment batch records, as the collector stores a ``/v1/batch``
   call: split into their events, published back to the raw topic, consumed again and enriched.

Each rate is events divided by the time from the first batch to the last (group join excluded).
``python -m benchmarks.enricher_bench`` runs it against the local stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadline_enricher.app import MIGRATIONS
from leadline_enricher.enrich import EventEnricher
from leadline_enricher.identifiers import IdentifierRules
from leadline_enricher.identity import IdentityGraph
from leadline_enricher.metrics import EnricherMetrics
from leadline_enricher.pipeline import Enricher
from leadline_shared import kafka, pg
from leadline_shared.batch import BatchSender
from leadline_shared.capture import batches
from leadline_shared.capture.context import RequestView
from leadline_shared.capture.segment import Call
from leadline_shared.events import EncodedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id

EVENTS = int(os.environ.get("ENRICHER_BENCH_EVENTS", "100000"))  # a smaller figure for a quick look by hand
SPLIT_EVENTS = EVENTS // 2
PER_RECORD = 20
PARTITIONS = 6
BATCH_MAX = 2000
TARGET = 20_000.0

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel {v}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
]  # fmt: skip
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Barracuda Sentinel (EE)"]
REFERRERS = [None, None, "https://www.google.com/", "https://www.bing.com/search?q=crm", "https://t.co/abc",
             "https://www.linkedin.com/feed/", "https://shop.example/pricing", "https://blog.partner.example/post"]  # fmt: skip
PAGES = ["/", "/pricing", "/features", "/blog/a", "/blog/b", "/contact", "/docs", "/about"]


def visitors_for(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """About one visitor (cookie, user agent) per six events, from a few hundred user agents."""
    rng = random.Random(seed)
    agents = [b.format(v=v) for b in BROWSERS for v in range(60, 120)]
    return [(uuid.UUID(int=rng.getrandbits(128)).hex, rng.choice(agents)) for _ in range(max(1, count // 6))]


def generate(count: int, seed: int = 7, visitors: list[tuple[str, str]] | None = None) -> list[RawEvent]:
    """The stream: ~6 events per visitor, 1.5% link/ad clicks, 1% forms, 0.5% bots."""
    rng = random.Random(seed)
    visitors = visitors or visitors_for(count, seed)
    emails = [f"lead{i}@example.com" for i in range(max(1, count // 150))]
    events: list[RawEvent] = []
    for _ in range(count):
        anon, agent = rng.choice(visitors)
        roll = rng.random()
        url = f"https://shop.example{rng.choice(PAGES)}"
        ctx: dict[str, Any] = {
            "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "user_agent": agent,
            "url": url,
        }
        kind, source, ids = "page_view", "pixel", {}
        if roll < 0.005:
            ctx["user_agent"] = rng.choice(BOTS)
        elif roll < 0.015:
            kind, source = "form_submit", "form"
            ids = {"email": rng.choice(emails)}
        elif roll < 0.025:
            kind, source = "link_click", "link"
        elif roll < 0.03:
            kind, source = "ad_click", "affiliate"
            ctx["click_ids"] = {"gclid": uuid.uuid4().hex}
        if referrer := rng.choice(REFERRERS):
            ctx["referrer"] = referrer
        if rng.random() < 0.05:
            ctx["consent"] = {"dnt": True, "gpc": False}
        events.append(
            RawEvent(event_id=new_id(), type=kind, source=source, received_at=utc_now_iso(), anon_id=anon, ids=ids, context=ctx)
        )  # fmt: skip
    return events


def segment_records(count: int, visitors: list[tuple[str, str]], seed: int = 9) -> list[EncodedEvent]:
    """``count`` events as Segment batch records of :data:`PER_RECORD` messages, one visitor's page views and
    tracks each, as the collector stores a browser's ``/v1/batch`` call (the enricher splits, then enriches)."""
    rng = random.Random(seed)
    records: list[EncodedEvent] = []
    for start in range(0, count, PER_RECORD):
        anon, agent = rng.choice(visitors)
        view = RequestView(f"203.0.{rng.randrange(256)}.{rng.randrange(256)}", agent, "en-GB", None)
        call = Call(view, "wk_bench", "Bench site", utc_now_iso(), "DE", utc_now_iso())
        context = {"page": {"url": f"https://shop.example{rng.choice(PAGES)}?utm_source=news"}}
        batch = [
            {"type": "page", "name": "Pricing", "anonymousId": anon, "messageId": f"ajs-{start + i}"}
            if i % 4 == 0
            else {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": anon,
                "messageId": f"ajs-{start + i}",
                "properties": {"sku": f"sku-{rng.randrange(100)}", "price": 19.5},
            }
            for i in range(min(PER_RECORD, count - start))
        ]
        body = {"writeKey": "wk_bench", "context": context, "batch": batch}
        records.append(batches.record(call, orjson.dumps(body), batch[0], len(batch)))
    return records


async def _produce(bootstrap: str, topic: str, events: Sequence[RawEvent | EncodedEvent]) -> None:
    producer = kafka.producer(bootstrap, transactional_id=f"bench-load-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        publisher = BatchSender(producer)
        for i in range(0, len(events), 20_000):
            chunk = events[i : i + 20_000]
            async with producer.transaction():
                await publisher.publish([(topic, e.key(), e.to_json(), None) for e in chunk])
    finally:
        await producer.stop()


class _Clock:
    """Events done, and the time from the first batch to the last."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0
        self.done = 0

    def batch(self, started: float, count: int) -> None:
        self.first = started if self.first is None else self.first
        self.last = time.perf_counter()
        self.done += count

    def rate(self) -> float:
        return self.done / (self.last - (self.first or self.last) or 1e-9)


async def bare_rate(bootstrap: str, topics: kafka.Topics, total: int) -> float:
    """The Kafka ceiling: transactional consume → produce → commit offsets, records copied unchanged."""
    group = f"bench-bare-{uuid.uuid4().hex[:8]}"
    producer = kafka.producer(bootstrap, transactional_id=group)
    consumer = kafka.consumer(
        bootstrap, [topics.raw], group, max_poll_records=BATCH_MAX, fetch_max_bytes=16 * 1024 * 1024
    )
    await producer.start()
    await consumer.start()
    publisher = BatchSender(producer)
    clock = _Clock()
    out = f"{topics.enriched}.bare"
    try:
        while clock.done < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH_MAX)
            if not batch:
                continue
            started = time.perf_counter()
            async with producer.transaction():
                await publisher.publish([(out, r.key, r.value, None) for rs in batch.values() for r in rs])
                offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items()}
                await producer.send_offsets_to_transaction(offsets, group)
            clock.batch(started, sum(len(rs) for rs in batch.values()))
    finally:
        await consumer.stop()
        await producer.stop()
    return clock.rate()


async def enricher_rate(
    bootstrap: str,
    pool: asyncpg.Pool,
    topics: kafka.Topics,
    total: int,
    group: str,
    graph: IdentityGraph,
) -> float:
    """The enricher's pipeline over the next ``total`` events of the raw topic."""
    rules = graph.rules
    enricher = Enricher(
        bootstrap=bootstrap,
        topics=topics,
        group_id=group,
        transactional_id=group,
        pool=pool,
        metrics=EnricherMetrics.create(),
        batch_max=BATCH_MAX,
        rules=rules,
        enricher=EventEnricher(),
        graph=graph,
    )
    await enricher.start()
    task = asyncio.ensure_future(enricher.run())
    done = 0.0
    try:
        while done < total:
            await asyncio.sleep(0.005)
            done = enricher.metrics.registry.get_sample_value("leadline_enricher_events_total") or 0.0
            if task.done():
                task.result()  # the loop died: raise its error
        finished = time.perf_counter()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await enricher.stop()
    assert enricher.first_batch_at is not None
    return total / (finished - enricher.first_batch_at)


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """Generate, load, measure both rates; returns the harness's result dict."""
    run_id = uuid.uuid4().hex[:10]
    topics = kafka.Topics.with_prefix(f"bench-{run_id}.")
    schema = f"bench_{run_id}"
    await kafka.ensure_topics(kafka_bootstrap, topics, PARTITIONS)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{topics.enriched}.bare", PARTITIONS, 1)])
    finally:
        await admin.close()
    visitors = visitors_for(EVENTS)
    events = generate(EVENTS, visitors=visitors)
    await _produce(kafka_bootstrap, topics.raw, events)
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, max_size=4)
    try:
        bare = await bare_rate(kafka_bootstrap, topics, len(events))
        load_before = os.getloadavg()[0]
        group, graph = f"bench-enricher-{run_id}", IdentityGraph(IdentifierRules.create())
        rate = await enricher_rate(kafka_bootstrap, pool, topics, len(events), group, graph)
        returning = generate(EVENTS, seed=8, visitors=visitors)  # the same visitors come back
        await _produce(kafka_bootstrap, topics.raw, returning)
        warm = await enricher_rate(kafka_bootstrap, pool, topics, len(returning), group, graph)
        records = segment_records(SPLIT_EVENTS, visitors)  # the same visitors, through Segment batches
        await _produce(kafka_bootstrap, topics.raw, records)
        split = await enricher_rate(kafka_bootstrap, pool, topics, SPLIT_EVENTS, group, graph)
        persons = await pool.fetchval("SELECT count(*) FROM persons WHERE merged_into IS NULL")
        merges = await pool.fetchval("SELECT count(*) FROM changes WHERE kind = 'merge'")
    finally:
        await pool.close()
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            names = [topics.raw, topics.enriched, topics.identity_changes, topics.dlq, topics.config]
            await admin.delete_topics([*names, f"{topics.enriched}.bare"])
        finally:
            await admin.close()
    return {
        "title": "enricher: capture.raw.v1 → capture.enriched.v1, identity on",
        "rows": [
            {"metric": "enricher throughput", "value": round(rate), "unit": "events/s",
             "target": f">= {TARGET:.0f}", "baseline": f"{bare:.0f} (bare consume→produce)"},
            {"metric": "enricher throughput, visitors known (warm graph and cache)", "value": round(warm),
             "unit": "events/s", "target": f">= {TARGET:.0f}", "baseline": f"{bare:.0f} (bare consume→produce)"},
            {"metric": f"enricher throughput, Segment batch records ({PER_RECORD} messages each) split, then "
                       "enriched", "value": round(split), "unit": "events/s", "target": None,
             "baseline": f"{warm:.0f} (the warm row: the same visitors' events stored one by one)"},
            {"metric": "bare consume→produce", "value": round(bare), "unit": "events/s", "target": None,
             "baseline": None},
            {"metric": "enricher / bare", "value": round(rate / bare, 2), "unit": "ratio", "target": None,
             "baseline": None},
        ],
        "notes": (
            f"{len(events)} events ({len(events) // 6} visitors, ~1% identifying forms, 1.5% clicks, 0.5% bots) "
            f"pre-loaded on {PARTITIONS} partitions; one process, batches of up to {BATCH_MAX}, one Kafka "
            f"transaction per batch, acks=all. First pass: identity graph empty (every visitor new); second pass: "
            f"{len(returning)} more events from the same visitors, same process. After both: {persons} persons, "
            f"{merges} merges. Third pass: {SPLIT_EVENTS} events of the same visitors as "
            f"{SPLIT_EVENTS // PER_RECORD} Segment batch records (page and track calls, as the collector stores a "
            f"/v1/batch call), each split into its events, published back to the raw topic in the batch's "
            f"transaction, then consumed and enriched: the rate counts events enriched. "
            f"Rates count from the first batch to the last. Load average before the "
            f"enricher run: {load_before:.1f} (2 cores shared with the broker and PostgreSQL)."
        ),
    }  # fmt: skip


if __name__ == "__main__":
    bootstrap = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"  # the local stack's defaults
    dsn = sys.argv[2] if len(sys.argv) > 2 else "postgresql://postgres@127.0.0.1:5432/leadline"
    print(asyncio.run(run(bootstrap, dsn)))
