"""Settings records edited in the web app: a form's fields become the API's JSON body, checked by the API's own
JSON Schema, and what the schema or the database refuses becomes a sentence per field that a marketer can act on.

The body goes through the same CRUD functions as the REST API (http/crud.py), so the rules cannot drift apart;
only the words differ (``thank_you_url: "x" does not match "^(https?://…"`` becomes "Thank-you page: enter a web
address starting with http:// or https://, or a path starting with /").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

import asyncpg
import jsonschema_rs
import orjson

from leadline_crm.http.crud import Resource
from leadline_crm.http.errors import FOREIGN_KEYS, BadRequest
from leadline_crm.http.schemas import ABS_URL, SLUG, URL

#: What a pattern of the shared schemas asks for, in words.
PATTERN_HINTS = {
    SLUG["pattern"]: "use letters, digits, '.', '_' or '-', starting with a letter or digit (at most 100)",
    URL["pattern"]: "enter a web address starting with http:// or https://, or a path starting with /",
    ABS_URL["pattern"]: "enter a web address starting with http:// or https://",
    "^[a-z][a-z0-9_]{0,62}$": "use lower-case letters, digits and '_', starting with a letter",
    "^[A-Z]{3}$": "enter a three-letter currency code such as EUR",
}
FORMAT_HINTS = {"email": "enter an email address", "date": "enter a date (YYYY-MM-DD)", "uuid": "choose one"}


class Invalid(Exception):
    """The form cannot be saved: a sentence per field (``""`` for the form as a whole)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Input:
    """One input of a settings form, for the column of the same name.

    ``kind``: text, url, email, textarea, lines (a list, one item per line), json (an object), number,
    checkbox, date, select (``options``, or ``choices`` naming options the page looks up).
    """

    name: str
    label: str
    kind: str = "text"
    help: str = ""
    options: tuple[tuple[str, str], ...] = ()
    choices: str = ""
    placeholder: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name, "")).strip()


def body_of(
    res: Resource, inputs: Sequence[Input], form: Mapping[str, Any], creating: bool
) -> dict[str, Any]:
    """The API body a submitted form stands for. Creating, an empty input is left out (the column's default, or
    the schema's "required"); changing, it clears a column that may be empty. Raises :class:`Invalid` for what
    cannot even be read (a number that is not one, JSON that does not parse)."""
    columns = {c.name: c for c in res.columns}
    body: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for inp in inputs:
        column = columns[inp.name]
        if not creating and inp.name in res.immutable:
            continue
        raw = _text(form, inp.name)
        if inp.kind == "checkbox":
            body[inp.name] = inp.name in form
        elif inp.kind == "lines":
            items = [item.strip() for line in raw.splitlines() for item in line.split(",")]
            values = [item for item in items if item]
            if values or not (creating and column.required):
                body[inp.name] = values
        elif raw == "":
            if not creating and column.nullable:
                body[inp.name] = None
            elif not creating and column.schema.get("type") == "string" and inp.kind != "select":
                body[inp.name] = ""
            elif not creating and column.required:
                problems[inp.name] = "is required"
        elif inp.kind == "number":
            try:
                body[inp.name] = float(raw) if not raw.lstrip("+-").isdigit() else int(raw)
            except ValueError:
                problems[inp.name] = "enter a number"
        elif inp.kind == "json":
            try:
                body[inp.name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                problems[inp.name] = 'enter a JSON object, such as {"size": "300x250"}'
        else:
            body[inp.name] = raw
    if problems:
        raise Invalid(problems)
    return body


@cache
def _validator(schema_json: str) -> Any:
    return jsonschema_rs.validator_for(orjson.loads(schema_json), validate_formats=True)


def _sentence(error: Any) -> tuple[str, str]:
    """(field, sentence) for one schema error."""
    kind = error.kind
    path = list(error.instance_path)
    name = str(path[0]) if path else ""
    where = f"line {int(path[1]) + 1}: " if len(path) > 1 and isinstance(path[1], int) else ""
    match type(kind).__name__:
        case "Required":
            return str(kind.property), "is required"
        case "Pattern":
            return name, where + PATTERN_HINTS.get(str(kind.pattern), "has characters that are not allowed")
        case "Format":
            return name, where + FORMAT_HINTS.get(str(kind.format), f"is not a valid {kind.format}")
        case "MinLength":
            return name, where + "must not be empty"
        case "MaxLength":
            return name, where + f"is too long (at most {kind.limit} characters)"
        case "MinItems":
            return name, f"needs at least {kind.limit} (one per line)"
        case "MaxItems":
            return name, f"takes at most {kind.limit} lines"
        case "Minimum":
            return name, f"must be at least {kind.limit}"
        case "ExclusiveMinimum":
            return name, f"must be more than {kind.limit}"
        case "Maximum" | "ExclusiveMaximum":
            return name, f"must be at most {kind.limit}"
        case "Enum":
            return name, "choose one of the options"
        case "Type":
            return name, where + "has the wrong kind of value"
        case "MinProperties":
            return "", "change at least one value"
        case _:
            return name, where + str(error.message)[:200]


def check(schema: Mapping[str, Any], body: dict[str, Any]) -> None:
    """Raise :class:`Invalid` unless ``body`` matches the API's ``schema``: the first problem of each field."""
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())
    problems: dict[str, str] = {}
    for error in validator.iter_errors(body):
        name, sentence = _sentence(error)
        problems.setdefault(name, sentence)
    if problems:
        raise Invalid(problems)


@contextmanager
def refusals(res: Resource, labels: Mapping[str, str], body: Mapping[str, Any]) -> Iterator[None]:
    """What the database or the resource's checks refuse, as :class:`Invalid` naming the field."""
    try:
        yield
    except BadRequest as exc:
        name, _, text = str(exc).partition(": ")
        raise Invalid({name: text} if text and name in labels else {"": str(exc)}) from None
    except asyncpg.UniqueViolationError:
        key = res.key if res.key in labels else next((n for n in labels if n in body), "")
        raise Invalid({key: f"a {res.title} with this value already exists"}) from None
    except asyncpg.ForeignKeyViolationError as exc:
        fk = FOREIGN_KEYS.get(exc.constraint_name or "")
        if fk is None:
            raise Invalid({"": "refers to a record that does not exist"}) from None
        raise Invalid({fk.field: f"there is no {fk.target} {body.get(fk.field)!s}"}) from None
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        raise Invalid({"": f"a value is not accepted ({type(exc).__name__})"}) from None


def shown(value: Any, kind: str) -> str:
    """A stored value as its input shows it."""
    if value is None:
        return ""
    if kind == "lines" and isinstance(value, list):
        return "\n".join(map(str, value))
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() if value else ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def values_of(row: Mapping[str, Any], inputs: Sequence[Input]) -> dict[str, Any]:
    """What the inputs show for a stored record (checkboxes as booleans)."""
    return {i.name: bool(row.get(i.name)) if i.kind == "checkbox" else shown(row.get(i.name), i.kind)
            for i in inputs}  # fmt: skip


def typed(form: Mapping[str, Any], inputs: Sequence[Input]) -> dict[str, Any]:
    """What was typed, to show again beside the problems."""
    return {i.name: i.name in form if i.kind == "checkbox" else str(form.get(i.name, "")) for i in inputs}
