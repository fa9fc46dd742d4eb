"""A Segment batch gives each message the event it would give alone, though messages share the work of their
context (leadline_shared.capture.segment.message_context reuses the previous message's when it is the same JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.memory_sink import sites_in_memory
from leadline_collector import segment
from leadline_collector.fastpath import _NO_QUERY, FastRequest
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_shared.capture import batches
from leadline_shared.events import SEGMENT_BATCH, EncodedEvent
from leadline_shared.siteconfig import SourceConfig

WRITE_KEY = "wk_unit"
REQUEST = FastRequest("POST", {"user-agent": "UA/1.0", "accept-language": "de"}, _NO_QUERY, "10.0.0.1", False)


def sites(tmp: Path) -> SiteConfigStore:
    return sites_in_memory(tmp / "sites.json", [SourceConfig(write_key=WRITE_KEY, name="Unit site")])


def events_of(store: SiteConfigStore, call: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a call makes, as the raw topic carries them (the arrival time left out: it is the clock's)."""
    judged = segment.judge(REQUEST, body, call, store, CollectorMetrics.create(), "DE")
    assert not isinstance(judged, web.Response), judged.text
    return [
        {k: v for k, v in orjson.loads(event.to_json()).items() if k != "received_at"}
        for event in split(judged.events)
    ]


def split(published: list[EncodedEvent]) -> list[EncodedEvent]:
    """What was published, a batch's record replaced by the events the enricher splits it into."""
    out: list[EncodedEvent] = []
    for event in published:
        raw = event.decoded()
        out.extend(batches.split(raw) if raw.type == SEGMENT_BATCH else [event])
    return out


def batch(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"writeKey": WRITE_KEY, "batch": messages}


def test_contexts_equal_in_python_but_not_in_json_each_make_their_own_event(tmp_path: Path) -> None:
    """``1 == 1.0 == True`` in Python, and each makes a different context: a number is kept as its digits, a
    flag or a fraction is not an address. A message must not get its neighbour's context for that."""
    store = sites(tmp_path)
    messages = [
        {"type": "track", "event": "e", "anonymousId": "a", "messageId": f"m{i}", "context": {"ip": ip}}
        for i, ip in enumerate([1, True, 1.0, 1])
    ]
    ips = [event["context"]["ip"] for event in events_of(store, "batch", batch(messages))]
    assert ips == ["1", "10.0.0.1", "10.0.0.1", "1"]


def test_events_of_one_batch_sharing_a_context_each_carry_it_whole(tmp_path: Path) -> None:
    """The context is encoded once for the messages that share it, and every event still carries all of it (the
    campaign, click ids and traits inside it too) and the identifiers its traits give, in its own JSON."""
    context = {
        "page": {"url": "https://shop.example/?utm_source=news&gclid=g1"},
        "traits": {"plan": "pro", "email": "Dee@Example.com"},
    }
    messages = [
        {"type": "track", "event": "e", "anonymousId": "a", "messageId": f"m{i}", "context": dict(context)}
        for i in range(3)
    ]
    messages[1]["userId"] = "u-1"
    judged = segment.judge(
        REQUEST, batch(messages), "batch", sites(tmp_path), CollectorMetrics.create(), "DE"
    )
    assert not isinstance(judged, web.Response)
    assert len(judged.events) == 1  # one record for the batch
    first, second, third = (event.decoded() for event in split(judged.events))
    assert first.context == second.context == third.context
    assert first.context["campaign"] == {"source": "news"}
    assert first.context["click_ids"] == {"gclid": "g1"}
    assert first.context["traits"] == {"plan": "pro", "email": "Dee@Example.com"}
    assert first.ids == third.ids == {"email": "dee@example.com"}
    assert second.ids == {
        "email": "dee@example.com",
        "user_id": "u-1",
    }  # one message's id is not its neighbour's


_TEXT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.0, 2.5]),
    st.sampled_from(["", "x", "https://shop.example/p?utm_source=a&utm_medium=b&gclid=g", "Dee@Example.com"]),
)
_CONTEXTS = st.one_of(
    _TEXT,
    st.fixed_dictionaries(
        {},
        optional={
            "ip": _TEXT,
            "userAgent": _TEXT,
            "locale": _TEXT,
            "page": st.one_of(
                _TEXT, st.fixed_dictionaries({}, optional=dict.fromkeys(("url", "title", "referrer"), _TEXT))
            ),
            "campaign": st.one_of(
                _TEXT, st.dictionaries(st.sampled_from(["source", "name", "x"]), _TEXT, max_size=2)
            ),
            "traits": st.one_of(
                _TEXT, st.dictionaries(st.sampled_from(["email", "plan"]), _TEXT, max_size=2)
            ),
        },
    ),
)


@st.composite
def messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Messages whose contexts repeat often (the same one, an equal copy, or one of a few others)."""
    pool = draw(st.lists(_CONTEXTS, min_size=1, max_size=3))
    out = []
    for i in range(draw(st.integers(1, 6))):
        message: dict[str, Any] = {
            "type": draw(st.sampled_from(["track", "identify", "page", "group"])),
            "event": "e",
            "anonymousId": "a",
            "messageId": f"m{i}",
            "properties": draw(
                st.fixed_dictionaries({}, optional=dict.fromkeys(("url", "title", "referrer"), _TEXT))
            ),
        }
        if draw(st.booleans()):
            message["context"] = orjson.loads(orjson.dumps(draw(st.sampled_from(pool))))
        out.append(message)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages())
def test_a_batch_gives_every_message_the_event_it_gives_alone(
    tmp_path: Path, batched: list[dict[str, Any]]
) -> None:
    """Whatever the contexts in a batch, each message's event is the one its own call would have made."""
    store = sites(tmp_path)
    alone = []
    for message in batched:
        one = {k: v for k, v in message.items() if k != "type"} | {"writeKey": WRITE_KEY}
        alone += events_of(store, message["type"], one)
    assert events_of(store, "batch", batch(batched)) == alone
