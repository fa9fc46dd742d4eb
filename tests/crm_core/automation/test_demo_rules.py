"""The demo's workflow rules (deploy/local demo/automation.py) are valid rules the real API takes, made once."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from leadline_localstack.demo import automation
from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api

pytestmark = pytest.mark.integration


async def test_the_demo_makes_its_rules_once(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    admin = auth_headers["admin"]
    resp = await client.post("/api/v1/users", json={"email": w.SUPPORT.email, "name": w.SUPPORT.name,
                                                    "role": "service"}, headers=admin)  # fmt: skip
    assert resp.status == 201, await resp.text()
    token = admin["Authorization"].removeprefix("Bearer ")
    async with aiohttp.ClientSession() as session:
        api = Api(session, str(client.make_url("")), token)
        assert await automation.make(api) == {"workflow_rules": 3}
        assert await automation.make(api) == {"workflow_rules": 0}
    listed = await (await client.get("/api/v1/workflow-rules", headers=admin)).json()
    assert sorted(r["trigger_type"] for r in listed["items"]) == [
        "case.created",
        "form.submitted",
        "score.changed",
    ]
    assert all(r["enabled"] for r in listed["items"])
