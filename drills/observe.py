"""What reached Kafka and PostgreSQL during a drill.

* :class:`RawReader` reads capture.raw.v1 from where it ended when the drill began, all through the drill (it
  rides out a broker outage: aiokafka reconnects by itself), and notes each of the drill's ids: how often it
  arrived and when first.
* :func:`pipeline_lag` is the enricher's lag on the raw topic plus crm-core's on the enriched topic: zero when
  everything that reached Kafka is in crm-core's PostgreSQL.
* :func:`touchpoints` counts crm-core's rows per drill id (touchpoints keep the event whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from drills.report import Observed
from leadline_shared import kafka

ENRICHER_GROUP = "leadline-enricher"
CRM_GROUP = "leadline-crm-core"


def event_id_of(value: bytes, prefix: str) -> str | None:
    """The drill id an event carries (a pixel's ``n``, a form's email), if it is one of this drill's."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    ident = (doc.get("properties") or {}).get("n") or (doc.get("ids") or {}).get("email")
    return ident if isinstance(ident, str) and ident.startswith(prefix + "-") else None


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` (the consumer started); RuntimeError if it does not exist."""
    # No public call fetches one topic's partitions; the collector's config reader does the same.
    await consumer._client.force_metadata_update()
    found = consumer.partitions_for_topic(topic)
    if not found:
        raise RuntimeError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(found)]


class RawReader:
    """Counts the drill's ids on the raw topic from the moment :meth:`start` returns."""

    def __init__(self, bootstrap: str, topic: str, prefix: str, obs: Observed) -> None:
        self.topic = topic
        self.prefix = prefix
        self.obs = obs
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every partition at its current end, then read in the background."""
        await self.consumer.start()
        try:
            assigned = await partitions(self.consumer, self.topic)
        except RuntimeError:
            await kafka.stop_client(self.consumer)
            raise
        self.consumer.assign(assigned)
        await self.consumer.seek_to_end(*assigned)
        for tp in assigned:
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=20_000)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    ident = event_id_of(record.value, self.prefix)
                    if ident is not None:
                        self.obs.raw[ident] += 1
                        self.obs.raw_first_seen.setdefault(ident, now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await kafka.stop_client(self.consumer)


async def offsets(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """(end offset, offset ``group`` committed) per partition of ``topic``; a partition not committed is 0."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=3000)
    await admin.start()
    try:
        await probe.start()
        committed = await admin.list_consumer_group_offsets(group)
        tps = await partitions(probe, topic)
        ends = await probe.end_offsets(tps)
    finally:
        await kafka.stop_client(probe)
        await admin.close()
    done = {tp.partition: max(0, meta.offset) for tp, meta in committed.items() if tp.topic == topic}
    return {tp.partition: end for tp, end in ends.items()}, {
        tp.partition: done.get(tp.partition, 0) for tp in tps
    }


# The enricher writes the enriched topic in transactions: each partition ends with a commit marker that a
# consumer never reads (its committed offset stays one short), so one per partition there is not lag. It writes
# the raw topic in transactions too, but only the events it splits from Segment batch and beacon records, and the
# drills' load (pixels and forms) has none: there every offset is an event.
STAGES = ((ENRICHER_GROUP, "raw", 0), (CRM_GROUP, "enriched", 1))


async def pipeline_lag(bootstrap: str, topics: kafka.Topics) -> int:
    """Events on the raw and enriched topics that the enricher and crm-core have not committed yet."""
    lag = 0
    for group, which, marker in STAGES:
        ends, committed = await offsets(bootstrap, group, getattr(topics, which))
        lag += sum(max(0, end - committed[p] - marker) for p, end in ends.items())
    return lag


async def spool_records(http: aiohttp.ClientSession, collector_url: str) -> float | None:
    """The collector's ``leadline_collector_spool_records`` gauge (None while it does not answer)."""
    try:
        async with http.get(f"{collector_url}/metrics") as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith("leadline_collector_spool_records "):
            return float(line.split()[1])
    return None


async def wait_caught_up(
    bootstrap: str, collector_url: str, topics: kafka.Topics, obs: Observed, *, timeout: float
) -> None:
    """Set ``obs.caught_up_at`` to when the backlog the fault left was drained, whatever the load since.

    That is: the collector's spool empty; then the enricher's commits past the raw topic's end as it was at that
    moment; then crm-core's commits past the enriched topic's end as it was when the enricher got there.
    """
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        while await spool_records(http, collector_url) != 0:
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.5)
    for group, which, marker in STAGES:
        target: dict[int, int] | None = None
        while True:
            if time.monotonic() >= deadline:
                return
            try:
                ends, committed = await asyncio.wait_for(
                    offsets(bootstrap, group, getattr(topics, which)), 10.0
                )
            except (KafkaError, OSError, TimeoutError, RuntimeError):
                await asyncio.sleep(0.5)
                continue
            target = ends if target is None else target
            if all(committed[p] >= end - marker for p, end in target.items()):
                break
            await asyncio.sleep(0.5)
    obs.caught_up_at = time.monotonic()


async def touchpoints(dsn: str, prefix: str, schema: str = "crm") -> Counter[str]:
    """crm-core's touchpoint rows per drill id (a pixel's ``n``, a form's email)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"""SELECT coalesce(event::json->'properties'->>'n', event::json->'ids'->>'email') AS id, count(*) AS n
                  FROM {schema}.touchpoints WHERE event LIKE $1 GROUP BY 1""",  # noqa: S608 - a fixed schema name
            f"%{prefix}-%",
        )
    finally:
        await conn.close()
    return Counter({row["id"]: int(row["n"]) for row in rows if row["id"] is not None})
