"""The Segment tracking API: the real segment-analytics-python client sends to Leadline unchanged."""

from __future__ import annotations

import asyncio
import base64
import gzip
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from segment.analytics.client import Client

from collector.memory_sink import MemorySink
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_shared import kafka, siteconfig
from leadline_shared.siteconfig import SourceConfig
from sites import SOURCE
from support import read_events

MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def client(site: kafka.Topics, make_client: MakeClient) -> TestClient:
    """A collector on the real broker whose config topic holds the write key ``wk_test``."""
    return await make_client()


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


@pytest.mark.integration
@pytest.mark.parametrize("gzip", [False, True])
async def test_the_real_segment_client_delivers_identify_track_page_and_alias(
    client: TestClient, kafka_bootstrap: str, site: kafka.Topics, gzip: bool
) -> None:
    host = str(client.make_url("")).rstrip("/")
    ids = await asyncio.to_thread(send_with_segment_sdk, host, SOURCE.write_key, gzip)
    events = {
        orjson.loads(v)["event_id"]: orjson.loads(v)
        for _, v, _ in await read_events(kafka_bootstrap, site.raw, 4)
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
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    resp = await memory_client.post(
        "/v1/track", json={"writeKey": "wk_test", "anonymousId": "a1", "event": "Signed Up"}
    )
    assert resp.status == 200
    assert await resp.json() == {"success": True}
    [(key, value)] = memory_sink.records()
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
    memory_client: TestClient,
    memory_sink: MemorySink,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
) -> None:
    resp = await memory_client.post(path, json=body, headers=headers)
    assert resp.status == status
    if status != 404:
        assert resp.headers["Content-Type"] == "application/problem+json"
    assert memory_sink.events == []


async def test_invalid_json_and_oversize_bodies(memory_client: TestClient) -> None:
    client = memory_client
    resp = await client.post(
        "/v1/track", data=b"{not json", headers={**basic("wk_test"), "Content-Type": "application/json"}
    )
    assert resp.status == 400
    huge = {"batch": [{"type": "track", "anonymousId": "a", "event": "x" * 1000}] * 600}
    resp = await client.post(
        "/v1/batch", data=orjson.dumps(huge), headers={**basic("wk_test"), "Content-Type": "application/json"}
    )
    assert resp.status == 413


OTHER_SOURCE = SourceConfig(write_key="wk_other", name="Other site")


async def test_a_message_id_that_is_not_a_uuid_still_deduplicates_retries_per_write_key(
    make_memory_client: MakeClient, memory_sink: MemorySink, memory_sites: SiteConfigStore
) -> None:
    """analytics.js sends ``ajs-next-<hash>``; a retry of it (single call or batch) keeps the same event id."""
    memory_sites.apply(*siteconfig.encode(OTHER_SOURCE))
    client = await make_memory_client()
    msg = {"anonymousId": "a1", "event": "Signed Up", "messageId": "ajs-next-69ab2cdd3e5f1a2b"}
    for _ in range(2):
        assert (await client.post("/v1/track", json=msg, headers=basic("wk_test"))).status == 200
    resp = await client.post("/v1/batch", json={"batch": [msg | {"type": "track"}]}, headers=basic("wk_test"))
    assert resp.status == 200
    resp = await client.post("/v1/track", json=msg, headers=basic(OTHER_SOURCE.write_key))
    assert resp.status == 200
    ids = [e["event_id"] for e in memory_sink.messages()]
    assert len(ids) == 4
    same_key, other_key = ids[:3], ids[3]
    assert len(set(same_key)) == 1
    assert str(uuid.UUID(same_key[0])) == same_key[0]
    assert other_key != same_key[0]


async def test_one_bad_message_in_a_batch_does_not_lose_the_good_ones(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    client = memory_client
    batch = [
        {"type": "track", "anonymousId": "a1", "event": "First"},
        {"type": "explode", "anonymousId": "a1"},
        {"type": "track", "anonymousId": "a1"},  # no event name
        "not an object",
        {"type": "identify", "traits": {"email": "nobody@example.com"}},  # no userId or anonymousId
        {"type": "track", "anonymousId": "a1", "event": "Second"},
    ]
    resp = await client.post("/v1/batch", json={"batch": batch}, headers=basic("wk_test"))
    assert resp.status == 200
    answer = await resp.json()
    assert answer["success"] is True
    assert (answer["accepted"], answer["rejected"]) == (2, 4)
    assert [e["index"] for e in answer["errors"]] == [1, 2, 3, 4]
    events = memory_sink.messages()
    assert sorted(e["properties"]["event"] for e in events) == ["First", "Second"]  # and nothing else
    metrics = await (await client.get("/metrics")).text()
    for reason, count in (
        ("unknown_type", 1),
        ("no_event_name", 1),
        ("not_an_object", 1),
        ("no_identity", 1),
    ):
        assert (
            f'leadline_collector_rejected_total{{endpoint="segment",reason="{reason}"}} {count}.0' in metrics
        )


async def test_a_batch_with_no_usable_message_is_refused_with_the_reasons(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    batch = [{"type": "explode", "anonymousId": "a"}, {"type": "track", "anonymousId": "a"}]
    resp = await memory_client.post("/v1/batch", json={"batch": batch}, headers=basic("wk_test"))
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert [e["index"] for e in (await resp.json())["errors"]] == [0, 1]
    assert memory_sink.events == []


async def test_identify_traits_reach_the_event_whole_and_context_traits_ride_along_other_calls(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    """crm-core fills the person from reserved traits, nested ones included (``company.name``, ``address.*``)."""
    client = memory_client
    traits = {
        "email": "dee@example.com",
        "firstName": "Dee",
        "company": {"name": "Acme", "industry": "Retail"},
        "address": {"city": "Berlin", "country": "DE", "postalCode": "10115"},
    }
    identify = {
        "userId": "u-42",
        "traits": traits,
        "context": {"traits": {"email": "stale@example.com", "plan": "pro"}},
    }
    assert (await client.post("/v1/identify", json=identify, headers=basic("wk_test"))).status == 200
    track = {"userId": "u-42", "event": "Viewed", "context": {"traits": {"email": "dee@example.com"}}}
    assert (await client.post("/v1/track", json=track, headers=basic("wk_test"))).status == 200
    group = {"userId": "u-42", "groupId": "g1", "traits": {"name": "Acme", "email": "billing@acme.example"}}
    assert (await client.post("/v1/group", json=group, headers=basic("wk_test"))).status == 200
    events = {e["type"]: e for e in memory_sink.messages()}
    assert len(memory_sink.events) == 3
    assert events["identify"]["properties"]["traits"] == traits | {"plan": "pro"}
    assert events["identify"]["ids"] == {"email": "dee@example.com", "user_id": "u-42"}
    assert events["track"]["context"]["traits"] == {"email": "dee@example.com"}
    assert events["track"]["ids"] == {"email": "dee@example.com", "user_id": "u-42"}
    assert events["group"]["properties"]["traits"] == group["traits"]
    assert events["group"]["ids"] == {"user_id": "u-42"}  # the group's email is not the person's


AJS_CALLS = {
    "t": ("track", {"event": "Order Completed", "properties": {"revenue": 42.5}}),
    "p": ("page", {"name": "Pricing", "properties": {"url": "https://shop.example/p?gclid=g7"}}),
    "i": ("identify", {"userId": "u-42", "traits": {"email": "Dee@Example.com", "plan": "pro"}}),
    "a": ("alias", {"userId": "u-42", "previousId": "anon-1"}),
    "g": ("group", {"groupId": "g1", "traits": {"name": "Acme"}}),
    "s": ("screen", {"name": "Home"}),
}


def ajs_body(letter: str) -> dict[str, Any]:
    """A call as analytics.js sends it: write key and ``ajs-next-…`` message id in the body."""
    long_call, fields = AJS_CALLS[letter]
    return {
        "type": long_call,
        "anonymousId": "anon-1",
        "messageId": f"ajs-next-{letter}69ab2cdd3e5f1a2b",
        "timestamp": "2026-11-30T12:00:00.000Z",
        "sentAt": "2026-11-30T12:00:00.100Z",
        "context": {"page": {"url": "https://shop.example/", "title": "Shop"}, "userAgent": "Mozilla/5.0"},
        "writeKey": "wk_test",
        **fields,
    }


@pytest.mark.parametrize("letter", sorted(AJS_CALLS))
async def test_analytics_js_one_letter_paths_build_the_same_event_as_the_long_ones(
    memory_client: TestClient, memory_sink: MemorySink, letter: str
) -> None:
    """A site running analytics.js posts to ``/v1/t`` etc. as text/plain; the event must be the long call's,
    event id included, so a call that arrives both ways is one event downstream."""
    long_call = AJS_CALLS[letter][0]
    body = orjson.dumps(ajs_body(letter))
    for path in (f"/v1/{long_call}", f"/v1/{letter}"):
        resp = await memory_client.post(
            path, data=body, headers={"Content-Type": "text/plain", "Origin": "https://shop.example"}
        )
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"success": True}
        assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    long_event, short_event = memory_sink.messages()
    for event in (long_event, short_event):
        del event["received_at"]
    assert short_event == long_event
    preflight = await memory_client.options(
        f"/v1/{letter}",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/t", {"writeKey": "wrong", "anonymousId": "a", "event": "x"}, 401),
        ("/v1/t", {"anonymousId": "a", "event": "x"}, 401),
        ("/v1/t", {"writeKey": "wk_test", "anonymousId": "a"}, 400),
        ("/v1/i", {"writeKey": "wk_test", "traits": {"email": "a@b.co"}}, 400),
        ("/v1/t", ["not", "an", "object"], 400),
        ("/v1/x", {"writeKey": "wk_test", "anonymousId": "a", "event": "x"}, 404),
        ("/v1/b", {"writeKey": "wk_test", "batch": "not a list"}, 400),  # analytics.js's batching mode
    ],
)
async def test_one_letter_paths_refuse_what_the_long_ones_refuse(
    memory_client: TestClient, memory_sink: MemorySink, path: str, body: Any, status: int
) -> None:
    resp = await memory_client.post(path, data=orjson.dumps(body), headers={"Content-Type": "text/plain"})
    assert resp.status == status
    if status != 404:
        assert resp.headers["Content-Type"] == "application/problem+json"
    assert memory_sink.events == []


async def test_one_letter_paths_take_gzip_and_keep_the_size_cap_like_the_long_ones(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    """Gzip bodies (Content-Encoding: gzip) are read on both forms alike; the cap counts the inflated bytes."""
    body = gzip.compress(orjson.dumps(ajs_body("t")))
    for path in ("/v1/track", "/v1/t"):
        headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
        resp = await memory_client.post(path, data=body, headers=headers)
        assert resp.status == 200, await resp.text()
    long_event, short_event = memory_sink.messages()
    assert long_event["event_id"] == short_event["event_id"]
    assert short_event["properties"]["event"] == "Order Completed"
    huge = gzip.compress(orjson.dumps(ajs_body("t") | {"properties": {"x": "y" * 600_000}}))
    for path in ("/v1/track", "/v1/t"):
        headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
        assert (await memory_client.post(path, data=huge, headers=headers)).status == 413
    assert len(memory_sink.events) == 2
