"""The enricher and crm-core in this process (aiohttp test servers) on the real broker and database, wired by a
test's topics, each on a schema of its own; raw events go on capture.raw.v1 as the collector writes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.app import create_app as create_crm
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_enricher.app import create_app as create_enricher
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


@dataclass
class Pipeline:
    """A running enricher + crm-core pair and what a test needs to talk to them."""

    crm: TestClient
    headers: dict[str, str]
    bootstrap: str
    topics: kafka.Topics
    dsn: str
    crm_schema: str
    identity_schema: str
    env: dict[str, str]

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        resp = await self.crm.get(path, params=params, headers=self.headers)
        return resp.status, await resp.json()

    async def persons_with(self, email: str) -> list[dict[str, Any]]:
        status, doc = await self.get("/api/v1/persons", email=email)
        assert status == 200
        items: list[dict[str, Any]] = doc["items"]
        return items

    async def publish(self, event: RawEvent) -> RawEvent:
        """Put a raw event on capture.raw.v1, as the collector writes it."""
        producer = kafka.producer(self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(self.topics.raw, event.to_json(), key=event.key())
        finally:
            await producer.stop()
        return event

    async def form(self, anon_id: str, **fields: str) -> RawEvent:
        """A web form submission."""
        return await self.publish(
            RawEvent(
                event_id=new_id(),
                type="form_submit",
                source="form",
                received_at=utc_now_iso(),
                anon_id=anon_id,
                ids={k: fields[k] for k in ("email", "phone") if k in fields},
                context={"url": "https://shop.example/contact", "user_agent": BROWSER},
                form={"key": "contact", "fields": fields},
            )
        )

    async def page_view(self, anon_id: str, url: str = "https://shop.example/") -> RawEvent:
        """A pixel page view by a cookie."""
        return await self.publish(
            RawEvent(
                event_id=new_id(),
                type="page_view",
                source="pixel",
                received_at=utc_now_iso(),
                anon_id=anon_id,
                context={"url": url, "user_agent": BROWSER},
            )
        )


@asynccontextmanager
async def run_pipeline(
    bootstrap: str, dsn: str, schema: str, run_id: str, crm_extra: dict[str, str] | None = None
) -> AsyncIterator[Pipeline]:
    """Start the enricher and crm-core for one test (``crm_extra``: more of crm-core's variables, e.g. its link
    keys); the identity schema is dropped afterwards."""
    common = {
        "LEADLINE_KAFKA_BOOTSTRAP": bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_PG_DSN": dsn,
    }
    identity_schema = f"{schema}_id"
    enricher_env = common | {
        "LEADLINE_IDENTITY_SCHEMA": identity_schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "test",
    }
    crm_env = (
        common | {"LEADLINE_CRM_SCHEMA": schema, "LEADLINE_CRM_GROUP": f"crm-{run_id}"} | (crm_extra or {})
    )
    topics = kafka.Topics.with_prefix(f"test-{run_id}.")
    try:
        async with (
            TestClient(TestServer(create_enricher(config.load(EnricherSettings, enricher_env)))),
            TestClient(TestServer(create_crm(config.load(CrmSettings, crm_env)))) as crm,
        ):
            conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
            try:
                token = await auth.create_token(conn, "rep", "sales")
            finally:
                await conn.close()
            headers = {"Authorization": f"Bearer {token}"}
            yield Pipeline(crm, headers, bootstrap, topics, dsn, schema, identity_schema, enricher_env)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {identity_schema} CASCADE")
        finally:
            await conn.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Wait until ``check`` holds (the pipeline is asynchronous); fail naming ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout}s")


async def enriched(p: Pipeline, count: int) -> dict[str, EnrichedEvent]:
    """The first ``count`` enriched events, by event id."""
    events = (
        EnrichedEvent.from_json(v) for _, v, _ in await read_topic(p.bootstrap, p.topics.enriched, count)
    )
    return {e.event_id: e for e in events}
