"""The enricher splits the Segment batch records the collector publishes (docs/proposals/batch-records.md), on the
real broker and database: each record's accepted messages go back to capture.raw.v1 as the events
:func:`leadline_shared.capture.batches.split` makes, and each of those is enriched exactly once; a record that
cannot be split goes to the DLQ; a SIGKILL mid-split under load duplicates and loses nothing."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer

from enricher.transactions import OpenTransactions, kill_inside_transaction, produce_slowly
from leadline_enricher.app import create_app
from leadline_enricher.settings import EnricherSettings
from leadline_localstack import procs, services
from leadline_shared import config, kafka
from leadline_shared.capture import batches
from leadline_shared.capture.clientids import scoped_id
from leadline_shared.capture.context import RequestView
from leadline_shared.capture.segment import Call, refusal
from leadline_shared.events import SEGMENT_BATCH, EncodedEvent, EnrichedEvent, RawEvent, utc_now_iso
from support import metric, produce, read_topic, topic_is_quiet, wait_for_metric

pytestmark = pytest.mark.integration

ENRICHER = next(s for s in services.SERVICES if s.name == "enricher")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
WRITE_KEY = "wk_split"
PER_RECORD = 20
SPLIT_FIELDS = ("type", "source", "received_at", "sent_at", "occurred_at", "anon_id", "ids", "properties")


@pytest.fixture
def env(kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str) -> dict[str, str]:
    """The in-process enricher's settings for this test."""
    return {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_PG_DSN": pg_dsn,
        "LEADLINE_IDENTITY_SCHEMA": schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "test",
    }


@pytest.fixture
async def enricher(env: dict[str, str], topics: kafka.Topics) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(config.load(EnricherSettings, env)))) as c:
        yield c


def message(r: int, i: int) -> dict[str, Any]:
    """Message ``i`` of record ``r``: several visitors per record, some identified, a deterministic messageId."""
    n = r * PER_RECORD + i
    msg: dict[str, Any] = {"messageId": f"m-{r}-{i}", "timestamp": "2026-12-01T09:59:58.000Z"}
    if i % 5 == 4:
        msg |= {"type": "identify", "traits": {"email": f"buyer{n % 13}@example.com", "name": "Kim"}}
    elif i % 3 == 0:
        msg |= {"type": "page", "name": "Product", "properties": {"url": f"https://shop.example/p/{n}"}}
    else:
        msg |= {"type": "track", "event": "Order Completed", "properties": {"order_id": f"o-{n}", "total": n}}
    if i % 7 == 6:
        msg["userId"] = f"u-{n % 11}"  # a server-side message: a user id, no cookie
    else:
        msg["anonymousId"] = f"a-{n % 9}"
    if i % 4 == 1:
        msg["context"] = {
            "userAgent": "Mozilla/5.0 (iPhone) Mobile/15E148",
            "page": {"url": "https://m.shop.example/"},
        }
    return msg


def body(r: int, refused: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A /v1/batch body of PER_RECORD messages; ``refused`` puts messages the collector refuses at some indexes."""
    batch = [message(r, i) for i in range(PER_RECORD)]
    for i, bad in (refused or {}).items():
        batch[i] = bad
    return {
        "writeKey": WRITE_KEY,
        "sentAt": "2026-12-01T09:59:59.900Z",
        "context": {
            "page": {"url": "https://shop.example/landing?utm_source=news&gclid=g-1"},
            "locale": "en-GB",
        },
        "batch": batch,
    }


def record(doc: dict[str, Any]) -> EncodedEvent:
    """The record the collector publishes for this body (as segment.judge_batch does)."""
    call = Call(
        RequestView("81.2.69.160", BROWSER, "en-GB", None),
        WRITE_KEY,
        "Split shop",
        doc["sentAt"],
        "GB",
        utc_now_iso(),
    )
    accepted = [item for item in doc["batch"] if refusal(item) is None]
    return batches.record(call, orjson.dumps(doc), accepted[0], len(accepted))


def split_of(rec: EncodedEvent) -> list[EncodedEvent]:
    """What the enricher must publish for the record: its split as read off the topic."""
    return batches.split(RawEvent.from_json(rec.wire_value))


def is_record(value: bytes) -> bool:
    return bool(orjson.loads(value)["type"] == SEGMENT_BATCH)


async def test_records_split_into_their_events_which_are_enriched_once_each(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    no_identity = {"type": "track", "event": "Order Completed", "messageId": "refused-1"}
    no_name = {"type": "track", "anonymousId": "a-1", "messageId": "refused-2"}
    records = [
        record(body(r, {2: no_identity} if r == 2 else {5: no_name} if r == 3 else None)) for r in range(5)
    ]
    expected = {
        e.event_id: (e.wire_key, orjson.loads(e.wire_value)) for rec in records for e in split_of(rec)
    }
    accepted = 5 * PER_RECORD - 2
    assert len(expected) == accepted  # the messageIds make distinct, deterministic event ids
    await produce(kafka_bootstrap, topics.raw, [(rec.wire_key, rec.wire_value) for rec in records])

    raw = await read_topic(kafka_bootstrap, topics.raw, len(records) + accepted)
    assert sorted(v for _, v, _ in raw if is_record(v)) == sorted(rec.wire_value for rec in records)
    split = [(i, k, orjson.loads(v)) for i, (k, v, _) in enumerate(raw) if not is_record(v)]
    assert Counter(doc["event_id"] for _, _, doc in split) == dict.fromkeys(expected, 1)  # each once
    assert {doc["event_id"]: (k, doc) for _, k, doc in split} == expected  # the split's key and JSON, exactly
    refused = {scoped_id(WRITE_KEY, m["messageId"]) for m in (no_identity, no_name)}
    assert not refused & {doc["event_id"] for _, _, doc in split}  # what the collector refused is not made
    # one key's events keep the body's order (they share a partition, read in offset order)
    position = {doc["event_id"]: i for i, _, doc in split}
    for rec in records:
        by_key: dict[bytes, list[int]] = {}
        for e in split_of(rec):
            by_key.setdefault(e.wire_key, []).append(position[e.event_id])
        assert all(p == sorted(p) for p in by_key.values())

    enriched = await read_topic(kafka_bootstrap, topics.enriched, accepted)
    seen = Counter(EnrichedEvent.from_json(v).event_id for _, v, _ in enriched)
    assert set(seen) == set(expected)
    assert not refused & set(seen)
    assert max(seen.values()) == 1
    assert not {rec.event_id for rec in records} & set(seen)  # a record itself is never enriched
    for _, value, _ in enriched:  # the split event, enriched: its own fields travel unchanged
        doc = orjson.loads(value)
        made = expected[doc["event_id"]][1]
        assert {k: doc.get(k) for k in SPLIT_FIELDS} == {k: made.get(k) for k in SPLIT_FIELDS}
        assert doc["person_id"]
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, accepted) == accepted
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 0, wait=0) == len(records) + accepted
    assert await topic_is_quiet(kafka_bootstrap, topics.dlq, 0, wait=0) == 0

    await wait_for_metric(enricher, "leadline_enricher_split_records_total", len(records), exact=True)
    assert await metric(enricher, "leadline_enricher_split_events_total") == accepted
    assert await metric(enricher, "leadline_enricher_events_total") == accepted


async def test_a_record_that_cannot_be_split_goes_to_the_dlq_and_the_partition_moves_on(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    good = record(body(0))
    doc = orjson.loads(good.wire_value)
    no_call = orjson.dumps(doc | {"event_id": "bad-1", "properties": doc["properties"] | {"call": None}})
    del doc["properties"]["call"]
    without_call = orjson.dumps(doc | {"event_id": "bad-2"})
    not_a_list = orjson.dumps(
        doc | {"event_id": "bad-3", "properties": doc["properties"] | {"body": {"batch": 3}}}
    )
    bad_view = orjson.loads(good.wire_value)
    bad_view["properties"]["call"]["user_agent"] = 42
    wrong_agent = orjson.dumps(bad_view | {"event_id": "bad-4"})
    bad = [no_call, without_call, not_a_list, wrong_agent]
    # one key, so one partition: the good record comes after the bad ones
    await produce(
        kafka_bootstrap, topics.raw, [(good.wire_key, v) for v in bad] + [(good.wire_key, good.wire_value)]
    )

    dead = await read_topic(kafka_bootstrap, topics.dlq, len(bad))
    assert [v for _, v, _ in dead] == bad
    for _, _, headers in dead:
        assert headers["stage"] == b"split"
        assert headers["service"] == b"enricher"
        assert b"segment_batch record" in headers["reason"]
    made = split_of(good)
    enriched = await read_topic(kafka_bootstrap, topics.enriched, len(made))
    assert sorted(EnrichedEvent.from_json(v).event_id for _, v, _ in enriched) == sorted(
        e.event_id for e in made
    )
    # nothing of the bad records was split: the raw topic holds the five records and the good one's events
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 0) == len(bad) + 1 + len(made)
    assert await topic_is_quiet(kafka_bootstrap, topics.dlq, 0, wait=0) == len(bad)
    metrics = await (await enricher.get("/metrics")).text()
    assert f'leadline_enricher_dead_letters_total{{reason="invalid"}} {float(len(bad))}' in metrics
    assert await metric(enricher, "leadline_enricher_split_records_total") == 1
    assert await metric(enricher, "leadline_enricher_split_events_total") == len(made)
    assert (await enricher.get("/readyz")).status == 200


# --- SIGKILL under load, modelled on test_crash.py ---------------------------------------------------------------

RECORDS = 150
TOTAL = RECORDS * PER_RECORD


async def count(bootstrap: str, topic: str, isolation_level: str) -> int:
    """Every record on ``topic`` for a reader of this isolation level (control records not counted)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level=isolation_level, enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    total = 0
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            total += sum(len(r) for r in batch.values())
    finally:
        await consumer.stop()
    return total


async def test_sigkill_mid_split_then_restart_gives_every_message_exactly_once(
    process_env: dict[str, str], run_dir: Path, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    records = [record(body(r)) for r in range(RECORDS)]
    expected = {e.event_id for rec in records for e in split_of(rec)}
    assert len(expected) == TOTAL
    await asyncio.to_thread(services.start_service, run_dir, ENRICHER, process_env)
    producing = asyncio.ensure_future(
        produce_slowly(kafka_bootstrap, topics.raw, [(r.wire_key, r.wire_value) for r in records], 2)
    )
    async with OpenTransactions(kafka_bootstrap, [topics.raw, topics.enriched]) as probe:
        await read_topic(kafka_bootstrap, topics.enriched, 300, timeout=30.0)  # under way
        pid = services.running_pid(run_dir, "enricher")
        assert pid is not None
        open_raw = (await kill_inside_transaction(pid, probe, topics.raw))[topics.raw]
    assert await asyncio.to_thread(procs._CHILDREN[pid].wait, 10) == -signal.SIGKILL
    assert open_raw > 0  # split events of the killed transaction were in the log, uncommitted
    assert not producing.done(), "the kill came too late to land mid-stream"
    in_flight = TOTAL - await count(kafka_bootstrap, topics.enriched, "read_committed")
    assert in_flight > 1000, f"only {in_flight} events were left to enrich at the kill"

    await asyncio.to_thread(services.start_service, run_dir, ENRICHER, process_env)
    await producing
    rows = await read_topic(kafka_bootstrap, topics.enriched, TOTAL, timeout=60.0)
    seen = Counter(EnrichedEvent.from_json(v).event_id for _, v, _ in rows)
    assert set(seen) == expected
    assert max(seen.values()) == 1
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, TOTAL) == TOTAL

    raw = await read_topic(kafka_bootstrap, topics.raw, RECORDS + TOTAL, timeout=30.0)
    split = Counter(
        doc["event_id"] for doc in (orjson.loads(v) for _, v, _ in raw) if doc["type"] != SEGMENT_BATCH
    )
    assert set(split) == expected
    assert max(split.values()) == 1  # the aborted split is invisible, its replay published once
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 0, wait=0) == RECORDS + TOTAL
    # the aborted split's events are still in the log, where only a read_uncommitted reader sees them
    assert await count(kafka_bootstrap, topics.raw, "read_uncommitted") > RECORDS + TOTAL
    assert await topic_is_quiet(kafka_bootstrap, topics.dlq, 0, wait=0) == 0
