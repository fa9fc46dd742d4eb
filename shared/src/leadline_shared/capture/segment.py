"""A Segment message (``track``, ``identify``, ``page``, ``screen``, ``group``, ``alias``) as Leadline's raw event.

The collector builds events with this when it answers a Segment call, and the enricher when it splits a batch
the collector published whole (docs/proposals/batch-records.md): one builder, so a message becomes the same
event whichever service builds it. What is refused is decided here too (:class:`BadCall`, :func:`problem`), so
the collector's answer and the enricher's split agree on which messages of a batch count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from leadline_shared.capture.clientids import scoped_id
from leadline_shared.capture.context import RequestView, campaign_from_url
from leadline_shared.capture.traits import identifiers
from leadline_shared.events import EncodedEvent, encode_raw, storable_fragment
from leadline_shared.ids import new_id

TYPES = {
    "track": "track",
    "identify": "identify",
    "page": "page_view",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
}
_CAMPAIGN = frozenset({"source", "medium", "name", "term", "content"})


class BadCall(Exception):
    """A call (or one message of a batch) the API refuses: status, reason for people, metric label."""

    def __init__(self, status: int, detail: str, reason: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason = status, detail, reason or str(status)


@dataclass(frozen=True, slots=True)
class Call:
    """What every message of one HTTP call shares: who sent it and how (the request's headers read once)."""

    request: RequestView
    write_key: str
    site: str
    sent_at: str | None
    default_region: str
    received_at: str
    """When the call arrived: one time for all its messages (they came in one body)."""
    last_context: list[Any] | None = None
    """A batch's: the previous message's ``context``, the properties it fell back on and whether it was an
    identify call (as JSON), the context built from them (encoded) and the identifiers its traits gave
    (:func:`message_context`). None: a call of one message, nothing to compare."""


def text_of(value: Any, limit: int = 2048) -> str | None:
    """A text field (a number given for it as its digits), cut to ``limit``; None when absent or empty.

    Called a dozen times per message, so a JSON string (the common case) takes the shortest way.
    """
    if type(value) is str:
        return value[:limit] if value else None
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _text(value: Any, limit: int) -> str | None:
    """:func:`text_of` for a field that is nearly always a JSON string or absent: the shortest way for both."""
    if type(value) is str:
        return value[:limit] if value else None
    return None if value is None else text_of(value, limit)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def user_traits(context: dict[str, Any], msg: dict[str, Any], kind: str) -> dict[str, Any]:
    """The person's traits, kept whole (nested ``company``, ``address``: crm-core reads them).

    ``context.traits`` (``context``: the message's) describes the user on any call; an identify call's own
    ``traits`` say it with authority, so they win. A group call's ``traits`` describe the group (its email is not the person's): not these.
    """
    given = context.get("traits")
    traits = dict(given) if isinstance(given, dict) else {}
    if kind == "identify":
        traits.update(_dict(msg.get("traits")))
    return traits


def message_properties(msg: dict[str, Any], kind: str) -> dict[str, Any]:
    """``properties`` as Leadline keeps them: the call's own, plus what each call type adds (an identify call's
    traits are added by :func:`message_event`)."""
    given = msg.get("properties")
    properties = dict(given) if isinstance(given, dict) else {}
    if kind == "track":
        name = text_of(msg.get("event"), 200)
        if not name:
            raise BadCall(400, "a track call needs an event name", "no_event_name")
        properties["event"] = name
    elif kind in ("page_view", "screen") and text_of(msg.get("name")):
        properties.setdefault("name", text_of(msg.get("name"), 200))
    elif kind == "group":
        properties["group_id"] = text_of(msg.get("groupId"), 200)
        properties["traits"] = _dict(msg.get("traits"))
    elif kind == "alias":
        properties["previous_id"] = text_of(msg.get("previousId"), 200)
    return properties


Context = tuple["dict[str, Any] | orjson.Fragment", dict[str, str]]
"""An event's ``context`` (a dict, or the JSON of one shared by several events of a batch) and the identifiers
its traits give (a dict of the event's own)."""


def message_context(call: Call, ctx: dict[str, Any], properties: dict[str, Any], kind: str) -> Context:
    """``context``: the SDK's view of the page and device (``ctx``, the message's), else the HTTP request's; with
    the user's traits (``ctx.traits``) and the identifiers they give, except on an identify call, whose own traits
    decide (:func:`message_event`).

    The messages of a batch mostly share their context (one page, one device): when a message's context and the
    properties it falls back on are the previous message's, as JSON, the previous one's is used again, encoded
    once for both (``orjson.Fragment``: no object shared between events, and no re-encoding). JSON, not ``==``:
    ``1 == 1.0 == True`` in Python, and the three make different text fields.
    """
    prop = properties.get
    fallback = (prop("url"), prop("referrer"), prop("title"))
    identify = kind == "identify"
    last = call.last_context
    if last is None:
        return _built_context(call, ctx, fallback, identify)
    try:
        seen = orjson.dumps((ctx, fallback, identify))
    except TypeError:  # not what a JSON body parses to (a caller's own dict): no comparing, no remembering
        return _built_context(call, ctx, fallback, identify)
    if last and last[0] == seen:
        return last[1], dict(last[2])
    context, ids = _built_context(call, ctx, fallback, identify)
    encoded = storable_fragment(context)
    last[:] = (seen, encoded, ids)
    return encoded, dict(ids)


def _built_context(
    call: Call, ctx: dict[str, Any], fallback: tuple[Any, Any, Any], identify: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`message_context` for a message whose context differs from the previous one's."""
    get = ctx.get
    page = _dict(get("page"))
    url = _text(page.get("url"), 2048) or _text(fallback[0], 2048)
    context: dict[str, Any] = {
        "ip": _text(get("ip"), 64) or call.request.ip,
        "user_agent": _text(get("userAgent"), 512) or call.request.user_agent,
        "site": call.site,
    }
    if url:
        context["url"] = url
    if referrer := _text(page.get("referrer"), 2048) or _text(fallback[1], 2048):
        context["referrer"] = referrer
    if title := _text(page.get("title"), 512) or _text(fallback[2], 512):
        context["title"] = title
    if locale := _text(get("locale"), 32):
        context["locale"] = locale
    given = get("campaign")
    campaign = (
        {k: str(v)[:200] for k, v in given.items() if k in _CAMPAIGN and v} if isinstance(given, dict) else {}
    )
    url_campaign, click_ids = campaign_from_url(url)
    if campaign or url_campaign:
        context["campaign"] = url_campaign | campaign
    if click_ids:
        context["click_ids"] = click_ids
    traits = get("traits")
    if identify or not isinstance(traits, dict) or not traits:
        return context, {}
    traits = dict(traits)
    context["traits"] = traits
    return context, identifiers(traits, call.default_region)


def identity_of(msg: dict[str, Any]) -> tuple[str | None, str | None]:
    """A message's ``userId`` and ``anonymousId`` as its event carries them (None: absent or empty)."""
    user_id, anon_id = msg.get("userId"), msg.get("anonymousId")
    return (
        (user_id[:200] or None) if type(user_id) is str else _text(user_id, 200),
        (anon_id[:200] or None) if type(anon_id) is str else _text(anon_id, 200),
    )


def message_event(call: Call, msg: dict[str, Any], kind: str) -> EncodedEvent:
    """One Segment message as a raw event; raises :class:`BadCall` when it lacks an identity or a name.

    Runs for every message, so a field that is a JSON string (nearly always) is read in line rather than through
    :func:`_text`, and a message without a ``messageId`` gets a new id directly: the same values, fewer calls.
    """
    get = msg.get
    user_id, anon_id = identity_of(msg)
    if not user_id and not anon_id:
        raise BadCall(400, "every message needs a userId or an anonymousId", "no_identity")
    ctx = get("context")
    if type(ctx) is not dict:
        ctx = _dict(ctx)
    properties = message_properties(msg, kind)
    context, ids = message_context(call, ctx, properties, kind)
    if kind == "identify":
        traits = user_traits(ctx, msg, kind)
        properties["traits"] = traits
        if traits:
            ids = identifiers(traits, call.default_region)
    if user_id:
        ids["user_id"] = user_id
    message_id, sent_at, occurred_at = get("messageId"), get("sentAt"), get("timestamp")
    sent_at = (sent_at[:40] or None) if type(sent_at) is str else _text(sent_at, 40)
    occurred_at = (occurred_at[:40] or None) if type(occurred_at) is str else _text(occurred_at, 40)
    return encode_raw(
        new_id() if message_id is None else scoped_id(call.write_key, _text(message_id, 1024)),
        kind,
        "segment",
        call.received_at,
        sent_at or call.sent_at,
        occurred_at or _text(get("originalTimestamp"), 40),
        anon_id,
        ids,
        context,
        properties,
    )


def refusal(item: Any) -> BadCall | None:
    """Why :func:`batch_event` refuses a batch item, or None: it makes an event (:func:`judged`)."""
    kind = judged(item)
    return kind if isinstance(kind, BadCall) else None


def judged(item: Any) -> str | BadCall:
    """The event type a batch item makes, or why :func:`batch_event` refuses it.

    The collector answers a batch with this (which messages count, of which types) before the enricher builds
    the events (docs/proposals/batch-records.md), so it must refuse exactly what :func:`message_event` would: the
    same checks, in the same order, on the same readings of the fields (:func:`identity_of`, :func:`text_of`),
    written out for the common case of JSON strings because it runs for every message the collector takes.
    """
    if not isinstance(item, dict):
        return BadCall(400, "a batch item must be a JSON object", "not_an_object")
    get = item.get
    given = get("type")
    kind = TYPES.get(given if type(given) is str else str(given))
    if kind is None:
        return BadCall(400, f"unknown message type {str(given)[:40]!r}", "unknown_type")
    user_id, anon_id = get("userId"), get("anonymousId")
    if not (user_id if type(user_id) is str else _text(user_id, 200)) and not (
        anon_id if type(anon_id) is str else _text(anon_id, 200)
    ):
        return BadCall(400, "every message needs a userId or an anonymousId", "no_identity")
    if kind == "track":
        event = get("event")
        if not (event if type(event) is str else text_of(event, 200)):
            return BadCall(400, "a track call needs an event name", "no_event_name")
    return kind


def batch_event(call: Call, item: Any, shared_context: Any) -> EncodedEvent:
    """One item of ``/v1/batch`` as a raw event; raises :class:`BadCall` naming what is wrong with it."""
    kind = judged(item)
    if isinstance(kind, BadCall):
        raise kind
    if "context" not in item:
        item = item | {"context": shared_context}
    return message_event(call, item, kind)
