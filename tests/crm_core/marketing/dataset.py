"""A small fixed month of marketing (March 2026) whose reports are computed by hand in the tests.

Person A clicks ad blog/a1 (2 Mar), then news/n1 (5 Mar), fills the form (6 Mar: a prospect at once, having
clicked), buys 2 x W1 at 90 (10 Mar). Person B clicks blog/a2 (2 Mar 11:00), blog/a1 (3 Mar), news/n1 (4 Mar),
fills the form (7 Mar). Person C fills the form without any click (8 Mar) and buys 1 x W1 at 100 (20 Mar). A bot
clicks blog/a1 (3 Mar): counted nowhere. :func:`newsletter` adds e-mails to A and B; :func:`shown` ad impressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import asyncpg

from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touches import write_batch
from leadline_shared.events import EnrichedEvent, IdentityChange, RawEvent
from leadline_shared.ids import new_id

GOOGLEBOT = {"is_bot": True, "indicators": ["crawler_list", "ua_spider"]}
PROXY = {"is_bot": False, "indicators": [], "image_proxy": True}
SCANNER = {"is_bot": True, "indicators": ["head_request"]}


def at(day: int, hour: int = 10) -> datetime:
    return datetime.combine(date(2026, 3, day), time(hour), UTC)


def hit(person: str, kind: str, when: datetime, **kw: Any) -> EnrichedEvent:
    source = {"form_submit": "form", "ad_click": "affiliate"}.get(kind, "pixel")
    enrichment = {k: kw.pop(k) for k in ("bot", "campaign", "referrer_class") if k in kw}
    raw = RawEvent(
        event_id=new_id(),
        type=kind,
        source=source,
        received_at=when.isoformat(),
        occurred_at=when.isoformat(),
        anon_id="v-" + person[:8],
        context={"url": "https://shop.example/"},
        **kw,
    )
    return EnrichedEvent.from_raw(raw, person, **enrichment)


def click(person: str, affiliate: str, ad: str, when: datetime, **kw: Any) -> EnrichedEvent:
    return hit(
        person,
        "ad_click",
        when,
        affiliate={"affiliate_id": affiliate, "ad_id": ad},
        campaign={"source": affiliate, "name": ad},
        **kw,
    )


def form(person: str, email: str, country: str, when: datetime) -> EnrichedEvent:
    return hit(
        person,
        "form_submit",
        when,
        ids={"email": email},
        form={"key": "demo", "fields": {"email": email, "country": country}},
    )


async def merge(conn: asyncpg.Connection, survivor: str, merged: str, day: int) -> None:
    """The enricher's merge of ``merged`` into ``survivor``, applied on ``day``."""
    change = IdentityChange(
        change_id=new_id(), kind="merge", person_id=survivor, at=at(day).isoformat(), merged=[merged]
    )
    await apply_changes(conn, [change], now=at(day))


async def erase(conn: asyncpg.Connection, person: str, day: int) -> None:
    """The person's erasure, applied on ``day``."""
    change = IdentityChange(change_id=new_id(), kind="erase", person_id=person, at=at(day).isoformat())
    await apply_changes(conn, [change], now=at(day))


@dataclass
class Month:
    a: str
    b: str
    c: str
    bot: str
    product: Any


async def seed_catalog(conn: asyncpg.Connection) -> Any:
    spring = await conn.fetchval(
        "INSERT INTO campaigns (name, channel) VALUES ('Spring', 'ads') RETURNING id"
    )
    await conn.execute(
        "INSERT INTO affiliates (affiliate_id, name) VALUES ('blog', 'The Blog'), ('news', 'News')"
    )
    await conn.execute(
        "INSERT INTO ads (affiliate_id, ad_id, name, landing_url, campaign_id) VALUES"
        " ('blog', 'a1', 'Banner A1', 'https://shop.example/', $1),"
        " ('blog', 'a2', 'Banner A2', 'https://shop.example/', $1),"
        " ('news', 'n1', 'News N1', 'https://shop.example/', NULL)",
        spring,
    )
    return await conn.fetchval(
        "INSERT INTO products (sku, name, list_price) VALUES ('W1', 'Widget', 100) RETURNING id"
    )


async def buy(
    conn: asyncpg.Connection, person: str, product: Any, day: int, quantity: int, price: int
) -> None:
    """A purchase as a rep enters it, with the stage move it makes (at noon of its day)."""
    await conn.execute(
        "INSERT INTO purchases (person_id, product_id, quantity, price_paid, purchased_on) VALUES ($1, $2, $3, $4, $5)",
        person,
        product,
        quantity,
        price,
        date(2026, 3, day),
    )
    await conn.execute(
        "UPDATE persons SET purchases = purchases + 1, stage = 'customer' WHERE person_id = $1", person
    )
    await conn.execute(
        "INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, cause_user, reason)"
        " SELECT $1, stage, 'customer', $2, 'test', 'purchase' FROM persons WHERE person_id = $1",
        person,
        at(day, 12),
    )


async def seed(conn: asyncpg.Connection) -> Month:
    m = Month(new_id(), new_id(), new_id(), new_id(), await seed_catalog(conn))
    batches = [
        (at(2), [click(m.a, "blog", "a1", at(2))]),
        (at(2, 11), [click(m.b, "blog", "a2", at(2, 11))]),
        (at(3), [click(m.b, "blog", "a1", at(3)), click(m.bot, "blog", "a1", at(3), bot=GOOGLEBOT)]),
        (at(4), [click(m.b, "news", "n1", at(4))]),
        (at(5), [click(m.a, "news", "n1", at(5))]),
        (at(6), [form(m.a, "a@example.com", "DE", at(6))]),
        (at(7), [form(m.b, "b@example.com", "DE", at(7))]),
        (at(8), [form(m.c, "c@example.com", "FR", at(8))]),
    ]
    for now, events in batches:
        await write_batch(conn, events, now=now)
    await buy(conn, m.a, m.product, 10, 2, 90)
    await buy(conn, m.c, m.product, 20, 1, 100)
    return m


def mail(person: str, kind: str, send: str, campaign: str, day: int, hour: int, **kw: Any) -> EnrichedEvent:
    ev = hit(person, kind, at(day, hour), link={"send_id": send, "campaign_id": campaign}, **kw)
    ev.source = "link"
    return ev


async def newsletter(conn: asyncpg.Connection, m: Month) -> tuple[str, str]:
    """A newsletter sent to A and B on 1 March: A opens and clicks (5 Mar, before becoming a lead on 6 Mar);
    B's mail system's image proxy opens it and a link scanner probes the link: neither is B."""
    campaign = await conn.fetchval(
        "INSERT INTO campaigns (name, channel) VALUES ('Newsletter', 'email') RETURNING id::text"
    )
    sends = {}
    for person in (m.a, m.b):
        sends[person] = await conn.fetchval(
            "INSERT INTO email_sends (campaign_id, person_id, subject, sent_at) VALUES ($1, $2, 'March news', $3)"
            " RETURNING id::text",
            campaign,
            person,
            at(1),
        )
    await write_batch(
        conn,
        [
            mail(m.a, "email_open", sends[m.a], campaign, 5, 11),
            mail(m.a, "link_click", sends[m.a], campaign, 5, 12),
            mail(m.b, "email_open", sends[m.b], campaign, 1, 11, bot=PROXY),
            mail(m.b, "link_click", sends[m.b], campaign, 1, 11, bot=SCANNER),
        ],
        now=at(5, 12),
    )
    return sends[m.a], sends[m.b]


async def add_second_product(conn: asyncpg.Connection, m: Any) -> None:
    """W2 bought by A and C (who bought W1 too), and W1 by B: W1 and W2 go together."""
    w2 = await conn.fetchval(
        "INSERT INTO products (sku, name, list_price) VALUES ('W2', 'Gadget', 50) RETURNING id"
    )
    for person, day in ((m.a, 11), (m.c, 21)):
        await buy(conn, person, w2, day, 1, 50)
    await buy(conn, m.b, m.product, 22, 1, 95)


def impression(affiliate: str, ad: str, when: datetime, **enrichment: Any) -> EnrichedEvent:
    """What the enricher passes on for the collector's impression pixel: no anon_id, no ids, a person of its own."""
    raw = RawEvent(
        event_id=new_id(),
        type="ad_impression",
        source="affiliate",
        received_at=when.isoformat(),
        context={"ip": "203.0.113.5", "user_agent": "Mozilla/5.0", "referrer": "https://blog.example/"},
        affiliate={"affiliate_id": affiliate, "ad_id": ad},
    )
    return EnrichedEvent.from_raw(raw, new_id(), **enrichment)


async def shown(conn: asyncpg.Connection, now: datetime) -> list[EnrichedEvent]:
    """a1 shown 10 times and a2 4 times on 2 March, x9 (no click, no ads row) 3 times; a bot and a proxy once."""
    events = [impression("blog", "a1", at(2)) for _ in range(10)]
    events += [impression("blog", "a2", at(2)) for _ in range(4)]
    events += [impression("blog", "x9", at(3)) for _ in range(3)]
    events += [impression("blog", "a1", at(2), bot=GOOGLEBOT), impression("blog", "a1", at(2), bot=PROXY)]
    assert await write_batch(conn, events, now=now) == 17
    return events
