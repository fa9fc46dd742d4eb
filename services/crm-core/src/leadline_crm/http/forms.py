"""Web forms on the same rules as the API: a form's fields become the API body, validated by the same JSON Schema,
and database refusals become messages a person can act on (the page shows them with a 4xx, keeping the input).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

import asyncpg
import jsonschema_rs
import orjson

from leadline_crm.http.errors import FOREIGN_KEYS, BadRequest, Conflict


@cache
def _validator(schema_json: str) -> Any:
    return jsonschema_rs.validator_for(orjson.loads(schema_json), validate_formats=True)


def validate(schema: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` if it matches ``schema``; otherwise BadRequest naming the first offending field."""
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())
    for error in validator.iter_errors(body):
        where = "/".join(str(p) for p in error.instance_path) or "form"
        raise BadRequest(f"{where}: {error.message}"[:500])
    return body


def filled(form: Mapping[str, Any], names: Iterator[str] | tuple[str, ...] | list[str]) -> dict[str, str]:
    """The named fields that were filled in, trimmed and free of NUL characters (which PostgreSQL cannot store)."""
    out = {}
    for name in names:
        value = str(form.get(name, "")).replace("\x00", "").strip()
        if value:
            out[name] = value
    return out


@contextmanager
def readable_errors() -> Iterator[None]:
    """Database refusals as BadRequest/Conflict with the words the API uses."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise Conflict("that already exists") from None
    except asyncpg.ForeignKeyViolationError as exc:
        fk = FOREIGN_KEYS.get(exc.constraint_name or "")
        raise BadRequest(
            f"{fk.field}: no such {fk.target}" if fk else "a referenced record does not exist"
        ) from None
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        raise BadRequest(f"invalid value ({type(exc).__name__})") from None
