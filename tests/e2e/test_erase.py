"""After ``leadline erase``, no table and no kept-forever topic holds the person's email or phone (issue 11, item 7).

Before, the email stayed in identity.changes.v1, which is kept forever: every link change carried the identifier's
value. The raw, enriched and dead-letter topics cannot drop single messages; the erase result says how long they
keep them.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from crm_pipeline import Pipeline, eventually
from leadline_shared import kafka

pytestmark = pytest.mark.integration

EMAIL, PHONE = "erin.eraseme@shop.example", "+14155550188"


async def rows_holding(dsn: str, schemas: list[str], needles: list[str]) -> list[str]:
    """Every table row (as text) in ``schemas`` that contains one of ``needles``: ``schema.table`` per hit."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])", schemas
        )
        hits = []
        for t in tables:
            name = f'"{t["schemaname"]}"."{t["tablename"]}"'
            for needle in needles:
                query = f"SELECT count(*) FROM {name} r WHERE r::text ILIKE $1"  # noqa: S608 (from pg_tables)
                count = await conn.fetchval(query, f"%{needle}%")
                if count:
                    hits.append(f"{name} ({count} rows with {needle!r})")
        return hits
    finally:
        await conn.close()


async def topic_holding(bootstrap: str, topic: str, needles: list[str]) -> int:
    """How many messages of ``topic`` contain one of ``needles`` (key, value or headers)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found = 0
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                for r in records:
                    blob = (r.key or b"") + (r.value or b"") + b"".join(v for _, v in r.headers)
                    found += any(n.encode() in blob for n in needles)
    finally:
        await consumer.stop()
    return found


async def test_erase_leaves_the_email_in_no_table_and_no_kept_topic(pipeline: Pipeline) -> None:
    p = pipeline
    await p.page_view("v-erin")  # an anonymous visitor first: the form's email then *links* to that person
    await p.form("v-erin", email=EMAIL, phone=PHONE, name="Erin Example")

    async def known() -> bool:
        return bool(await p.persons_with(EMAIL))

    await eventually(known, "the form's person reaches the CRM")
    assert await topic_holding(p.bootstrap, p.topics.identity_changes, ["link"]) >= 1, (
        "a link change was made"
    )

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "leadline_shared.cli", "erase", "--email", EMAIL.upper(),
        env=p.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    said = out.decode()
    assert "erased person" in said
    for topic in (p.topics.raw, p.topics.enriched, p.topics.dlq):
        assert topic in said, f"the erase result must say how long {topic} keeps events"
    assert "7 days" in said
    assert EMAIL not in said

    async def erased_in_crm() -> bool:
        return not await p.persons_with(EMAIL) and not await rows_holding(p.dsn, [p.crm_schema], [EMAIL])

    await eventually(erased_in_crm, "crm-core applies the erase change")
    assert await rows_holding(p.dsn, [p.crm_schema, p.identity_schema], [EMAIL, PHONE, PHONE[2:]]) == []
    assert await topic_holding(p.bootstrap, p.topics.identity_changes, [EMAIL, PHONE]) == 0
    assert await topic_holding(p.bootstrap, p.topics.config, [EMAIL]) == 0
    days = kafka.retention_days(p.topics)
    assert days[p.topics.identity_changes] is None  # kept forever: the reason it must hold no values
