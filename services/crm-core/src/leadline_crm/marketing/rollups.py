"""The marketing rollups that ingestion keeps (migrations 0020 and 0024 say what each holds and how merges fold
them).

:func:`fold` runs inside ingestion's batch transaction with the batch's new touchpoints only, so a replayed event
adds nothing twice. Its cost per batch is one pass over the events in memory and at most four statements: the
batch's ad clicks, its e-mail opens and clicks, its arrivals from somewhere (a UTM source or an outside referrer;
often none of the three: migrations 0020, 0024, 0064), and each visitor's earliest touch of the batch, upserted
only where it is earlier than the one stored. Bots', link scanners' and
image proxies' events (``automated``) are left out.

Ad impressions are not touchpoints at all: :func:`count_impressions` takes them out of the batch before anything
is written for persons, and adds them to the daily counts of migration 0027 (at most three statements a batch:
the ids not seen before, their counts, and forgetting ids older than the topics' retention).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import asyncpg
import orjson

from leadline_crm.marketing import queries


class Touch(Protocol):
    """What the fold reads of an ingested event (ingest/touch.py Touch)."""

    event_id: str
    person_id: str
    type: str
    source: str
    occurred: Any
    received: Any
    doc: dict[str, Any]
    automated: bool


T = TypeVar("T", bound=Touch)
IMPRESSION = "ad_impression"
SEEN_DAYS = 8
"""How long an impression's id is kept against a replay: the raw and enriched topics keep events 7 days."""


def impression_key(t: Touch) -> tuple[str, str] | None:
    """The (affiliate, ad) an impression names, or None when it names none (such an event is dropped)."""
    ad = t.doc.get("affiliate")
    if not isinstance(ad, dict):
        return None
    affiliate_id, ad_id = ad.get("affiliate_id"), ad.get("ad_id")
    if isinstance(affiliate_id, str) and isinstance(ad_id, str) and affiliate_id and ad_id:
        return affiliate_id[:200], ad_id[:200]
    return None


Shown = Counter[tuple[Any, str, str]]
"""New impressions per (day, affiliate, ad), to add to the daily counts (:func:`add_impressions`)."""


async def count_impressions(conn: asyncpg.Connection, touches: Sequence[T]) -> tuple[list[T], Shown]:
    """Take the batch's ad impressions not counted before (by event id) out of it; return the other events, which
    ingestion writes as touchpoints, and the new impressions per day, affiliate and ad."""
    rest = [t for t in touches if t.type != IMPRESSION]
    if len(rest) == len(touches):
        return rest, Counter()
    shown = {t.event_id: t for t in touches if t.type == IMPRESSION and not t.automated}
    keyed = {
        event_id: (t.received.date(), key) for event_id, t in shown.items() if (key := impression_key(t))
    }
    if not keyed:
        return rest, Counter()
    ids = sorted(keyed)
    fresh = await conn.fetch(queries.INSERT_IMPRESSIONS_SEEN, ids, [keyed[i][0] for i in ids])
    newest = max(day for day, _ in keyed.values())
    await conn.execute(queries.PRUNE_IMPRESSIONS_SEEN, newest - timedelta(days=SEEN_DAYS), 2 * len(ids))
    return rest, Counter((keyed[r[0]][0], *keyed[r[0]][1]) for r in fresh)


async def add_impressions(conn: asyncpg.Connection, counts: Shown) -> None:
    """Add new impressions to the daily counts. Ingestion calls it last in its transaction: every batch adds to
    the same few rows (today's, per ad), which stay locked from this statement to the commit, so two writer
    shards wait on each other only that long (as migration 0072 does for the other daily rollups)."""
    if counts:
        rows = sorted(counts.items())
        await conn.execute(
            queries.ADD_IMPRESSIONS,
            [k[0] for k, _ in rows],
            [k[1] for k, _ in rows],
            [k[2] for k, _ in rows],
            [n for _, n in rows],
        )


def origin(source: str, doc: dict[str, Any]) -> tuple[str, str]:
    """Where a visit came from: the UTM source, else the referrer's class, else the capture source; and the UTM
    campaign name ('' without one). Matches RAW_VISITORS."""
    campaign = doc.get("campaign")
    campaign = campaign if isinstance(campaign, dict) else {}
    utm_source, name, referrer = campaign.get("source"), campaign.get("name"), doc.get("referrer_class")
    if isinstance(utm_source, str) and utm_source:
        source = utm_source
    elif isinstance(referrer, str) and referrer:
        source = referrer
    return source, name if isinstance(name, str) else ""


NOT_ARRIVALS = ("", "internal", "direct")


def arrival(t: Touch) -> tuple[str, str, Any, str, str] | None:
    """A touch that came from somewhere (a UTM source, or a referrer class other than internal and direct), as
    marketing_arrivals keeps it (migration 0064; the same rule as RAW_ARRIVALS); None for others."""
    campaign = t.doc.get("campaign")
    utm = campaign.get("source") if isinstance(campaign, dict) else None
    referrer = t.doc.get("referrer_class")
    if not (isinstance(utm, str) and utm) and not (
        isinstance(referrer, str) and referrer not in NOT_ARRIVALS
    ):
        return None
    return (t.event_id, t.person_id, t.occurred, *origin(t.source, t.doc))


def device(doc: dict[str, Any]) -> str:
    """The device class of an enriched event: tablet, mobile, desktop, or '' without a user agent (the same rule
    as migration 0024's marketing_device)."""
    ua = doc.get("ua")
    if not isinstance(ua, dict):
        return ""
    family = ua.get("device")
    if isinstance(family, str) and ("ipad" in family.lower() or "tablet" in family.lower()):
        return "tablet"
    return "mobile" if ua.get("is_mobile") is True else "desktop"


def email_event(t: Touch) -> tuple[str, str, Any, str, str, str] | None:
    """An e-mail open or link click with the send (and campaign) its link names, as marketing_email_events keeps
    it; None for other events."""
    if t.type not in ("email_open", "link_click"):
        return None
    link = t.doc.get("link")
    send = link.get("send_id") if isinstance(link, dict) else None
    if not isinstance(send, str):
        return None
    campaign = link.get("campaign_id") if isinstance(link, dict) else None
    return (t.event_id, t.person_id, t.occurred, t.type, campaign if isinstance(campaign, str) else "", send)


def json_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows as one JSON array of arrays, the form the fold's statements read (see queries.INSERT_CLICKS)."""
    return orjson.dumps(rows).decode()


def _person(t: Touch) -> str:
    return t.person_id  # rows in one order, so two consumers' batches lock visitors alike


async def fold(conn: asyncpg.Connection, touches: Iterable[Touch]) -> None:
    """Fold a batch's new touchpoints into marketing_clicks, marketing_email_events, marketing_arrivals and
    marketing_visitors."""
    clicks: list[tuple[str, str, Any, str, str]] = []
    arrivals: list[tuple[str, str, Any, str, str]] = []
    emails: list[tuple[str, str, Any, str, str, str]] = []
    first: dict[str, Touch] = {}
    for t in touches:
        if t.automated:
            continue
        seen = first.get(t.person_id)
        if seen is None or (t.occurred, t.event_id) < (seen.occurred, seen.event_id):
            first[t.person_id] = t
        if (mail := email_event(t)) is not None:
            emails.append(mail)
        if (came := arrival(t)) is not None:
            arrivals.append(came)
        if t.type == "ad_click":
            ad = t.doc.get("affiliate")
            if isinstance(ad, dict):
                affiliate_id, ad_id = ad.get("affiliate_id"), ad.get("ad_id")
                if isinstance(affiliate_id, str) and isinstance(ad_id, str):
                    clicks.append((t.event_id, t.person_id, t.occurred, affiliate_id, ad_id))
    if clicks:
        await conn.execute(queries.INSERT_CLICKS, json_rows(clicks))
    if emails:
        await conn.execute(queries.INSERT_EMAIL_EVENTS, json_rows(emails))
    if arrivals:
        await conn.execute(queries.INSERT_ARRIVALS, json_rows(arrivals))
    if first:
        rows = [
            (t.person_id, t.occurred, t.event_id, *origin(t.source, t.doc), device(t.doc))
            for t in sorted(first.values(), key=_person)
        ]
        await conn.execute(queries.UPSERT_VISITORS, json_rows(rows))
