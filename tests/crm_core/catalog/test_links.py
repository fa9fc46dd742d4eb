"""POST /api/v1/links: email links signed with the key ring the collector verifies with."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.app import create_app
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_shared import config
from leadline_shared.signing import KeyRing

pytestmark = pytest.mark.integration


async def test_a_minted_link_verifies_with_the_shared_key_ring(
    client: TestClient, auth_headers: dict[str, dict[str, str]], crm_settings: CrmSettings
) -> None:
    body = {"target": "https://shop.example/offer", "campaign_id": "spring", "send_id": "s-1", "ttl_days": 7}
    resp = await client.post("/api/v1/links", json=body, headers=auth_headers["marketing"])
    assert resp.status == 201
    doc = await resp.json()
    payload = KeyRing.parse(crm_settings.link_keys).verify(doc["token"])
    assert payload["target"] == "https://shop.example/offer"
    assert payload["campaign_id"] == "spring"
    assert payload["kid"] == "k2"  # the first key of the ring signs
    only_old_key = KeyRing.parse("k1:fedcba9876543210fedc")
    with pytest.raises(ValueError, match="unknown key"):
        only_old_key.verify(doc["token"])


@pytest.mark.parametrize(
    ("role", "body", "status"),
    [
        (None, {"target": "https://x.example/"}, 401),
        ("sales", {"target": "https://x.example/"}, 403),
        ("marketing", {"target": "javascript:alert(1)"}, 422),
        ("marketing", {"target": "https://x.example/", "ttl_days": 0}, 422),
        ("marketing", {}, 422),
    ],
)
async def test_links_refuse_bad_calls(
    client: TestClient,
    auth_headers: dict[str, dict[str, str]],
    role: str | None,
    body: dict[str, object],
    status: int,
) -> None:
    headers = auth_headers[role] if role else {}
    resp = await client.post("/api/v1/links", json=body, headers=headers)
    assert resp.status == status


async def test_a_minted_link_comes_with_its_click_and_open_urls_on_the_collector(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    """A bare token left every sender to know the collector's routes; the answer now holds URLs ready to put in
    an email, under the collector's public URL (LEADLINE_COLLECTOR_PUBLIC_URL, default the local collector)."""
    body = {"target": "https://shop.example/offer", "campaign_id": "spring", "recipient_token": "r-1"}
    resp = await client.post("/api/v1/links", json=body, headers=auth_headers["marketing"])
    assert resp.status == 201
    doc = await resp.json()
    assert doc["click_url"] == f"http://127.0.0.1:8080/c/{doc['token']}"
    assert doc["open_url"] == f"http://127.0.0.1:8080/o/{doc['token']}.gif"


async def test_link_urls_follow_a_public_url_with_a_path_prefix(crm_settings: CrmSettings) -> None:
    """A collector served first-party under a prefix (LEADLINE_COLLECTOR_PATH_PREFIX=/ll behind the site's
    proxy) gets links under that prefix; a trailing slash in the setting makes no double slash."""
    settings = dataclasses.replace(crm_settings, collector_public_url="https://t.shop.example/ll/")
    async with TestClient(TestServer(create_app(settings))) as other:
        conn = await asyncpg.connect(settings.pg_dsn, server_settings={"search_path": settings.crm_schema})
        try:
            token = await auth.create_token(conn, "mk", "marketing")
        finally:
            await conn.close()
        resp = await other.post(
            "/api/v1/links",
            json={"target": "https://shop.example/"},
            headers={"Authorization": f"Bearer {token}"},
        )
        doc = await resp.json()
    assert doc["click_url"] == f"https://t.shop.example/ll/c/{doc['token']}"
    assert doc["open_url"] == f"https://t.shop.example/ll/o/{doc['token']}.gif"


def test_a_public_url_that_is_not_http_is_refused_at_start_up() -> None:
    """A typo here would put broken links in every email sent; crm-core refuses to start instead."""
    with pytest.raises(config.ConfigError, match="LEADLINE_COLLECTOR_PUBLIC_URL"):
        config.load(CrmSettings, {"LEADLINE_COLLECTOR_PUBLIC_URL": "t.shop.example/ll"})
