"""The condition compiler: each field and op reads what it says, and an unknown one is refused when compiled
(before a rule is saved), never when it runs."""

from __future__ import annotations

from typing import Any

import pytest

from leadline_crm.automation.conditions import Facts, InvalidCondition, compile_all, compile_condition

PERSON: dict[str, Any] = {
    "stage": "lead", "score": 42.5, "country": "DE", "email_domain": "acme.example", "owner": None,
    "attributes": {"plan": "pro", "tags": ["vip", "beta"]}, "company_industry": "Retail", "company_size": "50",
    "company_country": "DE", "lists": [3], "consent": True,
}  # fmt: skip


def holds(field: str | None, op: str, value: Any = None, event: dict[str, Any] | None = None) -> bool:
    cond = {"op": op, "value": value} | ({"field": field} if field else {})
    return compile_condition(cond)(Facts(PERSON, event or {}))


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("stage", "eq", "LEAD", True),
        ("stage", "ne", "lead", False),
        ("score", "gte", 42.5, True),
        ("score", "gt", 42.5, False),
        ("score", "lt", "50", True),
        ("country", "in", ["FR", "de"], True),
        ("email_domain", "contains", "acme", True),
        ("owner", "is_set", True, False),
        ("owner", "is_set", False, True),
        ("attributes.plan", "eq", "pro", True),
        ("attributes.missing", "is_set", None, False),
        ("tags", "contains", "VIP", True),
        ("tags", "contains", "gold", False),
        ("company.industry", "eq", "retail", True),
        ("company.size", "gte", 50, True),
        (None, "in_list", 3, True),
        (None, "in_list", 4, False),
        (None, "consent", None, True),
        (None, "consent", False, False),
    ],
)
def test_each_field_and_op(field: str | None, op: str, value: Any, expected: bool) -> None:
    assert holds(field, op, value) is expected


def test_event_fields_and_all_conditions_together() -> None:
    assert holds("event.form", "eq", "demo", event={"form": "demo"})
    pred = compile_all(
        [{"field": "stage", "op": "eq", "value": "lead"}, {"field": "score", "op": "gt", "value": 50}]
    )
    assert pred(Facts(PERSON, {})) is False
    assert compile_all([])(Facts(None, {})) is True


def test_a_missing_person_fails_every_person_condition() -> None:
    assert compile_condition({"field": "stage", "op": "eq", "value": "lead"})(Facts(None, {})) is False
    assert compile_condition({"op": "consent"})(Facts(None, {})) is False


@pytest.mark.parametrize(
    "cond",
    [
        {"field": "shoe_size", "op": "eq", "value": 1},
        {"field": "stage", "op": "like", "value": "x"},
        {"field": "score", "op": "gt", "value": "lots"},
        {"field": "country", "op": "in", "value": "DE"},
        {"op": "in_list", "value": "three"},
    ],
)
def test_unknown_fields_ops_and_unusable_values_are_refused(cond: dict[str, Any]) -> None:
    with pytest.raises(InvalidCondition):
        compile_condition(cond)
