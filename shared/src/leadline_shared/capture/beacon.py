"""A snippet item (what ``POST /e`` carries: page views, track calls, identify calls, form submissions) as
Leadline's raw event.

The collector builds beacons' events with this, and the enricher the events of a beacon the collector stored
whole (docs/proposals/batch-records.md): one builder, so an item becomes the same event whichever service builds
it. :func:`item_kind` says which items make one, so the collector can answer a beacon without building them.
"""

from __future__ import annotations

from typing import Any

import orjson

from leadline_shared.capture.clientids import event_id
from leadline_shared.capture.context import Request, RequestView, page_context
from leadline_shared.capture.traits import identifiers
from leadline_shared.events import EncodedEvent, encode_raw, storable_fragment, utc_now_iso
from leadline_shared.ids import new_id

TYPES = {
    "page_view": "page_view",
    "page": "page_view",
    "track": "track",
    "identify": "identify",
    "form_submit": "form_submit",
}


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _field_value(value: Any) -> Any:
    """A form field as the snippet sent it (text, number, checkbox flag or list of choices), bounded."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [str(v)[:500] for v in value[:50]]
    return str(value)[:2000]


def item_kind(item: dict[str, Any]) -> str | None:
    """The event type an item makes, or None when :func:`item_event` makes none of it (an unknown type, a track
    call without a name): the collector answers a beacon with this before the enricher builds the events."""
    given = item.get("type", "")
    kind = TYPES.get(given if type(given) is str else str(given))
    if kind == "track" and _text(item.get("name"), 128) is None:
        return None
    return kind


def item_event(
    request: Request | RequestView,
    item: dict[str, Any],
    anon_id: str | None,
    sent_at: str | None,
    default_region: str,
    opted_out: bool,
    received_at: str | None = None,
    contexts: dict[Any, Any] | None = None,
) -> EncodedEvent | None:
    """One snippet item as a raw event, or None when it is unusable (``request``: the request, or its
    :class:`RequestView`, read once for every item of a beacon; ``received_at``: the beacon's arrival, one
    time for all its items, else now; ``contexts``: the contexts the beacon's earlier items made, by what
    made them, so items from one page share one encoding)."""
    view = request if isinstance(request, RequestView) else RequestView.of(request)
    kind = item_kind(item)
    if kind is None:
        return None
    given = item.get("props")
    properties: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    if kind == "track":
        properties["event"] = _text(item.get("name"), 128)
    context = item_context(view, item, contexts)
    traits = item.get("traits")
    ids = identifiers(traits, default_region) if traits and isinstance(traits, dict) and not opted_out else {}
    if kind == "identify" and not opted_out:
        traits = _obj(traits)
        properties["traits"] = {k: v for k, v in traits.items() if isinstance(v, str | int | float | bool)}
    form = None
    if kind == "form_submit" and isinstance(item.get("form"), dict):
        fields = _obj(item["form"].get("fields"))
        form = {
            "key": str(item["form"].get("id") or "auto")[:200],
            "fields": {} if opted_out else {str(k)[:100]: _field_value(v) for k, v in fields.items()},
        }
        if not opted_out:
            ids |= identifiers(fields, default_region)
    client_id = item.get("id")
    return encode_raw(
        new_id() if client_id is None else event_id(_text(client_id, 64)),
        kind,
        "beacon",
        received_at or utc_now_iso(),
        sent_at,
        _text(item.get("ts"), 40),
        anon_id,
        ids,
        context,
        properties,
        form,
    )


def item_context(
    view: RequestView, item: dict[str, Any], contexts: dict[Any, Any] | None
) -> dict[str, Any] | orjson.Fragment:
    """An item's ``context``: the request's view, the page it reports and the consent it states.

    With ``contexts`` (a beacon's), an item reporting the same page and consent as an earlier one gets that one's
    context again, encoded once (the snippet sends a page's events together).
    """
    url, ref, title = (
        _text(item.get("url"), 2048),
        _text(item.get("ref"), 2048),
        _text(item.get("title"), 512),
    )
    consent = item.get("consent")
    if contexts is None:
        return _page_and_consent(view, url, ref, title, consent)
    try:
        seen = (url, ref, title, orjson.dumps(consent) if consent is not None else None)
    except TypeError:  # not what a JSON body parses to: no remembering
        return _page_and_consent(view, url, ref, title, consent)
    encoded = contexts.get(seen)
    if encoded is None:
        encoded = contexts[seen] = storable_fragment(_page_and_consent(view, url, ref, title, consent))
    return encoded


def _page_and_consent(
    view: RequestView, url: str | None, ref: str | None, title: str | None, consent: Any
) -> dict[str, Any]:
    context = page_context(view, url, ref, title)
    if isinstance(consent, dict):
        context["consent"] = context.get("consent", {}) | {
            k: bool(v) for k, v in consent.items() if k in ("analytics", "marketing", "dnt", "gpc")
        }
    return context
