"""Rule conditions compiled once into Python predicates, so a rule costs a few function calls per event.

A condition is ``{field, op, value}``. Fields read the person (``stage``, ``score``, ``country``,
``email_domain``, ``owner``, ``attributes.<key>``, ``tags``, ``lists``, ``consent``), their company
(``company.industry``, ``company.size``, ``company.country``) or the triggering event (``event.<key>``). A
:class:`Facts` is what the loop read for one event: the person's row (or None) and the event's data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PERSON_FIELDS = ("stage", "score", "country", "email_domain", "owner", "tags", "lists", "consent")
COMPANY_FIELDS = ("company.industry", "company.size", "company.country")
PREFIXED = ("attributes.", "event.")
OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "is_set", "in_list", "consent")
#: A field pattern for the JSON Schema: the fixed names, or a prefix and a key.
FIELD_PATTERN = (
    "^("
    + "|".join(f.replace(".", r"\.") for f in (*PERSON_FIELDS, *COMPANY_FIELDS))
    + r"|(attributes|event)\.[A-Za-z0-9_]{1,64})$"
)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a condition may look at: the person's row (a mapping of PERSON_COLUMNS) and the event's data."""

    person: Mapping[str, Any] | None
    event: Mapping[str, Any]


Predicate = Callable[[Facts], bool]
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
Getter = Callable[[Facts], Any]


class InvalidCondition(ValueError):
    """A condition names an unknown field or op, or a value its op cannot use; the message says which."""


def _person(key: str) -> Getter:
    def get(f: Facts) -> Any:
        return f.person.get(key) if f.person is not None else None

    return get


def _attribute(key: str) -> Getter:
    def get(f: Facts) -> Any:
        attrs = f.person.get("attributes") if f.person is not None else None
        return attrs.get(key) if isinstance(attrs, Mapping) else None

    return get


def _event(key: str) -> Getter:
    return lambda f: f.event.get(key)


def getter(field: str) -> Getter:
    """How to read ``field`` from :class:`Facts`."""
    if field.startswith("attributes."):
        return _attribute(field.removeprefix("attributes."))
    if field.startswith("event."):
        return _event(field.removeprefix("event."))
    if field == "tags":
        return lambda f: _attribute("tags")(f) or []
    if field in PERSON_FIELDS:
        return _person(field)
    if field in COMPANY_FIELDS:
        return _person(field.replace(".", "_"))
    raise InvalidCondition(f"unknown field {field!r}")


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(get: Getter, cmp: Callable[[float, float], bool], value: Any) -> Predicate:
    target = _num(value)
    if target is None:
        raise InvalidCondition(f"a number is needed for this comparison, not {value!r}")

    def pred(f: Facts) -> bool:
        got = _num(get(f))
        return got is not None and cmp(got, target)

    return pred


def _norm(value: Any) -> Any:
    """Strings compare without case; everything else as it is."""
    return value.casefold() if isinstance(value, str) else value


def _eq(get: Getter, value: Any) -> Predicate:
    want = _norm(value)
    number = _num(value) if not isinstance(value, str) else None

    def pred(f: Facts) -> bool:
        got = get(f)
        if number is not None:
            return _num(got) == number
        return bool(_norm(got) == want)

    return pred


def _contains(get: Getter, value: Any) -> Predicate:
    want = _norm(value)

    def pred(f: Facts) -> bool:
        got = get(f)
        if isinstance(got, str):
            return isinstance(want, str) and want in got.casefold()
        if isinstance(got, list | tuple | set | frozenset):
            return want in {_norm(x) for x in got}
        return False

    return pred


def _in(get: Getter, value: Any) -> Predicate:
    if not isinstance(value, list):
        raise InvalidCondition("'in' needs a list of values")
    options = {_norm(v) for v in value}
    return lambda f: _norm(get(f)) in options


def _in_list(value: Any) -> Predicate:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCondition("'in_list' needs a list id")
    return lambda f: f.person is not None and value in (f.person.get("lists") or ())


def _consent(value: Any) -> Predicate:
    want = value is not False  # {"op": "consent"} alone means "consent given"
    return lambda f: (f.person is not None and f.person.get("consent") is True) == want


def compile_condition(cond: Mapping[str, Any]) -> Predicate:
    """One condition as a predicate; :class:`InvalidCondition` for an unknown field or op or an unusable value."""
    op, value = cond.get("op"), cond.get("value")
    if op == "in_list":
        return _in_list(value)
    if op == "consent":
        return _consent(value)
    get = getter(str(cond.get("field", "")))
    if op == "eq":
        return _eq(get, value)
    if op == "ne":
        eq = _eq(get, value)
        return lambda f: not eq(f)
    if op in ("gt", "gte", "lt", "lte"):
        return _compare(get, _COMPARISONS[op], value)
    if op == "contains":
        return _contains(get, value)
    if op == "in":
        return _in(get, value)
    if op == "is_set":
        want = value is not False
        return lambda f: (get(f) not in (None, "", [], {})) == want
    raise InvalidCondition(f"unknown op {op!r}")


def compile_all(conds: Sequence[Mapping[str, Any]]) -> Predicate:
    """All conditions at once (an empty list always holds)."""
    preds = tuple(compile_condition(c) for c in conds)
    if not preds:
        return lambda f: True
    if len(preds) == 1:
        return preds[0]
    return lambda f: all(p(f) for p in preds)


def describe(cond: Mapping[str, Any]) -> str:
    """A condition in words, for run logs and pages."""
    op = cond.get("op")
    if op in ("in_list", "consent"):
        return f"{op} {cond.get('value', '')}".strip()
    return f"{cond.get('field')} {op} {cond.get('value', '')}".strip()
