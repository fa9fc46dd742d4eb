"""The demo site's configuration (ARCHITECTURE.md §7), published for the collector by ``leadline seed-demo``."""

from __future__ import annotations

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
