"""Site configuration for tests: a form, an affiliate ad, a write key and link keys, published like crm-core does."""

from __future__ import annotations

from leadline_shared import kafka, siteconfig

LINK_KEYS = "k1:" + "s" * 32
WEBHOOK_KEYS = "d2ViaG9vay1rZXktZm9yLXRlc3RzLW9ubHktMzJieXQ="
"""A Fernet key (32 bytes, URL-safe base64) sealing webhook secrets in tests, as `make up`'s .run/webhook.keys."""

DEMO_FORM = siteconfig.FormConfig(
    key="demo",
    fields=("email", "name", "phone", "company", "message"),
    thank_you_url="/demo?thanks=1",
    allowed_origins=("https://www.shop.example",),
)
AD = siteconfig.AdConfig(affiliate_id="aff1", ad_id="ad1", landing_url="https://www.shop.example/landing?x=1")
SOURCE = siteconfig.SourceConfig(write_key="wk_test", name="Test site")


async def publish_config(
    bootstrap: str, topic: str, entries: list[siteconfig.Entry], tombstones: tuple[str, ...] = ()
) -> None:
    """Write entries (and deletions) to the compacted config topic, as crm-core does."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for entry in entries:
            key, value = siteconfig.encode(entry)
            await producer.send_and_wait(topic, value, key=key)
        for key in tombstones:
            await producer.send_and_wait(topic, None, key=key.encode())
    finally:
        await producer.stop()
