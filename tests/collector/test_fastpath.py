"""The lean HTTP path for pixels, opens and clicks: the same events as aiohttp's routes, and a clean hand-over.

These tests talk raw HTTP/1.1 over one TCP connection where the connection matters (keep-alive, pipelining,
hand-over to aiohttp); aiohttp answers carry its ``Server`` header, the fast path's do not, which tells who
answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp.test_utils import TestClient

from collector.memory_sink import MemorySink
from leadline_collector.fastpath import FAST_PATH, FastPath
from leadline_collector.hits import GIF
from leadline_collector.metrics import CollectorMetrics
from leadline_shared import kafka
from leadline_shared.signing import KeyRing
from sites import LINK_KEYS
from support import read_topic

RING = KeyRing.parse(LINK_KEYS)
LINK = {"target": "https://shop.example/offer", "campaign_id": "c1", "send_id": "s1", "recipient_token": "r1"}
PIXEL = "/p.gif?url=https%3A%2F%2Fshop.example%2Fpricing%3Futm_source%3Dnews&title=Pricing&plan=pro"
UA = "Mozilla/5.0 (X11; Linux x86_64) Test/1.0"
LOCAL = "127.0.0.1/32"
"""The test client's address, as a trusted proxy: what it puts in X-Forwarded-For is then believed."""
MakeClient = Callable[..., Awaitable[TestClient]]


Response = tuple[int, dict[str, str], bytes]


async def read_response(reader: asyncio.StreamReader, head_only: bool = False) -> Response:
    """One HTTP/1.1 response from the stream: status, headers (last one wins), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
    return status, headers, body


def get(path: str, *extra: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    """A request head."""
    lines = [f"{method} {path} {version}", "Host: collector.test", f"User-Agent: {UA}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect(client: TestClient) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert client.port is not None
    return await asyncio.open_connection("127.0.0.1", client.port)


@pytest.fixture
async def client(memory_client: TestClient) -> TestClient:
    """A collector on the in-memory sink: what these tests check is what the fast path answers and records."""
    return memory_client


def fast(client: TestClient) -> FastPath:
    return client.app[FAST_PATH]  # type: ignore[index]


@pytest.mark.integration
async def test_a_pixel_is_answered_on_the_fast_path_with_the_event_aiohttp_would_have_recorded(
    make_client: MakeClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    lean = await make_client(LEADLINE_TRUSTED_PROXIES=LOCAL)
    plain = await make_client(LEADLINE_COLLECTOR_FAST_PATH="false", LEADLINE_TRUSTED_PROXIES=LOCAL)
    headers = {"User-Agent": UA, "Accept-Language": "de-DE,de;q=0.9", "X-Forwarded-For": "203.0.113.9"}
    answers = [await c.get(PIXEL, headers=headers) for c in (lean, plain)]
    assert [r.status for r in answers] == [200, 200]
    assert "Server" not in answers[0].headers  # the fast path answered
    assert "Server" in answers[1].headers  # aiohttp answered
    for resp in answers:
        assert resp.headers["Content-Type"] == "image/gif"
        assert resp.headers["Cache-Control"] == "no-store, max-age=0"
        assert await resp.read() == (await answers[1].read())
        assert "ll_vid" in resp.cookies
    events = [orjson.loads(v) for _, v, _ in await read_topic(kafka_bootstrap, topics.raw, 2)]
    for event in events:
        for volatile in ("event_id", "received_at", "anon_id"):
            event.pop(volatile)
    assert events[0] == events[1]
    assert events[0]["context"]["ip"] == "203.0.113.9"
    assert events[0]["context"]["campaign"] == {"source": "news"}
    assert events[0]["properties"] == {"plan": "pro"}


async def test_header_names_in_any_case_give_both_paths_the_same_click_event(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    """The fast path keeps headers under lower-case names; every header an event reads is sent in odd case."""
    vid = "0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e"
    odd_case = (
        "uSER-aGENT: Odd/2.0",
        "X-FORWARDED-FOR: 192.0.2.99",  # what the client wrote ...
        "x-forwarded-for: 198.51.100.7, 10.0.0.1",  # ... and our proxies' own line: one list, on both paths
        "accept-LANGUAGE: fr-CH, fr;q=0.9",
        "REFERER: https://mail.example/inbox",
        "Dnt: 1",
        "SEC-GPC: 1",
        "X-Forwarded-PROTO: https",
        f"COOKIE: a=1; ll_vid={vid}",
    )
    token = RING.sign(LINK | {"target": "https://shop.example/offer?utm_source=mail&gclid=g1"})
    answers = []
    proxied = {"LEADLINE_TRUSTED_PROXIES": LOCAL + ",10.0.0.0/8"}
    for client in (
        await make_memory_client(**proxied),
        await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH="false", **proxied),
    ):
        reader, writer = await connect(client)
        writer.write(
            (
                "\r\n".join((f"GET /c/{token} HTTP/1.1", "Host: collector.test", *odd_case)) + "\r\n\r\n"
            ).encode()
        )
        answers.append(await read_response(reader))
        writer.close()
    assert "server" not in answers[0][1]
    assert "server" in answers[1][1]
    assert [a[0] for a in answers] == [302, 302]
    for _, headers, _ in answers:
        assert "Secure" in headers["set-cookie"]
        assert vid in headers["set-cookie"]
    events = memory_sink.messages()
    assert len(events) == 2
    for event in events:
        for volatile in ("event_id", "received_at"):
            event.pop(volatile)
    assert events[0] == events[1]
    context = events[0]["context"]
    assert events[0]["anon_id"] == vid
    assert context["user_agent"] == "Odd/2.0"
    assert context["ip"] == "198.51.100.7"
    assert context["locale"] == "fr-CH"
    assert context["referrer"] == "https://mail.example/inbox"
    assert context["consent"] == {"dnt": True, "gpc": True}
    assert context["campaign"] == {"source": "mail"}
    assert context["click_ids"] == {"gclid": "g1"}


async def test_a_returning_visitor_keeps_their_id_and_an_opted_out_one_gets_no_cookie(
    client: TestClient, memory_sink: MemorySink
) -> None:
    vid = "0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e"
    reader, writer = await connect(client)
    writer.write(get("/p.gif", f"Cookie: theme=dark; ll_vid={vid}; other=1"))
    writer.write(get("/ll/p.gif", "DNT: 1"))
    first, second = await read_response(reader), await read_response(reader)
    writer.close()
    assert "server" not in first[1]
    assert "server" not in second[1]
    assert vid in first[1]["set-cookie"]
    assert "set-cookie" not in second[1]
    events = memory_sink.messages()
    [known] = [e for e in events if "anon_id" in e]
    [opted_out] = [e for e in events if "anon_id" not in e]
    assert known["anon_id"] == vid
    assert opted_out["context"]["consent"] == {"dnt": True, "gpc": False}


async def test_pipelined_and_split_requests_are_answered_in_order(
    client: TestClient, memory_sink: MemorySink
) -> None:
    token = RING.sign(LINK, ttl_seconds=3600)
    cookie = "Cookie: ll_vid=0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e"  # one visitor: one partition, in order
    reader, writer = await connect(client)
    writer.write(get("/p.gif?e=one", cookie) + get(f"/c/{token}", cookie) + get(f"/o/{token}.gif", cookie))
    answers = [await read_response(reader) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 302, 200]
    assert answers[1][1]["location"] == LINK["target"]
    request = get("/p.gif?e=two", cookie)
    for i in range(len(request)):  # one byte per write: the head arrives in pieces
        writer.write(request[i : i + 1])
        await writer.drain()
    assert (await read_response(reader))[0] == 200
    writer.close()
    events = memory_sink.messages()
    assert [e["type"] for e in events] == ["track", "link_click", "email_open", "track"]
    assert [e.get("properties", {}).get("event") for e in events] == ["one", None, None, "two"]


async def test_the_first_request_that_is_not_ours_hands_the_connection_to_aiohttp(
    client: TestClient, memory_sink: MemorySink
) -> None:
    reader, writer = await connect(client)
    body = orjson.dumps({"batch": [{"type": "track", "name": "clicked"}]})
    cookie = "Cookie: ll_vid=0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e"  # one visitor: one partition, in order
    writer.write(get("/p.gif?e=before", cookie))
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)  # a chunked body is aiohttp's to read
    writer.write(
        get("/e", "Content-Type: text/plain", "Transfer-Encoding: chunked", cookie, method="POST") + chunked
    )
    writer.write(get("/p.gif?e=after", cookie))
    answers = [await read_response(reader) for _ in range(3)]
    writer.close()
    assert [a[0] for a in answers] == [200, 200, 200]
    assert "server" not in answers[0][1]
    assert "server" in answers[1][1]  # aiohttp's, for the rest of the connection
    assert "server" in answers[2][1]
    assert fast(client).connections == set()
    events = memory_sink.messages()
    assert [(e["source"], e["properties"].get("event")) for e in events] == [
        ("pixel", "before"),
        ("beacon", "clicked"),
        ("pixel", "after"),
    ]


@pytest.mark.parametrize(
    ("request_bytes", "why"),
    [
        (get("/p.gif", "Content-Length: 3") + b"abc", "a body"),
        (get("/p.gif", version="HTTP/1.0"), "HTTP/1.0"),
        (get("/p.%67if"), "a percent-encoded path"),
        (get("/c/" + RING.sign(LINK, ttl_seconds=-5)), "an expired token"),
        (get("/c/not-a-token"), "a forged token"),
        (get("/p.gif", "X-Long: " + "a" * 9000), "an oversized head"),
        (get("/o/a/b.gif"), "a token with a slash"),
        (get("/p.gif", "Upgrade: websocket", "Connection: Upgrade"), "an upgrade"),
        (b"GET /p.gif HTTP/1.1\nHost: collector.test\n\n", "bare LF line ends"),
        (get("/p.gif", "user-agent: second"), "a repeated User-Agent (aiohttp answers 400)"),
    ],
)
async def test_what_the_fast_path_does_not_fully_understand_is_answered_by_aiohttp(
    client: TestClient, request_bytes: bytes, why: str
) -> None:
    reader, writer = await connect(client)
    writer.write(request_bytes)
    status, headers, _ = await read_response(reader)
    writer.close()
    assert "server" in headers, why
    assert status in (200, 400, 404, 413, 431), why


@pytest.mark.parametrize("fast_path", ["true", "false"])
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/p.gif?url=" + "a" * 9000), 414),
        (get("/ll/p.gif?url=" + "a" * 20000), 414),
        (get("/p.gif", "Cookie: ll_vid=" + "a" * 9000), 431),
    ],
)
async def test_an_oversized_url_or_header_gets_a_short_clean_answer_and_no_traceback(
    make_memory_client: MakeClient,
    memory_sink: MemorySink,
    caplog: pytest.LogCaptureFixture,
    fast_path: str,
    request_bytes: bytes,
    status: int,
) -> None:
    """A pixel URL over 8 KB (a page URL with a huge query) is refused plainly, not with the parser's dump."""
    client = await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH=fast_path)
    reader, writer = await connect(client)
    writer.write(request_bytes)
    answer, headers, body = await read_response(reader)
    closed = await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert answer == status
    assert headers["content-type"].startswith("text/plain")
    assert closed  # the rest of what the client sent cannot be read as requests: the server hangs up
    assert len(body) < 120, body
    for dump in (b"aaaa", b"bytearray", b"Got more than"):  # no echo of the request, no parser internals
        assert dump not in body
    assert not [r for r in caplog.records if r.exc_info], "a refused request is no error of ours"
    assert memory_sink.events == []
    reason = {414: "uri_too_long", 431: "header_too_large"}[status]
    metrics = await (await client.get("/metrics")).text()
    assert f'leadline_collector_rejected_total{{endpoint="http",reason="{reason}"}} 1.0' in metrics


async def test_a_forged_click_gets_aiohttps_404_page_and_is_counted(
    client: TestClient, memory_sink: MemorySink
) -> None:
    forged = KeyRing.parse("k1:" + "x" * 32).sign(LINK)
    reader, writer = await connect(client)
    writer.write(get(f"/c/{forged}"))
    status, headers, body = await read_response(reader)
    writer.close()
    assert status == 404
    assert "location" not in headers
    assert b"not valid" in body
    assert memory_sink.events == []
    metrics = await (await client.get("/metrics")).text()
    assert 'leadline_collector_rejected_total{endpoint="click",reason="invalid_token"} 1.0' in metrics


async def test_head_probes_and_connection_close_are_honoured(
    client: TestClient, memory_sink: MemorySink
) -> None:
    token = RING.sign(LINK, ttl_seconds=3600)
    reader, writer = await connect(client)
    writer.write(get(f"/c/{token}", method="HEAD"))
    status, headers, _ = await read_response(reader, head_only=True)
    assert (status, headers["location"], headers["content-length"]) == (302, LINK["target"], "0")
    writer.write(get("/p.gif", "Connection: close", method="HEAD"))
    status, headers, _ = await read_response(reader, head_only=True)
    assert (status, headers["connection"], headers["content-length"]) == (200, "close", str(len(GIF)))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # no body after HEAD, and the server closed
    writer.close()
    events = memory_sink.messages()
    [click] = [e for e in events if e["type"] == "link_click"]
    assert click["context"]["method"] == "HEAD"  # the enricher marks link scanners by it


async def test_idle_connections_are_closed_and_shutdown_closes_the_rest(
    client: TestClient, make_memory_client: MakeClient
) -> None:
    lean = fast(client)
    lean.sweep_interval = 0.1  # read by the sweep before each pause; its first pause may still be 5 s
    reader, writer = await connect(client)
    writer.write(get("/p.gif"))
    await read_response(reader)
    assert len(lean.connections) == 1
    lean.idle_timeout = 0.3  # only now, so a slow machine cannot close it before the line above
    assert await asyncio.wait_for(reader.read(), 15) == b""  # closed by the sweep once idle
    writer.close()

    other = await make_memory_client()
    reader, writer = await connect(other)
    writer.write(get("/p.gif"))
    await read_response(reader)
    await other.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_header_bytes_that_are_not_utf8_are_recorded_not_refused(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    for collector in (
        await make_memory_client(),
        await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH="false"),
    ):
        reader, writer = await connect(collector)
        writer.write(b"GET /p.gif?title=%FF HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xe9 \xff\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        writer.close()
    events = memory_sink.messages()
    assert [e["context"]["user_agent"] for e in events] == ["caf\ufffd \ufffd"] * 2


def test_routes_the_fast_path_claims() -> None:
    lean = FastPath(
        sink=None,  # type: ignore[arg-type]
        metrics=CollectorMetrics.create(),
        keys=RING,
        cookie_domain="",
        prefixes=("", "/ll"),
    )
    assert lean.route("/p.gif") == ("pixel", "")
    assert lean.route("/ll/p.gif") == ("pixel", "")
    assert lean.route("/c/abc.def") == ("click", "abc.def")
    assert lean.route("/ll/o/abc.def.gif") == ("open", "abc.def")
    for other in ("/p.gifx", "/c/", "/o/abc", "/o/.gif", "/c/a/b", "/e", "/x/p.gif", "/demo"):
        assert lean.route(other) is None, other
