"""Building a service desk's records through the API for the service tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def api(
    client: TestClient, method: str, path: str, headers: dict[str, str], status: int, **kw: Any
) -> Any:
    """Call the API and check the status; the JSON answer (None for 204)."""
    resp = await client.request(method, path, headers=headers, **kw)
    assert resp.status == status, (resp.status, await resp.text())
    return None if status == 204 else await resp.json()


async def person(client: TestClient, headers: dict[str, str], email: str, **facts: Any) -> str:
    """A lead entered by a rep; their person id."""
    doc = await api(client, "POST", "/api/v1/leads", headers, 201, json={"email": email, **facts})
    return str(doc["id"])


async def case(client: TestClient, headers: dict[str, str], person_id: str, **body: Any) -> dict[str, Any]:
    """A case opened through the API."""
    doc: dict[str, Any] = await api(
        client, "POST", "/api/v1/cases", headers, 201,
        json={"person_id": person_id, "type": "fault", "subject": "It hums", "description": "Loud hum.", **body},
    )  # fmt: skip
    return doc
