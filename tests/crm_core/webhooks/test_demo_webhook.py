"""The demo's webhook step makes one disabled subscription, and a second run makes nothing (make demo twice)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from leadline_localstack.demo import webhooks as demo
from leadline_localstack.demo.http import Api

pytestmark = pytest.mark.integration


async def test_the_demo_subscription_is_made_once_and_left_disabled(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    token = auth_headers["admin"]["Authorization"].removeprefix("Bearer ")
    async with aiohttp.ClientSession() as session:
        api = Api(session, str(client.make_url("")), token)
        assert await demo.make(api) == {"webhooks": 1}
        assert await demo.make(api) == {"webhooks": 0}
        [sub] = (await api.get("/api/v1/webhooks"))["items"]
    assert sub["url"] == demo.URL
    assert sub["enabled"] is False
    assert "secret" not in sub
