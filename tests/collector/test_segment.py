"""The Segment tracking API: the real segment-analytics-python client sends to Leadline unchanged."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from segment.analytics.client import Client

from leadline_shared import kafka
from sites import SOURCE
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(site: kafka.Topics, make_client: object) -> TestClient:
    return await make_client()  # type: ignore[operator,no-any-return]


def send_with_segment_sdk(host: str, write_key: str, gzip: bool) -> list[str]:
    """Calls made exactly as a Segment-instrumented Python backend makes them; returns the message ids."""
    errors: list[Any] = []
    sdk = Client(
        write_key,
        host=host,
        gzip=gzip,
        max_retries=0,
        on_error=lambda e, batch: errors.append(e),
    )
    ids = [str(uuid.uuid4()) for _ in range(4)]
    sdk.identify(
        user_id="u-42",
        anonymous_id="anon-1",
        traits={"email": "Dee@Example.com", "plan": "pro"},
        message_id=ids[0],
    )
    sdk.track(
        user_id="u-42",
        event="Order Completed",
        properties={"revenue": 42.5},
        message_id=ids[1],
        context={"campaign": {"source": "newsletter"}},
    )
    sdk.page(
        anonymous_id="anon-1",
        name="Pricing",
        properties={"url": "https://shop.example/pricing?gclid=g7"},
        message_id=ids[2],
    )
    sdk.alias(previous_id="anon-1", user_id="u-42", message_id=ids[3])
    sdk.flush()
    sdk.shutdown()
    assert errors == []
    return ids


@pytest.mark.parametrize("gzip", [False, True])
async def test_the_real_segment_client_delivers_identify_track_page_and_alias(
    client: TestClient, kafka_bootstrap: str, site: kafka.Topics, gzip: bool
) -> None:
    host = str(client.make_url("")).rstrip("/")
    ids = await asyncio.to_thread(send_with_segment_sdk, host, SOURCE.write_key, gzip)
    events = {
        orjson.loads(v)["event_id"]: orjson.loads(v)
        for _, v, _ in await read_topic(kafka_bootstrap, site.raw, 4)
    }
    assert set(events) == set(ids)
    identify, track, page, alias = (events[i] for i in ids)
    assert (identify["type"], identify["source"]) == ("identify", "segment")
    assert identify["ids"] == {"email": "dee@example.com", "user_id": "u-42"}
    assert identify["anon_id"] == "anon-1"
    assert identify["properties"]["traits"]["plan"] == "pro"
    assert track["type"] == "track"
    assert track["properties"] == {"revenue": 42.5, "event": "Order Completed"}
    assert track["context"]["campaign"] == {"source": "newsletter"}
    assert track["context"]["site"] == "Test site"
    assert page["type"] == "page_view"
    assert page["context"]["url"] == "https://shop.example/pricing?gclid=g7"
    assert page["context"]["click_ids"] == {"gclid": "g7"}
    assert alias["properties"]["previous_id"] == "anon-1"
    assert all(e["sent_at"] for e in events.values())


async def test_single_calls_with_the_write_key_in_the_body(
    client: TestClient, kafka_bootstrap: str, site: kafka.Topics
) -> None:
    resp = await client.post(
        "/v1/track", json={"writeKey": "wk_test", "anonymousId": "a1", "event": "Signed Up"}
    )
    assert resp.status == 200
    assert await resp.json() == {"success": True}
    [(key, value, _)] = await read_topic(kafka_bootstrap, site.raw, 1)
    assert key == b"a1"
    assert orjson.loads(value)["properties"]["event"] == "Signed Up"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/v1/track", {"anonymousId": "a", "event": "x"}, basic("wrong"), 401),
        ("/v1/track", {"anonymousId": "a", "event": "x"}, {}, 401),
        ("/v1/track", {"anonymousId": "a"}, basic("wk_test"), 400),
        ("/v1/identify", {"traits": {"email": "a@b.co"}}, basic("wk_test"), 400),
        ("/v1/batch", {"batch": [{"type": "explode", "anonymousId": "a"}]}, basic("wk_test"), 400),
        ("/v1/batch", {"batch": "nope"}, basic("wk_test"), 400),
        ("/v1/nope", {}, basic("wk_test"), 404),
    ],
)
async def test_bad_calls_get_problem_json_and_record_nothing(
    client: TestClient,
    kafka_bootstrap: str,
    site: kafka.Topics,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
) -> None:
    resp = await client.post(path, json=body, headers=headers)
    assert resp.status == status
    if status != 404:
        assert resp.headers["Content-Type"] == "application/problem+json"
    assert await topic_is_quiet(kafka_bootstrap, site.raw, 0, wait=0.3) == 0


async def test_invalid_json_and_oversize_bodies(client: TestClient) -> None:
    resp = await client.post(
        "/v1/track", data=b"{not json", headers={**basic("wk_test"), "Content-Type": "application/json"}
    )
    assert resp.status == 400
    huge = {"batch": [{"type": "track", "anonymousId": "a", "event": "x" * 1000}] * 600}
    resp = await client.post(
        "/v1/batch", data=orjson.dumps(huge), headers={**basic("wk_test"), "Content-Type": "application/json"}
    )
    assert resp.status == 413
