"""``leadline seed-demo``: the demo form, write key and ad are in the CRM and on the collector's config topic."""

from __future__ import annotations

import asyncpg
import pytest

from leadline_crm import main
from leadline_crm.settings import CrmSettings
from leadline_shared import kafka, siteconfig
from support import read_topic

pytestmark = pytest.mark.integration


async def test_seed_demo_stores_and_publishes_the_demo_site(
    crm_settings: CrmSettings, kafka_bootstrap: str, topics: kafka.Topics, pg_dsn: str
) -> None:
    await main._seed(crm_settings, "http://127.0.0.1:8080")
    await main._seed(crm_settings, "http://127.0.0.1:8080")  # idempotent
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": crm_settings.crm_schema})
    try:
        form = await conn.fetchrow("SELECT fields, thank_you_url FROM forms WHERE key = 'demo'")
        ad = await conn.fetchval("SELECT landing_url FROM ads WHERE affiliate_id = 'aff1' AND ad_id = 'ad1'")
        sources = await conn.fetchval("SELECT count(*) FROM sources WHERE write_key = 'demo'")
    finally:
        await conn.close()
    assert form["thank_you_url"] == "/demo?thanks=1"
    assert ad == "http://127.0.0.1:8080/demo"
    assert sources == 1
    keys = {k for k, _, _ in await read_topic(kafka_bootstrap, topics.config, 3)}
    assert keys == {b"form:demo", b"source:demo", b"ad:aff1/ad1"}
    entry = siteconfig.decode(
        b"form:demo",
        next(v for k, v, _ in await read_topic(kafka_bootstrap, topics.config, 3) if k == b"form:demo"),
    )
    assert entry[1] == siteconfig.FormConfig(
        key="demo",
        fields=("email", "name", "phone", "company", "message"),
        thank_you_url="/demo?thanks=1",
        allowed_origins=("http://127.0.0.1:8080",),
    )
