"""The generic CRUD engine: a table exposed as list, create, get, update and delete under /api/v1/{path}.

Each :class:`Resource` names its table, key and columns (with the JSON Schema of each); the routes, their
OpenAPI description and the SQL are made from that. A resource the collector needs says how a row becomes a
``crm.config.v1`` entry, and every write puts that entry (a tombstone on delete) into the outbox in the same
transaction, from where it reaches the collector (outbox.py). Hooks let a domain add what a write implies (a
purchase moves the person's stage). Every write is also put in the audit log, in its transaction (http/audit.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm import outbox
from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import CURSOR, LIMIT, decode_cursor, encode_cursor, page_limit
from leadline_crm.http.responses import json_response
from leadline_shared import siteconfig

Row = Mapping[str, Any]
Hook = Callable[[asyncpg.Connection, Row, Caller], Awaitable[None]]
Prepare = Callable[[asyncpg.Connection, dict[str, Any], Caller], Awaitable[None]]
Check = Callable[[Row], None]


def _converter(
    parse: Callable[[Any], Any], what: str, errors: type[Exception] = ValueError
) -> Callable[[Any], Any]:
    """A JSON value to its column's Python type: None stays None, a value ``parse`` refuses is a 422 that says
    what was expected."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except errors:
            raise BadRequest(f"{value!r} is not {what}") from None

    return convert


def _aware(value: Any) -> datetime:
    """An ISO 8601 date-time; one without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _nul_free(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: refuse them with a 422 instead of failing later."""
    if isinstance(value, str) and "\x00" in value:
        raise BadRequest("text must not contain NUL characters")
    if isinstance(value, list):
        return [_nul_free(v) for v in value]
    if isinstance(value, dict):
        return {_nul_free(k): _nul_free(v) for k, v in value.items()}
    return value


CONVERT: dict[str, Callable[[Any], Any]] = {
    "uuid": _converter(lambda v: uuid.UUID(str(v)), "a UUID"),
    "date": _converter(date.fromisoformat, "a date (YYYY-MM-DD)"),
    "timestamptz": _converter(_aware, "an ISO 8601 date-time"),
    "numeric": _converter(lambda v: Decimal(str(v)).quantize(Decimal("0.01")), "an amount", InvalidOperation),
}


@dataclass(frozen=True)
class Column:
    """A writable column: its JSON Schema, whether creation needs it, and its SQL type."""

    name: str
    schema: dict[str, Any]
    required: bool = False
    cast: str = "text"
    nullable: bool = False

    def json_schema(self) -> dict[str, Any]:
        """The column's schema, allowing null where the column may be cleared."""
        if not self.nullable:
            return self.schema
        return {"anyOf": [self.schema, {"type": "null"}]}

    def to_db(self, value: Any) -> Any:
        """The JSON value as asyncpg wants it for this column."""
        value = _nul_free(value)
        convert = CONVERT.get(self.cast)
        return convert(value) if convert else value


@dataclass(frozen=True)
class Resource:
    """A table exposed at /api/v1/{path}."""

    path: str
    title: str
    table: str
    key: str
    columns: tuple[Column, ...]
    read_roles: frozenset[str]
    write_roles: frozenset[str]
    generated_key: bool = True
    filters: tuple[Param, ...] = ()
    ops: frozenset[str] = frozenset({"list", "create", "get", "update", "delete"})
    config: Callable[[Row], siteconfig.Entry] | None = None
    prepare: Prepare | None = None
    after_create: Hook | None = None
    after_update: Hook | None = None
    # Called with the key, before a delete: for what it takes along (the rows its foreign keys cascade to).
    before_delete: Callable[[asyncpg.Connection, Any], Awaitable[None]] | None = None
    check: Check | None = None  # on the written row, before commit: rules spanning columns (BadRequest)
    immutable: frozenset[str] = field(default_factory=frozenset)

    @property
    def key_cast(self) -> str:
        return "uuid" if self.generated_key else "text"

    def body_schema(self, creating: bool) -> dict[str, Any]:
        """The JSON Schema of a create (required columns) or update (any subset, at least one) body."""
        columns = [c for c in self.columns if creating or c.name not in self.immutable]
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {c.name: c.json_schema() for c in columns},
        }
        if creating:
            schema["required"] = [c.name for c in columns if c.required]
        else:
            schema["minProperties"] = 1
        return schema

    def key_value(self, request: web.Request) -> Any:
        """The record key from the path; 404 when it cannot be one."""
        raw = request.match_info["key"]
        if self.generated_key:
            try:
                return uuid.UUID(raw)
            except ValueError:
                raise web.HTTPNotFound(text=f"no such {self.title}") from None
        if "\x00" in raw:
            raise web.HTTPNotFound(text=f"no such {self.title}")
        return raw


def _columns(res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    by_name = {c.name: c for c in res.columns}
    return {name: by_name[name].to_db(value) for name, value in body.items()}


def _audited(res: Resource) -> tuple[str, ...]:
    """The fields the audit log shows: the key when the client chooses it, and every writable column."""
    return ((res.key,) if not res.generated_key else ()) + tuple(c.name for c in res.columns)


def _casts(res: Resource) -> dict[str, str]:
    return {c.name: c.cast for c in res.columns}


async def _announce(conn: asyncpg.Connection, res: Resource, old: Row | None, new: Row | None) -> None:
    """Owe the collector the new entry, and a tombstone for the old one when its key went away (in the
    caller's transaction)."""
    if res.config is None:
        return
    messages: list[outbox.Message] = []
    old_key = res.config(old).entry_key() if old is not None else None
    if new is not None:
        entry = res.config(new)
        if old_key is not None and old_key != entry.entry_key():
            messages.append(outbox.config_tombstone(old_key))
        messages.append(outbox.config_entry(entry))
    elif old_key is not None:
        messages.append(outbox.config_tombstone(old_key))
    await outbox.write(conn, messages)


async def insert(pool: asyncpg.Pool, res: Resource, body: dict[str, Any], caller: Caller) -> Row:
    """Create one record from a body valid against ``res.body_schema(creating=True)``: the API's create and the
    web app's forms share it, with its defaults, checks and consequences (stage moves, config announcements)."""
    values = _columns(res, body)
    casts = _casts(res)
    async with pool.acquire() as conn, conn.transaction():
        if res.prepare is not None:
            await res.prepare(conn, values, caller)
        names = list(values)
        placeholders = ", ".join(f"${i}::{casts[n]}" for i, n in enumerate(names, 1))
        sql = (
            f"INSERT INTO {res.table} ({', '.join(names)}) VALUES ({placeholders}) RETURNING *"  # noqa: S608
            if names
            else f"INSERT INTO {res.table} DEFAULT VALUES RETURNING *"  # noqa: S608
        )
        row: Row = await conn.fetchrow(sql, *values.values())
        if res.check is not None:
            res.check(row)
        if res.after_create is not None:
            await res.after_create(conn, row, caller)
        await _announce(conn, res, None, row)
        await audit.record(conn, caller, "create", res.path, row[res.key], audit.values(row, _audited(res)))
    return row


async def fetch(pool: asyncpg.Pool, res: Resource, key: Any) -> Row | None:
    """One record by its key, or None."""
    row: Row | None = await pool.fetchrow(
        f"SELECT * FROM {res.table} WHERE {res.key} = $1::{res.key_cast}",  # noqa: S608
        key,
    )
    return row


async def update(
    pool: asyncpg.Pool, res: Resource, key: Any, body: dict[str, Any], caller: Caller
) -> Row | None:
    """Change one record from a body valid against ``res.body_schema(creating=False)`` (None: no such record);
    the API's PATCH and the web app's forms share it, with its checks, hooks, announcement and audit entry."""
    values = _columns(res, body)
    casts = _casts(res)
    sets = ", ".join(f"{n} = ${i}::{casts[n]}" for i, n in enumerate(values, 2))
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(
            f"SELECT * FROM {res.table} WHERE {res.key} = $1::{res.key_cast} FOR UPDATE",  # noqa: S608
            key,
        )
        if old is None:
            return None
        row: Row = await conn.fetchrow(
            f"UPDATE {res.table} SET {sets} WHERE {res.key} = $1::{res.key_cast} RETURNING *",  # noqa: S608
            key,
            *values.values(),
        )
        if res.check is not None:
            res.check(row)
        if res.after_update is not None:
            await res.after_update(conn, row, caller)
        await _announce(conn, res, old, row)
        changes = audit.diff(old, row, _audited(res))
        if changes:
            await audit.record(conn, caller, "update", res.path, row[res.key], changes)
    return row


async def delete(pool: asyncpg.Pool, res: Resource, key: Any, caller: Caller) -> Row | None:
    """Delete one record (None: no such record), with its tombstone for the collector and its audit entry."""
    async with pool.acquire() as conn, conn.transaction():
        if res.before_delete is not None:
            await res.before_delete(conn, key)
        old: Row | None = await conn.fetchrow(
            f"DELETE FROM {res.table} WHERE {res.key} = $1::{res.key_cast} RETURNING *",  # noqa: S608
            key,
        )
        if old is None:
            return None
        await _announce(conn, res, old, None)
        await audit.record(conn, caller, "delete", res.path, old[res.key], audit.values(old, _audited(res)))
    return old


def _handlers(res: Resource) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    table, key = res.table, res.key

    async def create(request: web.Request) -> web.StreamResponse:
        row = await insert(request.app[POOL], res, request[BODY], request[CALLER])
        return json_response(dict(row), status=201)

    async def get(request: web.Request) -> web.StreamResponse:
        row = await fetch(request.app[POOL], res, res.key_value(request))
        if row is None:
            raise web.HTTPNotFound(text=f"no such {res.title}")
        return json_response(dict(row))

    async def update_(request: web.Request) -> web.StreamResponse:
        row = await update(request.app[POOL], res, res.key_value(request), request[BODY], request[CALLER])
        if row is None:
            raise web.HTTPNotFound(text=f"no such {res.title}")
        return json_response(dict(row))

    async def delete_(request: web.Request) -> web.StreamResponse:
        old = await delete(request.app[POOL], res, res.key_value(request), request[CALLER])
        if old is None:
            raise web.HTTPNotFound(text=f"no such {res.title}")
        return web.Response(status=204)

    async def list_(request: web.Request) -> web.StreamResponse:
        limit = page_limit(request)
        where, args = [], []
        for param in res.filters:
            raw = request.query.get(param.name)
            if raw is None or raw == "":
                continue
            column = next(c for c in res.columns if c.name == param.name)
            args.append(column.to_db(raw))
            where.append(f"{param.name} = ${len(args)}::{column.cast}")
        if cursor := request.query.get("cursor"):
            after = decode_cursor(cursor)
            args += list(after)
            where.append(f"(created_at, {key}::text) > (${len(args) - 1}::timestamptz, ${len(args)}::text)")
        args.append(limit + 1)
        sql = (
            f"SELECT * FROM {table} WHERE {' AND '.join(where) or 'true'} "  # noqa: S608
            f"ORDER BY created_at, {key}::text LIMIT ${len(args)}"
        )
        rows = await request.app[POOL].fetch(sql, *args)
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = encode_cursor(last["created_at"], str(last[key]))
        return json_response({"items": [dict(r) for r in rows[:limit]], "next": nxt})

    return {"create": create, "get": get, "update": update_, "delete": delete_, "list": list_}


def operations(res: Resource) -> list[Operation]:
    """The resource's operations: list, create, get, update and delete, as far as ``res.ops`` allows."""
    handlers = _handlers(res)
    base = f"/api/v1/{res.path}"
    item = f"{base}/{{key}}"
    key_param = Param(
        "key",
        "path",
        {"type": "string", **({"format": "uuid"} if res.generated_key else {})},
        f"the {res.title}",
    )
    tag = res.path.replace("_", " ")
    ops: list[Operation] = []
    if "list" in res.ops:
        ops.append(
            Operation(
                "GET",
                base,
                handlers["list"],
                f"List {res.path.replace('_', ' ')}",
                res.read_roles,
                tag,
                params=(*res.filters, LIMIT, CURSOR),
            )
        )
    if "create" in res.ops:
        ops.append(
            Operation(
                "POST",
                base,
                handlers["create"],
                f"Create a {res.title}",
                res.write_roles,
                tag,
                body=res.body_schema(creating=True),
                status=201,
                errors=(409,),
            )
        )
    if "get" in res.ops:
        ops.append(
            Operation(
                "GET", item, handlers["get"], f"Get a {res.title}", res.read_roles, tag, params=(key_param,)
            )
        )
    if "update" in res.ops:
        ops.append(
            Operation(
                "PATCH",
                item,
                handlers["update"],
                f"Change a {res.title}",
                res.write_roles,
                tag,
                params=(key_param,),
                body=res.body_schema(creating=False),
                errors=(409,),
            )
        )
    if "delete" in res.ops:
        ops.append(
            Operation(
                "DELETE",
                item,
                handlers["delete"],
                f"Delete a {res.title}",
                res.write_roles,
                tag,
                params=(key_param,),
                status=204,
                errors=(409,),
            )
        )
    return ops
