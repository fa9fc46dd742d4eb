"""The snippet's ``leadline('purchase', …)`` (issue 13) becomes purchases on the visitor's person through the same
order path as Segment's ``Order Completed`` (marketing/orders.py): products matched by SKU, once per order id
however often the page sends it. The item is the one the snippet puts on the wire (test_snippet_purchase.py in
tests/collector checks that in Chromium), turned into a raw event by the collector's own beacon code."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from yarl import URL

from crm_core.marketing.dataset import at
from leadline_collector.fastpath import FastRequest
from leadline_crm.ingest.touches import write_batch
from leadline_shared.capture.beacon import item_event
from leadline_shared.events import EnrichedEvent
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def snippet_item(order_id: str) -> dict[str, Any]:
    """What ``leadline('purchase', {...})`` sends in a batch on ``/e``."""
    return {
        "id": new_id(),
        "type": "track",
        "name": "Order Completed",
        "props": {
            "order_id": order_id,
            "products": [{"sku": "W1", "quantity": 2, "price": 90}, {"sku": "W2", "quantity": 1}],
            "revenue": 230,
            "currency": "EUR",
        },
        "url": "https://shop.example/checkout/done",
        "ref": "https://shop.example/checkout",
        "title": "Thank you",
        "ts": at(12).isoformat(),
        "consent": {"analytics": True, "marketing": False, "dnt": False, "gpc": False},
    }


def enriched(item: dict[str, Any], person: str, anon_id: str) -> EnrichedEvent:
    request = FastRequest("POST", {"user-agent": BROWSER}, URL("/").query, "203.0.113.7", True)
    raw = item_event(request, item, anon_id, at(12).isoformat(), "DE", False)
    assert raw is not None
    return EnrichedEvent.from_raw(raw, person)


async def test_a_snippet_purchase_sent_twice_becomes_one_purchase_per_line_and_a_customer(
    crm_conn: asyncpg.Connection,
) -> None:
    await crm_conn.execute(
        "INSERT INTO products (sku, name, list_price) VALUES ('W1', 'Widget', 100), ('W2', 'Gadget', 50)"
    )
    buyer, anon = new_id(), "v-" + new_id()
    item = snippet_item("o-77")
    await write_batch(crm_conn, [enriched(item, buyer, anon)], now=at(12))
    retry = snippet_item("o-77")  # the page sent the order again (a reload of the thank-you page)
    await write_batch(crm_conn, [enriched(item, buyer, anon), enriched(retry, buyer, anon)], now=at(13))
    rows = await crm_conn.fetch(
        "SELECT p.sku, u.quantity, u.price_paid, u.order_id FROM purchases AS u"
        " JOIN products AS p ON p.id = u.product_id WHERE u.person_id = $1 ORDER BY p.sku",
        buyer,
    )
    assert [tuple(r) for r in rows] == [("W1", 2, 90, "o-77"), ("W2", 1, 50, "o-77")]
    person = await crm_conn.fetchrow("SELECT stage, purchases FROM persons WHERE person_id = $1", buyer)
    assert (person["stage"], person["purchases"]) == ("customer", 2)
