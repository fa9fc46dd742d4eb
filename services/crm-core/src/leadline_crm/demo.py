"""The demo site's configuration (architecture.md §7), published for the collector by ``leadline seed-demo``."""

from __future__ import annotations

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from leadline_shared import kafka, siteconfig


def demo_entries(collector_url: str) -> list[siteconfig.Entry]:
    """The demo form, write key and affiliate ad; the ad lands on the collector's demo page."""
    base = collector_url.rstrip("/")
    return [
        siteconfig.FormConfig(
            key="demo",
            fields=("email", "name", "phone", "company", "message"),
            thank_you_url="/demo?thanks=1",
            allowed_origins=(base,),
        ),
        siteconfig.SourceConfig(write_key="demo", name="Demo site"),
        siteconfig.AdConfig(affiliate_id="aff1", ad_id="ad1", landing_url=f"{base}/demo", name="Demo ad"),
    ]


async def publish(bootstrap: str, topics: kafka.Topics, entries: list[siteconfig.Entry]) -> None:
    """Write entries to the compacted config topic and wait for the acknowledgements."""
    producer: AIOKafkaProducer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for entry in entries:
            key, value = siteconfig.encode(entry)
            await producer.send_and_wait(topics.config, value, key=key)
    finally:
        await producer.stop()


async def store(conn: asyncpg.Connection, entries: list[siteconfig.Entry]) -> None:
    """Put the entries in crm-core's tables (where the API manages them); existing rows are left as they are,
    so running the seed again never undoes an admin's edit."""
    async with conn.transaction():
        for entry in entries:
            if isinstance(entry, siteconfig.FormConfig):
                await conn.execute(
                    "INSERT INTO forms (key, name, fields, required, allowed_origins, thank_you_url)"
                    " VALUES ($1, $1, $2::text::jsonb, $3::text::jsonb, $4::text::jsonb, $5) ON CONFLICT DO NOTHING",
                    entry.key,
                    orjson.dumps(entry.fields).decode(),
                    orjson.dumps(entry.required).decode(),
                    orjson.dumps(entry.allowed_origins).decode(),
                    entry.thank_you_url,
                )
            elif isinstance(entry, siteconfig.SourceConfig):
                await conn.execute(
                    "INSERT INTO sources (write_key, name, settings) VALUES ($1, $2, $3::text::jsonb)"
                    " ON CONFLICT DO NOTHING",
                    entry.write_key,
                    entry.name,
                    orjson.dumps(entry.settings).decode(),
                )
            else:
                await conn.execute(
                    "INSERT INTO affiliates (affiliate_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
                    entry.affiliate_id,
                )
                await conn.execute(
                    "INSERT INTO ads (affiliate_id, ad_id, name, landing_url) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT DO NOTHING",
                    entry.affiliate_id,
                    entry.ad_id,
                    entry.name,
                    entry.landing_url,
                )
