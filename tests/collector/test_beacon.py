"""Snippet beacons (POST /e): batches from fetch or sendBeacon, client ids kept, privacy signals honoured."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_shared import kafka
from support import read_events

MakeClient = Callable[..., Awaitable[TestClient]]
CLIENT_ID = "5b8d2c70-8a3c-4e55-9c5b-0d6a1f3e2a10"


def batch(*items: dict[str, object]) -> bytes:
    return orjson.dumps({"sent_at": "2026-11-24T10:00:00.000Z", "batch": list(items)})


@pytest.mark.integration
async def test_a_send_beacon_batch_becomes_events_with_the_clients_ids(
    client: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    body = batch(
        {
            "id": CLIENT_ID,
            "type": "page_view",
            "url": "https://shop.example/?utm_medium=cpc",
            "title": "Home",
            "ts": "2026-11-24T09:59:59.000Z",
        },
        {"id": "not-a-uuid", "type": "track", "name": "video_play", "props": {"video": "intro"}},
        {
            "type": "identify",
            "traits": {"email": "Eve@Example.com", "phone": "+44 20 7946 0958", "plan": "pro"},
        },
        {"type": "explode"},
        {"type": "track"},
    )
    resp = await client.post(
        "/e",
        data=body,
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://shop.example"},
    )
    assert resp.status == 200
    assert await resp.json() == {"accepted": 3, "rejected": 2}
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    vid = resp.cookies["ll_vid"].value
    events = [orjson.loads(v) for _, v, _ in await read_events(kafka_bootstrap, topics.raw, 3)]
    page, track, identify = sorted(events, key=lambda e: ["page_view", "track", "identify"].index(e["type"]))
    assert page["event_id"] == CLIENT_ID
    assert page["occurred_at"] == "2026-11-24T09:59:59.000Z"
    assert page["sent_at"] == "2026-11-24T10:00:00.000Z"
    assert page["context"]["campaign"] == {"medium": "cpc"}
    assert track["event_id"] != "not-a-uuid"
    assert track["properties"] == {"video": "intro", "event": "video_play"}
    assert identify["ids"] == {"email": "eve@example.com", "phone": "+442079460958"}
    assert {e["anon_id"] for e in events} == {vid}
    assert {e["source"] for e in events} == {"beacon"}


async def test_preflight_is_answered_for_cross_site_fetch(memory_client: TestClient) -> None:
    resp = await memory_client.options(
        "/ll/e", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert resp.status == 204
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


async def test_global_privacy_control_means_no_cookie_and_no_personal_data(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    body = batch(
        {
            "type": "identify",
            "traits": {"email": "gpc@example.com"},
            "consent": {"analytics": True, "gpc": True},
        }
    )
    resp = await memory_client.post("/e", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert "ll_vid" not in resp.cookies
    [event] = memory_sink.messages()
    assert event["ids"] == {}
    assert "anon_id" not in event
    assert "traits" not in event["properties"]


@pytest.mark.parametrize(
    ("data", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"batch": 5}', "application/json", 400),
        (orjson.dumps([{"type": "page_view"}] * 101), "application/json", 400),
        (b"[]", "image/png", 415),
        (b"[" + b'{"type":"page_view"},' * 4000 + b"{}]", "application/json", 413),
    ],
)
async def test_bad_bodies_get_problem_json_and_nothing_is_recorded(
    memory_client: TestClient, memory_sink: MemorySink, data: bytes, ctype: str, status: int
) -> None:
    resp = await memory_client.post("/e", data=data, headers={"Content-Type": ctype})
    assert resp.status == status
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert memory_sink.events == []


async def test_auto_captured_form_fields_keep_their_json_types(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    body = batch(
        {
            "type": "form_submit",
            "form": {
                "id": "signup",
                "fields": {"email": "Fay@Example.com", "newsletter": True, "topics": ["a", "b"], "seats": 3},
            },
        }
    )
    resp = await memory_client.post("/e", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    [event] = memory_sink.messages()
    assert event["form"] == {
        "key": "signup",
        "fields": {"email": "Fay@Example.com", "newsletter": True, "topics": ["a", "b"], "seats": 3},
    }
    assert event["ids"] == {"email": "fay@example.com"}


@pytest.mark.parametrize("fast_path", ["true", "false"])
async def test_a_beacon_is_kept_or_dropped_whole_by_a_nearly_full_spool(
    make_memory_client: MakeClient, memory_sink: MemorySink, fast_path: str
) -> None:
    """A beacon is stored in one go, as one record (its events split from it by the enricher): a sink with room
    for one more record keeps every item; then, with none left (a full spool), the next beacon's items are all
    answered as rejected and counted as dropped, none half kept."""
    client = await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH=fast_path)
    memory_sink.room = 1
    items = [
        {"type": "track", "name": f"step {n}", "id": f"0192f0c4-5b7a-7cc0-8d5e-00000000000{n}"}
        for n in (1, 2, 3)
    ]
    resp = await client.post("/e", data=batch(*items), headers={"Content-Type": "text/plain"})
    assert resp.status == 200
    assert await resp.json() == {"accepted": 3, "rejected": 0}
    resp = await client.post("/e", data=batch(*items[:2]), headers={"Content-Type": "text/plain"})
    assert resp.status == 200
    assert await resp.json() == {"accepted": 0, "rejected": 2}
    assert [e.properties["event"] for e in memory_sink.events] == ["step 1", "step 2", "step 3"]
    assert len(memory_sink.batch_records) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'leadline_collector_dropped_total{source="beacon"} 2.0' in metrics
    assert 'leadline_collector_events_total{source="beacon",type="track"} 3.0' in metrics
    assert "leadline_collector_batch_records_total 1.0" in metrics
    assert "leadline_collector_batch_record_events_total 3.0" in metrics
