"""The rule form: plain rows of inputs (a trigger, condition rows, action rows) to and from the API's rule body.

No script: the form has a few empty rows of each kind; rows left empty are ignored. What the rows say is then
checked by the API's own JSON Schema and compiler, so the form and the API refuse the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadline_crm.automation.schema import ACTIVITY_KINDS

ROWS = 3
#: The one trigger input's meaning, by trigger type.
TRIGGER_VALUE = {
    "score.changed": "threshold",
    "person.stage_changed": "stage",
    "deal.stage_changed": "stage",
    "form.submitted": "form",
    "event.custom": "name",
    "case.created": "case_type",
    "case.updated": "status",
}
FIELD_CHOICES = ("stage", "score", "country", "email_domain", "owner", "tags", "company.industry", "company.size",
                 "company.country", "attributes.", "event.")  # fmt: skip
UNLESS_CHOICES = (("", "nothing"), *((k, k.replace("_", " ")) for k in ACTIVITY_KINDS))


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _value(op: str, text: str) -> Any:
    if op in ("is_set", "consent"):
        return text.lower() not in ("no", "false", "0")
    if op == "in":
        return [v.strip() for v in text.split(",") if v.strip()]
    if op in ("gt", "gte", "lt", "lte", "in_list"):
        return _number(text)
    return text


def _g(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name, "")).replace("\x00", "").strip()


def conditions(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The filled condition rows."""
    out = []
    for n in range(_rows(form, "c_op_")):
        op = _g(form, f"c_op_{n}")
        if not op:
            continue
        cond: dict[str, Any] = {"op": op, "value": _value(op, _g(form, f"c_value_{n}"))}
        if op not in ("in_list", "consent"):
            cond["field"] = _g(form, f"c_field_{n}")
        out.append(cond)
    return out


def action(form: Mapping[str, Any], n: int) -> dict[str, Any] | None:
    """Action row ``n``, or None when empty."""
    kind, user, text, number = (_g(form, f"a_{k}_{n}") for k in ("type", "user", "text", "number"))
    stage = _g(form, f"a_stage_{n}")
    if not kind:
        return None
    doc: dict[str, Any] = {"type": kind}
    if kind == "assign_owner":
        doc |= {"user_id": user} if user else {"round_robin": True}
    elif kind == "create_task":
        doc |= {"title": text, "due_in_hours": _number(number or "24")}
    elif kind == "move_stage":
        doc |= {"stage": stage} | ({"reason": text} if text else {})
    elif kind == "set_attribute":
        key, _, value = text.partition("=")
        doc |= {"key": key.strip(), "value": value.strip()}
    elif kind == "add_tag":
        doc["tag"] = text
    elif kind in ("add_to_list", "send_webhook"):
        doc["list_id" if kind == "add_to_list" else "subscription_id"] = _number(number)
    elif kind == "notify":
        doc |= {"user_id": user, "text": text}
    return doc


def _rows(form: Mapping[str, Any], prefix: str) -> int:
    return max((int(k[len(prefix):]) + 1 for k in form if k.startswith(prefix) and k[len(prefix):].isdigit()),
               default=0)  # fmt: skip


def body(form: Mapping[str, Any]) -> dict[str, Any]:
    """The API's rule body from the posted form."""
    trigger = _g(form, "trigger_type")
    params: dict[str, Any] = {}
    raw = _g(form, "trigger_value")
    if raw and trigger in TRIGGER_VALUE:
        key = TRIGGER_VALUE[trigger]
        params[key] = _number(raw) if key == "threshold" else raw
    delay_hours = _g(form, "delay_hours")
    return {
        "name": _g(form, "name"),
        "enabled": form.get("enabled") == "on",
        "trigger_type": trigger,
        "trigger_params": params,
        "conditions": conditions(form),
        "actions": [a for n in range(_rows(form, "a_type_")) if (a := action(form, n))],
        "delay_seconds": int(float(delay_hours) * 3600) if _is_number(delay_hours) else 0,
        "unless_activity": _g(form, "unless_activity") or None,
    }


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def rows(rule: Mapping[str, Any] | None) -> dict[str, Any]:
    """A saved rule as the form's rows (with empty rows to add more)."""
    rule = rule or {}
    params = rule.get("trigger_params") or {}
    conds = [
        {"field": c.get("field", ""), "op": c["op"],
         "value": ", ".join(map(str, c["value"])) if isinstance(c.get("value"), list) else c.get("value", "")}
        for c in rule.get("conditions") or []
    ]  # fmt: skip
    acts = []
    for a in rule.get("actions") or []:
        text = a.get("title") or a.get("tag") or a.get("text") or a.get("reason") or ""
        if a["type"] == "set_attribute":
            text = f"{a['key']}={a.get('value', '')}"
        number = a.get("due_in_hours", a.get("list_id", a.get("subscription_id", "")))
        acts.append({"type": a["type"], "user": a.get("user_id", ""), "text": text, "number": number,
                     "stage": a.get("stage", "")})  # fmt: skip
    empty_c = {"field": "", "op": "", "value": ""}
    empty_a = {"type": "", "user": "", "text": "", "number": "", "stage": ""}
    trigger = rule.get("trigger_type", "")
    return {
        "name": rule.get("name", ""),
        "enabled": rule.get("enabled", False),
        "trigger_type": trigger,
        "trigger_value": params.get(TRIGGER_VALUE.get(trigger, ""), ""),
        "conditions": conds + [dict(empty_c) for _ in range(ROWS)],
        "actions": acts + [dict(empty_a) for _ in range(ROWS)],
        "delay_hours": (rule.get("delay_seconds") or 0) / 3600 or "",
        "unless_activity": rule.get("unless_activity") or "",
    }
