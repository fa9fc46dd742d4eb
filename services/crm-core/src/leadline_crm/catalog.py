"""The CRM's plain records behind one generic set of routes: list, create, get, update, delete.

Each :class:`Resource` names its table, key and columns (with the JSON Schema of each); the routes, their
OpenAPI description and the SQL are made from that. Resources the collector needs (forms, ads, write keys) say
how a row becomes a ``crm.config.v1`` entry, and every write puts that entry (a tombstone on delete) into the
outbox in the same transaction, from where it reaches the collector (outbox.py). Purchases and rep activities
also move the person's lifecycle stage.
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

from leadline_crm import lifecycle, outbox, queries
from leadline_crm.api import (
    API,
    BODY,
    CALLER,
    CURSOR,
    LIMIT,
    POOL,
    BadRequest,
    decode_cursor,
    encode_cursor,
    json_response,
    page_limit,
)
from leadline_crm.auth import ROLES, Caller
from leadline_crm.openapi import ROLES_ALL, Operation, Param
from leadline_crm.stages import apply_moves, load_scoring
from leadline_shared import siteconfig
from leadline_shared.events import EVENT_TYPES

ADMIN = frozenset({"admin"})
SALES = frozenset({"admin", "sales"})
REPS = frozenset({"admin", "sales", "service"})
MARKETING = frozenset({"admin", "marketing"})

Row = Mapping[str, Any]
Hook = Callable[[asyncpg.Connection, Row, Caller], Awaitable[None]]
Prepare = Callable[[asyncpg.Connection, dict[str, Any], Caller], Awaitable[None]]
Check = Callable[[Row], None]

TEXT = {"type": "string", "maxLength": 500}
LONG_TEXT = {"type": "string", "maxLength": 10000}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
SLUG = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"}
URL = {"type": "string", "pattern": "^(https?://[^\\s]{1,2000}|/[^\\s]{0,2000})$", "maxLength": 2000}
ABS_URL = {"type": "string", "pattern": "^https?://[^\\s]{1,2000}$", "maxLength": 2000}
UUID_S = {"type": "string", "format": "uuid"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
MONEY = {"type": "number", "minimum": 0, "maximum": 1e11}
STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200}, "maxItems": 100}


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadRequest(f"{value!r} is not a UUID") from None


def _date(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise BadRequest(f"{value!r} is not an amount") from None


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
    "uuid": _uuid,
    "date": _date,
    "timestamptz": _datetime,
    "numeric": _money,
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


def _handlers(res: Resource) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    casts = _casts(res)
    table, key = res.table, res.key

    async def create(request: web.Request) -> web.StreamResponse:
        values = _columns(res, request[BODY])
        pool = request.app[POOL]
        async with pool.acquire() as conn, conn.transaction():
            if res.prepare is not None:
                await res.prepare(conn, values, request[CALLER])
            names = list(values)
            placeholders = ", ".join(f"${i}::{casts[n]}" for i, n in enumerate(names, 1))
            sql = (
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders}) RETURNING *"  # noqa: S608
                if names
                else f"INSERT INTO {table} DEFAULT VALUES RETURNING *"  # noqa: S608
            )
            row = await conn.fetchrow(sql, *values.values())
            if res.check is not None:
                res.check(row)
            if res.after_create is not None:
                await res.after_create(conn, row, request[CALLER])
            await _announce(conn, res, None, row)
        return json_response(dict(row), status=201)

    async def get(request: web.Request) -> web.StreamResponse:
        row = await request.app[POOL].fetchrow(
            f"SELECT * FROM {table} WHERE {key} = $1::{res.key_cast}",  # noqa: S608
            res.key_value(request),
        )
        if row is None:
            raise web.HTTPNotFound(text=f"no such {res.title}")
        return json_response(dict(row))

    async def update(request: web.Request) -> web.StreamResponse:
        values = _columns(res, request[BODY])
        sets = ", ".join(f"{n} = ${i}::{casts[n]}" for i, n in enumerate(values, 2))
        async with request.app[POOL].acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                f"SELECT * FROM {table} WHERE {key} = $1::{res.key_cast} FOR UPDATE",  # noqa: S608
                res.key_value(request),
            )
            if old is None:
                raise web.HTTPNotFound(text=f"no such {res.title}")
            row = await conn.fetchrow(
                f"UPDATE {table} SET {sets} WHERE {key} = $1::{res.key_cast} RETURNING *",  # noqa: S608
                res.key_value(request),
                *values.values(),
            )
            if res.check is not None:
                res.check(row)
            await _announce(conn, res, old, row)
        return json_response(dict(row))

    async def delete(request: web.Request) -> web.StreamResponse:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                f"DELETE FROM {table} WHERE {key} = $1::{res.key_cast} RETURNING *",  # noqa: S608
                res.key_value(request),
            )
            if old is None:
                raise web.HTTPNotFound(text=f"no such {res.title}")
            await _announce(conn, res, old, None)
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

    return {"create": create, "get": get, "update": update, "delete": delete, "list": list_}


def declare(res: Resource) -> None:
    """Put the resource's operations on the API."""
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
    if "list" in res.ops:
        API.add(
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
        API.add(
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
        API.add(
            Operation(
                "GET", item, handlers["get"], f"Get a {res.title}", res.read_roles, tag, params=(key_param,)
            )
        )
    if "update" in res.ops:
        API.add(
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
        API.add(
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


# --- lifecycle hooks -------------------------------------------------------------------------------------


async def _move(
    conn: asyncpg.Connection, person_id: uuid.UUID, cause: str, caller: Caller, reason: str
) -> None:
    scoring, _ = await load_scoring(conn)
    rows = await conn.fetch(queries.SIGNALS, [person_id])
    await apply_moves(
        conn, [dict(r) | {"cause": cause} for r in rows], scoring, datetime.now(UTC), reason, caller.label
    )


async def _purchase_defaults(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    """The price paid defaults to list price times quantity; the sales rep to the calling rep."""
    if values.get("price_paid") is None and values.get("product_id") is not None:
        price = await conn.fetchval("SELECT list_price FROM products WHERE id = $1", values["product_id"])
        if price is None:
            raise BadRequest("product_id: no such product")
        values["price_paid"] = price * values.get("quantity", 1)
    if "sales_rep" not in values and caller.user_id is not None:
        values["sales_rep"] = caller.user_id


async def _rep_default(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    """An activity is by the calling rep unless another is named."""
    if "rep_id" not in values and caller.user_id is not None:
        values["rep_id"] = caller.user_id


async def _after_purchase(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    await conn.execute("UPDATE persons SET purchases = purchases + 1 WHERE person_id = $1", row["person_id"])
    await _move(conn, row["person_id"], f"purchase:{row['id']}", caller, "purchase recorded")


async def after_activity(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    if row["kind"] in lifecycle.REP_CONTACT_KINDS:
        await conn.execute("UPDATE persons SET rep_contacted = true WHERE person_id = $1", row["person_id"])
        await _move(conn, row["person_id"], f"activity:{row['id']}", caller, f"rep logged a {row['kind']}")


def campaign_dates(row: Row) -> None:
    """A campaign cannot end before it starts. Checked on the written row, so a PATCH of one date is held
    against the other date as stored; the transaction rolls back on the 422."""
    starts, ends = row["starts_on"], row["ends_on"]
    if starts is not None and ends is not None and ends < starts:
        raise BadRequest(f"ends_on: {ends.isoformat()} is before starts_on {starts.isoformat()}")


# --- config entries for the collector ----------------------------------------------------------------------


def form_entry(row: Row) -> siteconfig.Entry:
    return siteconfig.FormConfig(
        key=row["key"],
        fields=tuple(row["fields"]),
        thank_you_url=row["thank_you_url"],
        allowed_origins=tuple(row["allowed_origins"]),
        required=tuple(row["required"]),
    )


def ad_entry(row: Row) -> siteconfig.Entry:
    return siteconfig.AdConfig(
        affiliate_id=row["affiliate_id"], ad_id=row["ad_id"], landing_url=row["landing_url"], name=row["name"]
    )


def source_entry(row: Row) -> siteconfig.Entry:
    return siteconfig.SourceConfig(
        write_key=row["write_key"], name=row["name"], settings=dict(row["settings"])
    )


def person_filter() -> Param:
    return Param("person_id", "query", UUID_S, "only this person's records")


RESOURCES = (
    Resource(
        "products",
        "product",
        "products",
        "id",
        (
            Column("sku", SLUG, required=True),
            Column("name", NAME, required=True),
            Column("list_price", MONEY, required=True, cast="numeric"),
            Column("currency", {"type": "string", "pattern": "^[A-Z]{3}$"}),
            Column("info", LONG_TEXT),
            Column("active", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
    ),
    Resource(
        "purchases",
        "purchase",
        "purchases",
        "id",
        (
            Column("person_id", UUID_S, required=True, cast="uuid"),
            Column("product_id", UUID_S, required=True, cast="uuid"),
            Column(
                "quantity",
                {"type": "integer", "minimum": 1, "maximum": 1000000},
                required=True,
                cast="integer",
            ),
            Column("purchased_on", DATE, cast="date"),
            Column("sales_rep", UUID_S, cast="uuid", nullable=True),
            Column("price_paid", MONEY, cast="numeric"),
            Column("special_instructions", LONG_TEXT),
        ),
        ROLES_ALL,
        SALES,
        filters=(person_filter(),),
        ops=frozenset({"list", "create", "get", "update"}),
        prepare=_purchase_defaults,
        after_create=_after_purchase,
        immutable=frozenset({"person_id"}),
    ),
    Resource(
        "feedback",
        "feedback entry",
        "feedback",
        "id",
        (
            Column("person_id", UUID_S, required=True, cast="uuid"),
            Column("rating", {"type": "integer", "minimum": 1, "maximum": 5}, required=True, cast="integer"),
            Column("text", LONG_TEXT, nullable=True),
        ),
        ROLES_ALL,
        REPS,
        filters=(person_filter(),),
        ops=frozenset({"list", "create", "get"}),
    ),
    Resource(
        "activities",
        "activity",
        "activities",
        "id",
        (
            Column("person_id", UUID_S, required=True, cast="uuid"),
            Column(
                "kind",
                {"type": "string", "enum": ["site_visit", "phone_call", "meeting", "note", "email"]},
                required=True,
            ),
            Column("rep_id", UUID_S, cast="uuid", nullable=True),
            Column("at", DATETIME, cast="timestamptz"),
            Column("outcome", TEXT, nullable=True),
            Column("notes", LONG_TEXT, nullable=True),
        ),
        ROLES_ALL,
        REPS,
        filters=(person_filter(),),
        ops=frozenset({"list", "create", "get", "update"}),
        prepare=_rep_default,
        after_create=after_activity,
        immutable=frozenset({"person_id", "kind"}),
    ),
    Resource(
        "campaigns",
        "campaign",
        "campaigns",
        "id",
        (
            Column("name", NAME, required=True),
            Column(
                "channel",
                {"type": "string", "enum": ["email", "affiliate", "paid", "social", "event", "other"]},
            ),
            Column("landing_url", URL, nullable=True),
            Column("starts_on", DATE, cast="date", nullable=True),
            Column("ends_on", DATE, cast="date", nullable=True),
        ),
        ROLES_ALL,
        MARKETING,
        check=campaign_dates,
    ),
    Resource(
        "affiliates",
        "affiliate",
        "affiliates",
        "affiliate_id",
        (
            Column("affiliate_id", SLUG, required=True),
            Column("name", NAME, required=True),
            Column("landing_url", URL, nullable=True),
            Column("contact_email", {"type": "string", "format": "email", "maxLength": 320}, nullable=True),
        ),
        ROLES_ALL,
        MARKETING,
        generated_key=False,
        immutable=frozenset({"affiliate_id"}),
    ),
    Resource(
        "ads",
        "ad",
        "ads",
        "id",
        (
            Column("affiliate_id", SLUG, required=True),
            Column("ad_id", SLUG, required=True),
            Column("name", TEXT),
            Column("landing_url", ABS_URL, required=True),
            Column("campaign_id", UUID_S, cast="uuid", nullable=True),
            Column("creative", {"type": "object", "maxProperties": 50}, cast="jsonb"),
        ),
        ROLES_ALL,
        MARKETING,
        filters=(Param("affiliate_id", "query", SLUG, "only this affiliate's ads"),),
        config=ad_entry,
    ),
    Resource(
        "forms",
        "form",
        "forms",
        "key",
        (
            Column("key", SLUG, required=True),
            Column("name", TEXT),
            Column("fields", {**STRINGS, "minItems": 1}, required=True, cast="jsonb"),
            Column("required", STRINGS, cast="jsonb"),
            Column("allowed_origins", {**STRINGS, "items": ABS_URL}, cast="jsonb"),
            Column("thank_you_url", URL, required=True),
        ),
        ROLES_ALL,
        MARKETING,
        generated_key=False,
        config=form_entry,
        immutable=frozenset({"key"}),
    ),
    Resource(
        "sources",
        "write key",
        "sources",
        "write_key",
        (
            Column("write_key", SLUG, required=True),
            Column("name", TEXT),
            Column("settings", {"type": "object", "maxProperties": 50}, cast="jsonb"),
        ),
        ROLES_ALL,
        MARKETING,
        generated_key=False,
        config=source_entry,
        immutable=frozenset({"write_key"}),
    ),
    Resource(
        "email_sends",
        "email send",
        "email_sends",
        "id",
        (
            Column("campaign_id", UUID_S, cast="uuid", nullable=True),
            Column("person_id", UUID_S, cast="uuid", nullable=True),
            Column("subject", TEXT),
            Column("sent_at", DATETIME, cast="timestamptz"),
        ),
        ROLES_ALL,
        MARKETING,
        filters=(person_filter(), Param("campaign_id", "query", UUID_S, "only this campaign's sends")),
    ),
    Resource(
        "field_definitions",
        "custom field definition",
        "field_definitions",
        "name",
        (
            Column("name", {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}, required=True),
            Column("label", NAME, required=True),
            Column(
                "type",
                {"type": "string", "enum": ["text", "number", "boolean", "date", "choice"]},
                required=True,
            ),
            Column("choices", STRINGS, cast="jsonb"),
            Column("required", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
        generated_key=False,
        immutable=frozenset({"name"}),
    ),
    Resource(
        "score_rules",
        "score rule",
        "score_rules",
        "id",
        (
            Column("name", NAME, required=True),
            Column("event_type", {"type": "string", "enum": sorted(EVENT_TYPES)}, required=True),
            Column("url_contains", {"type": "string", "minLength": 1, "maxLength": 500}, nullable=True),
            Column(
                "points", {"type": "number", "minimum": -1000, "maximum": 1000}, required=True, cast="float8"
            ),
            Column("active", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
    ),
    Resource(
        "users",
        "user",
        "users",
        "id",
        (
            Column(
                "email",
                {"type": "string", "format": "email", "minLength": 3, "maxLength": 320},
                required=True,
            ),
            Column("name", NAME, required=True),
            Column("role", {"type": "string", "enum": list(ROLES)}, required=True),
            Column("active", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
        ops=frozenset({"list", "create", "get", "update"}),
    ),
)

for _res in RESOURCES:
    declare(_res)

CONFIG_RESOURCES = tuple(r for r in RESOURCES if r.config is not None)


async def config_entries(conn: asyncpg.Connection) -> list[siteconfig.Entry]:
    """Every entry the collector should have, from the tables (republished at start-up)."""
    entries: list[siteconfig.Entry] = []
    for res in CONFIG_RESOURCES:
        assert res.config is not None
        rows = await conn.fetch(f"SELECT * FROM {res.table}")  # noqa: S608
        entries += [res.config(r) for r in rows]
    return entries


# --- scoring settings (one row) ------------------------------------------------------------------------------

SCORING_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "half_life_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650},
        "prospect_threshold": {"type": "number", "minimum": 0, "maximum": 1e6},
        "repeat_visit_days": {"type": "integer", "minimum": 1, "maximum": 365},
    },
}


async def get_scoring(request: web.Request) -> web.Response:
    """GET /api/v1/scoring: the score half-life and what makes a lead a prospect."""
    row = await request.app[POOL].fetchrow(queries.SCORING)
    return json_response(dict(row))


async def patch_scoring(request: web.Request) -> web.Response:
    """PATCH /api/v1/scoring: applies to the next ingested batch (stages already reached stay)."""
    body = request[BODY]
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(body, 1))
    row = await request.app[POOL].fetchrow(
        f"UPDATE scoring SET {sets} RETURNING half_life_days, prospect_threshold, repeat_visit_days",  # noqa: S608
        *body.values(),
    )
    return json_response(dict(row))


API.add(Operation("GET", "/api/v1/scoring", get_scoring, "Scoring settings", ROLES_ALL, "score rules"))
API.add(
    Operation(
        "PATCH",
        "/api/v1/scoring",
        patch_scoring,
        "Change the score half-life, the prospect threshold or the repeat-visit days",
        ADMIN,
        "score rules",
        body=SCORING_BODY,
    )
)
