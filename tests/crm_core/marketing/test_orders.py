"""Purchases from websites: Segment's `Order Completed` becomes purchases matched by SKU, once per order line
however often the site sends it, and makes the person a customer; a bot's call and an unknown SKU count for
nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from crm_core.marketing.dataset import GOOGLEBOT, at, hit
from leadline_crm.ingest.touches import write_batch
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


def order(person: str, order_id: str, products: list[dict[str, Any]], **kw: Any) -> Any:
    props = {"event": "Order Completed", "order_id": order_id, "revenue": 120, "products": products}
    ev = hit(person, "track", at(12), properties=props, ids={"email": "buyer@example.com"}, **kw)
    ev.source = "segment"
    return ev


async def test_an_order_sent_twice_counts_once_and_makes_a_customer(crm_conn: asyncpg.Connection) -> None:
    await crm_conn.execute(
        "INSERT INTO products (sku, name, list_price) VALUES ('W1', 'Widget', 100), ('G1', 'Gadget', 20)"
    )
    buyer = new_id()
    lines = [
        {"sku": "W1", "price": 90, "quantity": 1},
        {"sku": "G1", "quantity": 2},  # no price: the list price
        {"sku": "W1", "price": 90, "quantity": 1},  # the same SKU again in one order adds up
        {"sku": "NOPE", "price": 5},  # not in the catalogue: left out
    ]
    await write_batch(crm_conn, [order(buyer, "o-1001", lines)], now=at(12))
    await write_batch(crm_conn, [order(buyer, "o-1001", lines), order(buyer, "o-1001", lines)], now=at(13))
    rows = await crm_conn.fetch(
        "SELECT p.sku, u.quantity, u.price_paid, u.purchased_on::text AS day FROM purchases AS u"
        " JOIN products AS p ON p.id = u.product_id WHERE u.person_id = $1 ORDER BY p.sku",
        buyer,
    )
    assert [tuple(r) for r in rows] == [("G1", 2, 20, "2026-03-12"), ("W1", 2, 90, "2026-03-12")]
    person = await crm_conn.fetchrow("SELECT stage, purchases FROM persons WHERE person_id = $1", buyer)
    assert (person["stage"], person["purchases"]) == ("customer", 2)
    cause = await crm_conn.fetchval(
        "SELECT reason FROM stage_transitions WHERE person_id = $1 AND to_stage = 'customer'", buyer
    )
    assert cause == "purchase on the website"


async def test_a_bots_order_and_one_without_an_order_id_store_nothing(crm_conn: asyncpg.Connection) -> None:
    await crm_conn.execute("INSERT INTO products (sku, name, list_price) VALUES ('W1', 'Widget', 100)")
    bot, careless = new_id(), new_id()
    await write_batch(
        crm_conn,
        [order(bot, "o-1", [{"sku": "W1"}], bot=GOOGLEBOT), order(careless, "", [{"sku": "W1"}])],
        now=at(12),
    )
    assert await crm_conn.fetchval("SELECT count(*) FROM purchases") == 0
