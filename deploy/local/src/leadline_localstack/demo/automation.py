"""The demo's workflow rules (issue 16), made through the real API as a marketing-operations admin would: hot leads
routed at once, complaints put in front of the support lead, quote requests followed up unless somebody called.

Idempotent by name: a second run finds the rules and makes nothing.
"""

from __future__ import annotations

from typing import Any

from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api


def rules(support_lead: str) -> list[dict[str, Any]]:
    """The rules, switched on; ``support_lead`` is the support lead's user id."""
    return [
        {"name": "Hot lead: score 50 or more → next rep and a call task", "enabled": True,
         "trigger_type": "score.changed", "trigger_params": {"threshold": 50},
         "conditions": [{"field": "owner", "op": "is_set", "value": False}],
         "actions": [{"type": "assign_owner", "round_robin": True},
                     {"type": "create_task", "title": "Call the hot lead", "due_in_hours": 4}]},
        {"name": "Complaint case → notify the support lead", "enabled": True,
         "trigger_type": "case.created", "trigger_params": {"case_type": "complaint"},
         "actions": [{"type": "notify", "user_id": support_lead, "text": "A complaint case was opened"}]},
        {"name": "Quote request → tag, follow up in 3 days unless a call was logged", "enabled": True,
         "trigger_type": "form.submitted", "trigger_params": {"form": "quote"},
         "delay_seconds": 3 * 86400, "unless_activity": "phone_call",
         "actions": [{"type": "add_tag", "tag": "quote-requested"},
                     {"type": "create_task", "title": "Follow up on the quote request", "due_in_hours": 24}]},
    ]  # fmt: skip


async def make(api: Api) -> dict[str, int]:
    """Make the rules not there yet; how many were made."""
    users = {u["email"]: u["id"] for u in await api.all("/api/v1/users")}
    held = await api.get("/api/v1/workflow-rules")
    names = {r["name"] for r in held["items"]} if held else set()
    made = 0
    for rule in rules(str(users[w.SUPPORT.email])):
        if rule["name"] not in names:
            await api.create("/api/v1/workflow-rules", rule)
            made += 1
    return {"workflow_rules": made}
