"""Building enriched events for crm-core's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id

NOW = datetime.now(UTC)


def event(person_id: str, type: str = "page_view", minutes_ago: float = 0, **kw: Any) -> EnrichedEvent:
    """An enriched event of ``type`` for ``person_id``; keyword arguments set RawEvent fields."""
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")
    source = {"form_submit": "form", "link_click": "link", "ad_click": "affiliate", "identify": "segment"}
    kw.setdefault("context", {"url": "https://shop.example/"})
    raw = RawEvent(
        event_id=new_id(),
        type=type,
        source=source.get(type, "pixel"),
        received_at=utc_now_iso(),
        occurred_at=at,
        anon_id=kw.pop("anon_id", "v-" + person_id[:8]),
        **kw,
    )
    return EnrichedEvent.from_raw(raw, person_id)


def form(person_id: str, minutes_ago: float = 0, **fields: str) -> EnrichedEvent:
    """A form submission carrying ``fields`` (and the email among the identifiers, as the enricher leaves it)."""
    ids = {"email": fields["email"].lower()} if "email" in fields else {}
    return event(person_id, "form_submit", minutes_ago, form={"key": "demo", "fields": fields}, ids=ids)
