"""The demo's outbound webhook (issue 16): one subscription, as a marketing-operations admin would wire Leadline to
the company's automation tool, left disabled because nothing outside the machine is reachable from the demo (its
deliveries would only fill the log with connection failures). Enabling it on the settings page shows the rest.

Idempotent by its URL: a second run finds it and makes nothing.
"""

from __future__ import annotations

from leadline_localstack.demo.http import Api

URL = "https://hooks.example.com/leadline"
EVENT_TYPES = ["person.created", "person.stage_changed", "lead.assigned", "deal.won", "purchase.created"]


async def make(api: Api) -> dict[str, int]:
    """Make the subscription unless it is there; how many were made."""
    held = await api.get("/api/v1/webhooks")
    if held is not None and any(s["url"] == URL for s in held["items"]):
        return {"webhooks": 0}
    await api.create(
        "/api/v1/webhooks",
        {"url": URL, "description": "Marketing automation (demo; enable it when the receiver exists)",
         "event_types": EVENT_TYPES, "enabled": False},
    )  # fmt: skip
    return {"webhooks": 1}
