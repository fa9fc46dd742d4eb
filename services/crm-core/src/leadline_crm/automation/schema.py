"""The JSON Schema of a workflow rule, for the API (422 naming the offending field) and the rule form alike.

Triggers, condition fields and ops, and action types are closed lists: a rule naming anything else is refused
when it is saved, not found broken when it runs. Each action's own fields are checked by its type (``oneOf``).
"""

from __future__ import annotations

from typing import Any

from leadline_crm import lifecycle
from leadline_crm.automation.conditions import FIELD_PATTERN, OPS
from leadline_crm.automation.events import EVENT_TYPES
from leadline_crm.http.schemas import NAME, TEXT, UUID_S

ACTIVITY_KINDS = ("site_visit", "phone_call", "meeting", "note", "email")
MAX_DELAY = 90 * 86400

SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean", "null"]}
VALUE: dict[str, Any] = {
    "anyOf": [{**SCALAR, "maxLength": 500}, {"type": "array", "items": SCALAR, "maxItems": 100}]
}

TRIGGER_PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "threshold": {"type": "number", "minimum": 0, "maximum": 1e9},
        "stage": {"type": "string", "minLength": 1, "maxLength": 100},
        "form": {"type": "string", "minLength": 1, "maxLength": 200},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "case_type": {"type": "string", "enum": ["question", "complaint", "fault", "return"]},
        "status": {"type": "string", "maxLength": 50},
    },
}

CONDITION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["op"],
    "properties": {
        "field": {"type": "string", "pattern": FIELD_PATTERN},
        "op": {"type": "string", "enum": list(OPS)},
        "value": VALUE,
    },
}


def _action(kind: str, required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", *required],
        "properties": {"type": {"const": kind}, **props},
    }


ACTION: dict[str, Any] = {
    "oneOf": [
        _action("assign_owner", [], {"user_id": UUID_S, "team_id": UUID_S, "round_robin": {"type": "boolean"}}),
        _action("create_task", ["title"], {"title": NAME,
                                            "due_in_hours": {"type": "number", "minimum": 0, "maximum": 8760}}),
        _action("move_stage", ["stage"], {"stage": {"type": "string", "enum": list(lifecycle.STAGES)},
                                          "reason": TEXT}),
        _action("set_attribute", ["key", "value"], {"key": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"},
                                                    "value": SCALAR}),
        _action("add_tag", ["tag"], {"tag": {"type": "string", "minLength": 1, "maxLength": 100}}),
        _action("add_to_list", ["list_id"], {"list_id": {"type": "integer", "minimum": 1}}),
        _action("send_webhook", ["subscription_id"], {"subscription_id": {"type": "integer", "minimum": 1}}),
        _action("notify", ["user_id", "text"], {"user_id": UUID_S, "text": {**TEXT, "minLength": 1}}),
    ]
}  # fmt: skip

RULE_PROPERTIES: dict[str, Any] = {
    "name": NAME,
    "enabled": {"type": "boolean"},
    "trigger_type": {"type": "string", "enum": list(EVENT_TYPES)},
    "trigger_params": TRIGGER_PARAMS,
    "conditions": {"type": "array", "items": CONDITION, "maxItems": 50},
    "actions": {"type": "array", "items": ACTION, "minItems": 1, "maxItems": 20},
    "delay_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY},
    "unless_activity": {"anyOf": [{"type": "string", "enum": list(ACTIVITY_KINDS)}, {"type": "null"}]},
}

RULE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "trigger_type", "actions"],
    "properties": RULE_PROPERTIES,
}

PATCH_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": RULE_PROPERTIES,
}

TEST_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["person_id"],
    "properties": {"person_id": UUID_S},
}
