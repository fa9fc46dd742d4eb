"""POST /api/v1/links: email links signed with the key ring the collector verifies with."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from leadline_crm.settings import CrmSettings
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
