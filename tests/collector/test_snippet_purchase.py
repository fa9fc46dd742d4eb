"""``leadline('purchase', …)`` in the snippet (issue 13), in real headless Chromium against the collector: it goes
out on ``/e`` as Segment's ``Order Completed`` track call, which crm-core records as purchases
(tests/crm_core/marketing/test_snippet_purchase.py takes it from there); a call without an order id or products
sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from collector.browser import browser_page
from collector.memory_sink import MemorySink

pytestmark = pytest.mark.integration

MakeClient = Callable[..., Awaitable[TestClient]]
ORDER = {
    "order_id": "o-1001",
    "products": [{"sku": "W1", "quantity": 2, "price": 90}, {"sku": "W2", "quantity": 1, "price": 19.5}],
    "revenue": 199.5,
    "currency": "EUR",
}


async def orders(sink: MemorySink, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        found = [e for e in sink.events if e.properties.get("event") == "Order Completed"]
        if len(found) >= count:
            return [e.to_dict() for e in found]
        await asyncio.sleep(0.05)
    pytest.fail(f"{count} Order Completed events not captured")


async def test_a_purchase_call_reaches_the_collector_as_an_order_completed_track_event(
    make_memory_client: MakeClient, memory_sink: MemorySink
) -> None:
    client = await make_memory_client()
    base = str(client.make_url("")).rstrip("/")
    async with browser_page() as page:
        await page.goto(f"{base}/demo")
        await page.wait_for_function("window.leadline && window.leadline.loaded")
        await page.evaluate("(o) => leadline('purchase', o)", ORDER)
        await page.evaluate("leadline('purchase', {products: [{sku: 'W1'}]})")  # no order id: nothing sent
        await page.evaluate("leadline('purchase', {order_id: 7, products: [{sku: 'W2', quantity: 1}]})")
        [first, second] = await orders(memory_sink, 2)
    assert (first["type"], first["source"]) == ("track", "beacon")
    assert first["properties"] == {**ORDER, "event": "Order Completed"}
    assert first["anon_id"]  # the visitor's cookie: the purchase lands on their person
    assert second["properties"] == {
        "order_id": "7",
        "products": [{"sku": "W2", "quantity": 1}],
        "event": "Order Completed",
    }
    await asyncio.sleep(1.5)  # one more batch window: the call without an order id never went out
    assert len([e for e in memory_sink.events if e.properties.get("event") == "Order Completed"]) == 2
