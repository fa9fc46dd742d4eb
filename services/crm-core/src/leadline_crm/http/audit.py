"""The audit log: who changed what and when, through the web app or the REST API (architecture.md §10).

Every write path calls :func:`record` inside its own transaction, so a change and its audit entry commit or roll
back together: the generic CRUD engine (http/crud.py) for every resource it serves, persons and lead entry
(people/persons.py), the scoring settings, and the accounts admin (users, password links, API tokens). The
entity type is the resource's API path (``persons``, ``purchases``, ``users``, ``api_tokens``…), so an entry
points at ``/api/v1/{entity_type}/{entity_id}``.

Secrets never reach it: fields named like a password or a token are dropped (:data:`SECRET_FIELDS`), and the
accounts code records that a password was set or a token made, never the value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from leadline_crm.http.auth import Caller

SECRET_FIELDS = frozenset({"password", "password_hash", "token", "token_hash", "id_hash", "secret", "csrf"})


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (amounts as text, so 10.50 stays 10.50)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


def values(row: Mapping[str, Any] | None, fields: Iterable[str]) -> dict[str, Any]:
    """The set ``fields`` of a created or deleted row, as the log keeps them."""
    if row is None:
        return {}
    return {f: _plain(row[f]) for f in fields if f not in SECRET_FIELDS and f in row and row[f] is not None}


def diff(old: Mapping[str, Any], new: Mapping[str, Any], fields: Iterable[str]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for each of ``fields`` whose value changed."""
    out: dict[str, list[Any]] = {}
    for f in fields:
        if f in SECRET_FIELDS or f not in new:
            continue
        before, after = _plain(old.get(f)), _plain(new[f])
        if before != after:
            out[f] = [before, after]
    return out


async def record(
    conn: asyncpg.Connection,
    caller: Caller,
    action: str,
    entity_type: str,
    entity_id: object,
    changes: Mapping[str, Any] | None = None,
) -> None:
    """Log one change, in the caller's transaction. ``changes``: :func:`diff` on update, :func:`values` else."""
    clean = {k: v for k, v in (changes or {}).items() if k not in SECRET_FIELDS}
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_user_id, via, action, entity_type, entity_id, changes)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)",
        caller.actor,
        caller.user_id,
        caller.via,
        action,
        entity_type,
        str(entity_id),
        orjson.dumps(clean, default=str).decode(),
    )


@dataclass(frozen=True)
class Filters:
    """What an admin narrows the log to; every field optional."""

    actor: str | None = None  # part of the actor's name, or the user's email
    entity_type: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


FIND = """
SELECT a.id, a.at, a.actor, a.actor_user_id, u.email AS actor_email, a.via, a.action, a.entity_type,
       a.entity_id, a.changes
FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
WHERE ($1::text IS NULL OR a.actor ILIKE $1 OR u.email ILIKE $1)
  AND ($2::text IS NULL OR a.entity_type = $2)
  AND ($3::text IS NULL OR a.entity_id = $3)
  AND ($4::timestamptz IS NULL OR a.at >= $4)
  AND ($5::timestamptz IS NULL OR a.at < $5)
  AND ($6::timestamptz IS NULL OR (a.at, a.id) < ($6, $7::bigint))
ORDER BY a.at DESC, a.id DESC
LIMIT $8"""


def _like(text: str | None) -> str | None:
    if not text:
        return None
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def find(
    pool: asyncpg.Pool, filters: Filters, after: tuple[datetime, int] | None, limit: int
) -> list[asyncpg.Record]:
    """Up to ``limit`` entries matching ``filters``, newest first, after the cursor ``(at, id)``."""
    rows: list[asyncpg.Record] = await pool.fetch(
        FIND,
        _like(filters.actor),
        filters.entity_type or None,
        filters.entity_id or None,
        filters.since,
        filters.until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


async def forget(conn: asyncpg.Connection, person: object) -> None:
    """Erasure (architecture.md §4): the log keeps that a person's records changed, and when, but no longer what
    they held."""
    await conn.execute(
        "UPDATE audit_log SET changes = '{\"erased\": true}'"
        " WHERE (entity_type = 'persons' AND entity_id = $1) OR changes->>'person_id' = $1",
        str(person),
    )
