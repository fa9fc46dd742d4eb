"""Purchases from websites: Segment's e-commerce ``Order Completed`` track call
(https://segment.com/docs/connections/spec/ecommerce/v2/#order-completed) becomes purchases on the event's person,
one per product line whose ``sku`` names a product of the catalogue, at the line's ``price`` (else the list price)
and ``quantity`` (else 1), dated the day it happened (UTC). Idempotent by ``order_id``: the unique order line
(migration 0021) keeps a purchase the site sends twice from counting twice. A line without a known SKU is left out
(and logged); an order without ``order_id`` is not stored, since nothing could tell its retries apart. Bots' calls
count for nothing.

Ingestion calls :func:`record` in the batch's transaction after the batch's stage moves; each person with a new
purchase then has their stage reconsidered (a purchase makes a customer, architecture.md §5).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from leadline_crm.automation import ingested
from leadline_crm.marketing.rollups import Touch
from leadline_crm.stages import event_time, load_scoring, reconsider

log = logging.getLogger(__name__)
ORDER_COMPLETED = "Order Completed"

INSERT_LINES = """
WITH lines AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::numeric[], $6::date[])
        AS l(person_id, order_id, sku, quantity, price, day)
), stored AS (
    INSERT INTO purchases (person_id, product_id, quantity, purchased_on, price_paid, order_id)
    SELECT l.person_id, p.id, l.quantity, l.day, coalesce(l.price, p.list_price), l.order_id
      FROM lines AS l JOIN products AS p ON p.sku = l.sku
    ON CONFLICT (order_id, product_id) WHERE order_id IS NOT NULL DO NOTHING
    RETURNING person_id
), counted AS (
    UPDATE persons AS x SET purchases = x.purchases + s.n
      FROM (SELECT person_id, count(*) AS n FROM stored GROUP BY 1) AS s
     WHERE x.person_id = s.person_id
    RETURNING x.person_id
)
SELECT person_id FROM counted
"""


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price.quantize(Decimal("0.01")) if price.is_finite() and 0 <= price < Decimal("1e12") else None


def _quantity(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1_000_000 else 1


Line = tuple[str, int, Decimal | None, Any, str]  # person, quantity, unit price, day, the event's id


def lines(touches: Iterable[Touch]) -> dict[tuple[str, str], Line]:
    """The batch's order lines by (order id, SKU); a SKU twice in one call adds up, an order sent twice in one
    batch counts once (the first call wins)."""
    out: dict[tuple[str, str], Line] = {}
    for t in touches:
        if t.automated or t.type != "track":
            continue
        props = t.doc.get("properties")
        if not isinstance(props, dict) or props.get("event") != ORDER_COMPLETED:
            continue
        order = props.get("order_id")
        order_id = str(order)[:200] if isinstance(order, str | int) and not isinstance(order, bool) else ""
        products = props.get("products")
        if not order_id or not isinstance(products, list):
            log.warning(
                "an Order Completed call without order_id or products was not stored (%s)", t.event_id
            )
            continue
        day = t.occurred.astimezone(UTC).date()
        mine: dict[str, Line] = {}
        for item in products:
            if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
                continue
            sku = item["sku"][:200]
            seen = mine.get(sku)
            quantity = _quantity(item.get("quantity")) + (seen[1] if seen else 0)
            price = seen[2] if seen else _price(item.get("price"))
            mine[sku] = (t.person_id, quantity, price, day, t.event_id)
        for sku, line in mine.items():
            out.setdefault((order_id, sku), line)
    return out


async def record(conn: asyncpg.Connection, touches: Iterable[Touch], now: datetime) -> int:
    """Store the batch's new order lines; returns how many persons got a purchase."""
    touches = list(touches)
    found = lines(touches)
    if not found:
        return 0
    rows = [(line[0], order, sku, *line[1:4]) for (order, sku), line in found.items()]
    causes = {uuid.UUID(line[0]): line[4] for line in found.values()}
    times = {t.event_id: event_time(t.occurred, t.received, now) for t in touches}
    persons = await conn.fetch(INSERT_LINES, *map(list, zip(*rows, strict=True)))
    await ingested.purchases(conn, [(r["person_id"], causes.get(r["person_id"], "order")) for r in persons])
    if persons:
        scoring, _ = await load_scoring(conn)
        for row in persons:
            person = row["person_id"]
            cause = causes.get(person, "order")
            await reconsider(  # a customer since the order's own time
                conn, person, cause, scoring, times.get(cause, now), "purchase on the website"
            )
    return len(persons)
