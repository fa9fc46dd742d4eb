"""Segment calls and the snippet's ``/e`` on the lean path: the same events and answers as aiohttp's routes.

Each test runs a collector with the fast path and one without (``LEADLINE_COLLECTOR_FAST_PATH=false``) and sends
both the same bytes; aiohttp's answers carry its ``Server`` header and the lean path's do not, and
``leadline_collector_fast_path_answers_total`` counts what the lean path answered, which tells who answered.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from collector.test_fastpath import connect, read_response
from collector.test_segment import send_with_segment_sdk
from leadline_collector.fastpath import FAST_PATH, FastPath, _content_length
from leadline_collector.httperrors import HTTP_METRICS
from leadline_collector.leanpost import body_json, json_answer
from leadline_localstack import procs, services
from leadline_shared import kafka
from support import read_events, read_topic, topic_is_quiet

MakeClient = Callable[..., Awaitable[TestClient]]
LOCAL = "127.0.0.1/32"
UA = "Mozilla/5.0 (X11; Linux x86_64) Test/1.0"
VID = "0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e"
CONTEXT = {
    "page": {"url": "https://shop.example/pricing?utm_source=news&gclid=g1", "title": "Pricing"},
    "locale": "de-DE",
    "traits": {"email": "Dee@Example.com"},
}


def message(call: str, n: int) -> dict[str, Any]:
    """A Segment message of each call type, as the SDKs send it."""
    fields: dict[str, Any] = {
        "track": {"event": "Order Completed", "properties": {"revenue": 42.5}},
        "identify": {"userId": "u-42", "traits": {"email": "Dee@Example.com", "plan": "pro"}},
        "page": {"name": "Pricing", "properties": {"url": "https://shop.example/p?gclid=g7"}},
        "screen": {"name": "Home"},
        "group": {"groupId": "g1", "traits": {"name": "Acme", "email": "info@acme.example"}},
        "alias": {"userId": "u-42", "previousId": "anon-1"},
    }[call]
    return {
        "type": call,
        "anonymousId": "anon-1",
        "messageId": f"m-{call}-{n}",
        "timestamp": "2026-11-30T12:00:00.000Z",
        "context": CONTEXT,
        **fields,
    }


SHORT = {"track": "t", "identify": "i", "page": "p", "screen": "s", "group": "g", "alias": "a"}
CALLS: list[tuple[str, dict[str, Any]]] = [
    *((f"/v1/{call}", message(call, 0) | {"writeKey": "wk_test"}) for call in SHORT),
    *((f"/v1/{letter}", message(call, 1) | {"writeKey": "wk_test"}) for call, letter in SHORT.items()),
    (
        "/v1/batch",
        {"writeKey": "wk_test", "batch": [message(c, 2) for c in SHORT], "sentAt": "2026-11-30T12:01Z"},
    ),
    ("/v1/b", {"writeKey": "wk_test", "batch": [message("track", 3), message("page", 3)]}),
    (
        "/e",
        {
            "sent_at": "2026-11-30T12:01:00Z",
            "batch": [
                {
                    "type": "page_view",
                    "id": "0192f0c4-5b7a-7cc0-8d5e-000000000001",
                    "url": "https://shop.example/?utm_source=ads",
                    "title": "Shop",
                },
                {
                    "type": "track",
                    "id": "0192f0c4-5b7a-7cc0-8d5e-000000000002",
                    "name": "clicked",
                    "props": {"plan": "pro"},
                },
                {
                    "type": "identify",
                    "id": "0192f0c4-5b7a-7cc0-8d5e-000000000003",
                    "traits": {"email": "Dee@Example.com"},
                },
                {
                    "type": "form_submit",
                    "id": "0192f0c4-5b7a-7cc0-8d5e-000000000004",
                    "form": {"id": "f1", "fields": {"email": "a@b.example"}},
                },
            ],
        },
    ),
]
"""Every call type on its long and one-letter path, both batch paths and a snippet batch."""
SENT = len(SHORT) * 2 + len(SHORT) + 2 + 4
"""Events the calls above make."""


def fast(client: TestClient) -> FastPath:
    return client.app[FAST_PATH]  # type: ignore[index]


def answered_lean(client: TestClient) -> int:
    """Requests the lean path answered (``leadline_collector_fast_path_answers_total``, all routes)."""
    return sum(client.app[HTTP_METRICS].fast_answers.tally.values())


def post(path: str, body: bytes, *extra: str) -> bytes:
    """A POST request with a Content-Length body."""
    lines = [f"POST {path} HTTP/1.1", "Host: collector.test", f"User-Agent: {UA}", *extra]
    return ("\r\n".join([*lines, f"Content-Length: {len(body)}"]) + "\r\n\r\n").encode() + body


async def exchange(
    client: TestClient, request: bytes, count: int = 1
) -> list[tuple[int, dict[str, str], bytes]]:
    """Write ``request`` on a new connection and read ``count`` answers."""
    reader, writer = await connect(client)
    writer.write(request)
    answers = [await read_response(reader) for _ in range(count)]
    writer.close()
    return answers


def same_answer(lean: tuple[int, dict[str, str], bytes], plain: tuple[int, dict[str, str], bytes]) -> None:
    """Status, body and every header but the server's own (``Server``, ``Date``) are the same."""
    assert "server" not in lean[1]
    assert "server" in plain[1]
    assert lean[0] == plain[0]
    assert lean[2] == plain[2]
    volatile = {"server", "date", "set-cookie"}
    assert {k: v for k, v in lean[1].items() if k not in volatile} == {
        k: v for k, v in plain[1].items() if k not in volatile
    }


@pytest.mark.integration
@pytest.mark.parametrize("encoding", ["plain", "gzip"])
async def test_every_segment_call_and_the_snippet_batch_give_both_paths_the_same_events_and_answers(
    make_client: MakeClient, site: kafka.Topics, kafka_bootstrap: str, encoding: str
) -> None:
    """Field by field, through the real broker: the same events (ids included) and the same answers."""
    lean = await make_client(LEADLINE_TRUSTED_PROXIES=LOCAL)
    plain = await make_client(LEADLINE_COLLECTOR_FAST_PATH="false", LEADLINE_TRUSTED_PROXIES=LOCAL)
    headers = (
        "Content-Type: text/plain",
        "Origin: https://shop.example",
        "X-Forwarded-For: 203.0.113.9",
        "Accept-Language: fr-CH",
        f"Cookie: ll_vid={VID}",
        *(["Content-Encoding: gzip"] if encoding == "gzip" else []),
    )
    for path, doc in CALLS:
        body = orjson.dumps(doc)
        request = post(path, gzip.compress(body) if encoding == "gzip" else body, *headers)
        [lean_answer] = await exchange(lean, request)
        [plain_answer] = await exchange(plain, request)
        same_answer(lean_answer, plain_answer)
        assert lean_answer[0] == 200, (path, lean_answer)
        assert lean_answer[1]["access-control-allow-origin"] == "https://shop.example"
        if path == "/e":
            assert lean_answer[1]["set-cookie"] == plain_answer[1]["set-cookie"]
            assert orjson.loads(lean_answer[2]) == {"accepted": 4, "rejected": 0}
    assert answered_lean(lean) == len(CALLS)
    assert answered_lean(plain) == 0
    copies: dict[str, list[dict[str, Any]]] = {}
    for _, value, _ in await read_events(kafka_bootstrap, site.raw, 2 * SENT):
        event = orjson.loads(value)
        event.pop("received_at")
        copies.setdefault(event["event_id"], []).append(event)
    assert len(copies) == SENT
    for one, other in copies.values():
        assert one == other
    by_id = {event_id: events[0] for event_id, events in copies.items()}
    assert {e["type"] for e in by_id.values()} >= {
        "track",
        "identify",
        "page_view",
        "screen",
        "group",
        "alias",
    }
    assert all(e["context"]["ip"] == "203.0.113.9" for e in by_id.values())
    segment_events = [e for e in by_id.values() if e["source"] == "segment"]
    assert all(e["context"]["campaign"] == {"source": "news"} for e in segment_events)
    assert all(e["anon_id"] == VID for e in by_id.values() if e["source"] == "beacon")


async def test_a_segment_batch_with_one_bad_message_is_answered_the_same_on_both_paths(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    body = orjson.dumps(
        {"writeKey": "wk_test", "batch": [message("track", 1), {"type": "track", "anonymousId": "a"}, "x"]}
    )
    lean, plain = await make_memory_client(), await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH="false")
    request = post("/v1/batch", body, "Content-Type: application/json")
    [lean_answer], [plain_answer] = await exchange(lean, request), await exchange(plain, request)
    same_answer(lean_answer, plain_answer)
    assert orjson.loads(lean_answer[2])["rejected"] == 2
    assert len(memory_sink.events) == 2
    assert memory_sink.durable == [True, True]


def chunked(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return head.encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


TRACK = orjson.dumps(message("track", 9) | {"writeKey": "wk_test"})
HUGE = orjson.dumps(message("track", 9) | {"writeKey": "wk_test", "properties": {"x": "y" * 600_000}})
REFUSALS = [
    (
        post("/v1/t", b'{"writeKey": "wk_test", "anon', "Content-Type: text/plain"),
        400,
        False,
        "malformed JSON",
    ),
    (post("/e", b"[{]", "Content-Type: application/json"), 400, False, "malformed JSON, /e"),
    (
        post("/v1/track", TRACK.replace(b"wk_test", b"wk_nope"), "Content-Type: text/plain"),
        401,
        True,
        "write key",
    ),
    (post("/v1/track", orjson.dumps(message("track", 9))), 401, True, "no write key"),
    (
        post("/v1/i", orjson.dumps({"writeKey": "wk_test"}), "Content-Type: text/plain"),
        400,
        True,
        "no identity",
    ),
    (post("/v1/t", HUGE, "Content-Type: text/plain"), 413, False, "an oversized body"),
    (
        post("/v1/t", gzip.compress(HUGE), "Content-Type: text/plain", "Content-Encoding: gzip"),
        413,
        False,
        "an oversized body once inflated",
    ),
    (
        post("/e", orjson.dumps({"batch": [{}] * 101}), "Content-Type: text/plain"),
        400,
        True,
        "too many items",
    ),
    (post("/v1/t", TRACK, "Content-Type: text/html"), 415, False, "another content type"),
    (
        post("/v1/t", TRACK, "Content-Type: text/plain", "Content-Encoding: br"),
        400,
        False,
        "an encoding not ours",
    ),
    (chunked("/v1/t", TRACK), 200, False, "a chunked body"),
    (chunked("/e", b'[{"type": "track", "name": "x"}]'), 200, False, "a chunked beacon"),
    (
        post("/v1/batch", orjson.dumps({"writeKey": "wk_test", "batch": ["x"]}), "Content-Type: text/plain"),
        400,
        True,
        "a batch of which nothing is usable",
    ),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "lean_answers", "why"), REFUSALS, ids=[r[3] for r in REFUSALS]
)
async def test_unusual_and_refused_requests_get_the_same_answer_on_both_paths(
    make_memory_client: MakeClient,
    memory_sink: MemorySink,
    request_bytes: bytes,
    status: int,
    lean_answers: bool,
    why: str,
) -> None:
    """Refusals the shared functions decide are answered on the lean path; the rest is handed to aiohttp."""
    lean, plain = await make_memory_client(), await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH="false")
    [lean_answer], [plain_answer] = await exchange(lean, request_bytes), await exchange(plain, request_bytes)
    assert lean_answer[0] == plain_answer[0] == status, why
    assert lean_answer[2] == plain_answer[2], why
    assert lean_answer[1].get("content-type") == plain_answer[1].get("content-type"), why
    assert ("server" not in lean_answer[1]) is lean_answers, why
    assert answered_lean(lean) == (1 if lean_answers else 0), why
    assert len(memory_sink.events) == (2 if status == 200 else 0), why


async def test_a_body_that_arrives_in_one_byte_writes_is_answered_on_the_lean_path(
    memory_client: TestClient, memory_sink: MemorySink
) -> None:
    reader, writer = await connect(memory_client)
    request = post("/v1/t", TRACK, "Content-Type: text/plain") + post(
        "/v1/p", orjson.dumps(message("page", 1))
    )
    for i in range(len(request)):
        writer.write(request[i : i + 1])
        await writer.drain()
    answers = [await read_response(reader) for _ in range(2)]
    writer.close()
    assert [a[0] for a in answers] == [200, 401]
    assert all("server" not in headers for _, headers, _ in answers)
    assert orjson.loads(answers[0][2]) == {"success": True}
    assert [e.properties.get("event") for e in memory_sink.events] == ["Order Completed"]


@pytest.mark.integration
async def test_pipelined_requests_are_answered_in_order_while_segment_answers_wait_for_kafka(
    make_client: MakeClient, site: kafka.Topics, kafka_bootstrap: str
) -> None:
    """Segment calls are answered once Kafka acknowledged them; what follows them on the connection (a pixel, a
    beacon, then a request handed to aiohttp) is answered after them, in order."""
    lean = await make_client()
    cookie = f"Cookie: ll_vid={VID}"
    track = orjson.dumps(message("track", 5) | {"writeKey": "wk_test"})
    batch = orjson.dumps({"writeKey": "wk_test", "batch": [message("page", 5), message("screen", 5)]})
    beacon = orjson.dumps(
        [{"type": "track", "id": "0192f0c4-5b7a-7cc0-8d5e-000000000101", "name": "clicked"}]
    )
    request = b"".join(
        [
            post("/v1/track", track, "Content-Type: application/json", cookie),
            f"GET /p.gif?e=pixel HTTP/1.1\r\nHost: c\r\n{cookie}\r\n\r\n".encode(),
            post("/v1/batch", batch, "Content-Type: text/plain", cookie),
            post("/e", beacon, "Content-Type: text/plain", cookie),
            chunked(
                "/e",
                orjson.dumps(
                    [{"type": "track", "id": "0192f0c4-5b7a-7cc0-8d5e-000000000102", "name": "chunked"}]
                ),
            ),
            post(
                "/v1/t",
                orjson.dumps(message("track", 6) | {"writeKey": "wk_test"}),
                "Content-Type: text/plain",
            ),
        ]
    )
    answers = await exchange(lean, request, 6)
    assert [a[0] for a in answers] == [200] * 6
    assert ["server" in headers for _, headers, _ in answers] == [False] * 4 + [True] * 2
    assert orjson.loads(answers[0][2]) == {"success": True}
    assert answers[1][1]["content-type"] == "image/gif"
    assert orjson.loads(answers[2][2]) == {"success": True, "accepted": 2, "rejected": 0}
    assert orjson.loads(answers[3][2]) == {"accepted": 1, "rejected": 0}
    assert orjson.loads(answers[4][2]) == {"accepted": 1, "rejected": 0}
    events = [orjson.loads(v) for _, v, _ in await read_events(kafka_bootstrap, site.raw, 7)]
    segment_order = [(e["type"], e["occurred_at"]) for e in events if e["anon_id"] == "anon-1"]
    assert [t for t, _ in segment_order] == ["track", "page_view", "screen", "track"]  # one key: in order
    assert [e["properties"].get("event") for e in events if e["anon_id"] == VID] == ["pixel", "clicked"]
    assert sorted(e["type"] for e in events) == sorted(["page_view", "screen"] + ["track"] * 5)
    assert fast(lean).connections == set()


async def test_connection_close_on_a_segment_call_is_honoured(memory_client: TestClient) -> None:
    request = post("/v1/t", TRACK, "Content-Type: text/plain", "Connection: close")
    reader, writer = await connect(memory_client)
    writer.write(request)
    status, headers, _ = await read_response(reader)
    assert (status, headers.get("connection")) == (200, "close")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_expect_100_continue_is_left_to_aiohttp(memory_client: TestClient) -> None:
    head = post("/v1/t", b"", "Content-Type: text/plain", "Expect: 100-continue").replace(
        b"Content-Length: 0", b"Content-Length: %d" % len(TRACK)
    )
    reader, writer = await connect(memory_client)
    writer.write(head)
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100")
    writer.write(TRACK)
    status, headers, _ = await read_response(reader)
    writer.close()
    assert (status, "server" in headers) == (200, True)


@pytest.mark.integration
async def test_the_real_segment_client_goes_through_the_lean_path(
    make_client: MakeClient, site: kafka.Topics, kafka_bootstrap: str
) -> None:
    """segment-analytics-python posts /v1/batch with Basic auth, plain and gzip: both answered lean."""
    lean = await make_client()
    host = str(lean.make_url("")).rstrip("/")
    ids = await asyncio.to_thread(send_with_segment_sdk, host, "wk_test", False)
    ids += await asyncio.to_thread(send_with_segment_sdk, host, "wk_test", True)
    assert fast(lean).metrics.fast_answers.tally["batch"] >= 2
    assert answered_lean(lean) == fast(lean).metrics.fast_answers.tally["batch"]
    events = [orjson.loads(v) for _, v, _ in await read_events(kafka_bootstrap, site.raw, 8)]
    assert len({e["event_id"] for e in events}) == 8
    assert all(e["source"] == "segment" for e in events)


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", 12),
        (b"POST / HTTP/1.1\r\ncontent-LENGTH:  7 \r\n\r\n", 7),
        (b"POST / HTTP/1.1\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n", None),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", None),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", None),
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"POST / HTTP/1.1\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n", None),
    ],
)
def test_the_content_length_the_lean_path_waits_for(head: bytes, length: int | None) -> None:
    assert _content_length(head) == length


def test_gzip_bodies_are_inflated_within_the_cap_and_nothing_else_is_taken() -> None:
    doc = {"a": "b" * 100}
    packed = gzip.compress(orjson.dumps(doc))
    assert body_json({"content-encoding": "gzip"}, packed, 1000) == (True, doc, orjson.dumps(doc))
    assert body_json({"content-encoding": "gzip"}, packed, 50) == (False, None, b"")  # inflates past the cap
    assert body_json({"content-encoding": "gzip"}, packed[:-4], 1000) == (False, None, b"")  # truncated
    assert body_json({"content-encoding": "gzip"}, packed + packed, 1000) == (False, None, b"")  # two members
    assert body_json({"content-encoding": "deflate"}, packed, 1000) == (False, None, b"")
    assert body_json({"content-type": "Text/Plain; charset=utf-8"}, b"[1]", 10) == (True, [1], b"[1]")
    assert body_json({"content-type": "text/html"}, b"[1]", 10) == (False, None, b"")
    assert body_json({}, b"{", 10) == (False, None, b"")


@pytest.mark.parametrize(("path", "lean_answers"), [("/v1/t", True), ("/ll/e", True), ("/f/demo", False)])
async def test_a_cors_preflight_gets_the_same_answer_on_both_paths(
    make_memory_client: MakeClient, path: str, lean_answers: bool
) -> None:
    """analytics.js sends its write key as Basic auth, so the browser asks first (OPTIONS) on that connection."""
    request = (
        f"OPTIONS {path} HTTP/1.1\r\nHost: c\r\nOrigin: https://shop.example\r\n"
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\r\n"
    ).encode()
    lean, plain = await make_memory_client(), await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH="false")
    [lean_answer], [plain_answer] = await exchange(lean, request), await exchange(plain, request)
    assert lean_answer[0] == plain_answer[0] == 204
    assert ("server" not in lean_answer[1]) is lean_answers
    volatile = {"server", "date"}
    assert {k: v for k, v in lean_answer[1].items() if k not in volatile} == {
        k: v for k, v in plain_answer[1].items() if k not in volatile
    }
    assert lean_answer[1]["access-control-allow-headers"] == "Content-Type, Authorization, Idempotency-Key"
    assert answered_lean(lean) == (1 if lean_answers else 0)


@pytest.mark.integration
@pytest.mark.e2e
async def test_segment_calls_owed_when_sigterm_comes_are_answered_and_published_once(
    kafka_bootstrap: str, pg_dsn: str, site: kafka.Topics, run_id: str, tmp_path: Path
) -> None:
    """Calls waiting on the lean path for Kafka when the collector is told to stop still get their answer, and
    every call answered 200 is in the raw topic exactly once."""
    port = procs.free_port()
    env = services.service_env(
        kafka_bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"test-{run_id}.",
        LEADLINE_COLLECTOR_PORT=str(port),
        LEADLINE_SPOOL_DIR=str(tmp_path / "spool"),
        LEADLINE_COLLECTOR_LINGER_MS="400",  # a pixel's linger, long enough that the calls are owed at SIGTERM
    )
    spec = next(s for s in services.SERVICES if s.name == "collector")
    await asyncio.to_thread(services.start_service, tmp_path, spec, env)
    pid = services.running_pid(tmp_path, "collector")
    assert pid is not None

    async def call(i: int) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = orjson.dumps(message("track", 100 + i) | {"writeKey": "wk_test"})
        writer.write(post("/v1/t", body, "Content-Type: text/plain"))
        status, headers, answer = await read_response(reader)
        writer.close()
        assert "server" not in headers  # the lean path answered
        return status, answer

    await asyncio.sleep(1)  # the config topic (the write key) is read at start
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /p.gif HTTP/1.1\r\nHost: collector.test\r\n\r\n")  # the publisher lingers for company
    assert (await read_response(reader))[0] == 200
    writer.close()
    calls = asyncio.gather(*(call(i) for i in range(20)))
    await asyncio.sleep(0.15)
    assert not calls.done()  # still owed: their events wait in the publisher's linger
    os.kill(pid, signal.SIGTERM)
    answers = await asyncio.wait_for(calls, 20)
    assert await asyncio.to_thread(procs._CHILDREN[pid].wait, 20) == 0
    assert answers == [(200, b'{"success": true}')] * 20
    messages = await read_topic(kafka_bootstrap, site.raw, 21, timeout=20)
    assert await topic_is_quiet(kafka_bootstrap, site.raw, 21, wait=0.5) == 21
    calls_sent = [orjson.loads(v) for _, v, _ in messages if orjson.loads(v)["type"] == "track"]
    assert [m["properties"]["event"] for m in calls_sent] == ["Order Completed"] * 20
    assert len({m["event_id"] for m in calls_sent}) == 20


@pytest.mark.parametrize(
    "doc",
    [
        {"success": True, "accepted": 20, "rejected": 0},
        {"success": True, "accepted": 0, "rejected": 500},
        {"accepted": 100, "rejected": 3},
        {"accepted": 0, "rejected": 0},
        {"success": True, "accepted": 2, "rejected": 1, "errors": [{"index": 1, "detail": "x"}]},
        {"success": False, "accepted": 1, "rejected": 0},
        {"success": True, "accepted": True, "rejected": 0},
        {"accepted": 1, "rejected": False},
        {"rejected": 1, "accepted": 2},
    ],
)
def test_a_count_answer_has_the_bytes_json_response_gives_it(doc: dict[str, Any]) -> None:
    """The lean path fills the answers of batches and beacons in by hand; they stay what aiohttp's route sends
    (flags that are not ints, other keys and another order go through json.dumps)."""
    assert json_answer(doc)[2] == json.dumps(doc).encode()
