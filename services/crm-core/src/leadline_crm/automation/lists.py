"""Static lists (issue 16): named sets of persons that workflow rules fill (action ``add_to_list``) and test
(condition ``in_list``), and that people manage by hand. The store functions here are shared by the API
(/api/v1/lists, /api/v1/lists/{id}/members) and the pages (list_pages.py); every change to a list is audited.

A list a rule names cannot be deleted (409 naming the rules): the rule's action would fail on a missing list and
its condition would silently never hold.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm.automation import queries
from leadline_crm.http import audit, forms
from leadline_crm.http.auth import MARKETING, READ_ROLES, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.listing import csv_response, query_csv
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import CURSOR, LIMIT, decode_cursor, encode_cursor, page_limit
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import NAME, UUID_S

LIST_ID = Param("id", "path", {"type": "integer", "minimum": 1}, "the list's id")
PERSON_ID = Param("person_id", "path", UUID_S, "the person's id")
LIST_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["name"], "properties": {"name": NAME},
}  # fmt: skip
MEMBER_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["person_id"],
    "properties": {"person_id": UUID_S},
}  # fmt: skip
EXPORT_COLUMNS = ("person_id", "first_name", "last_name", "email", "stage", "added_at")
NO_LIST = "no such list"


class NotFound(LookupError):
    """No list (or person) has this id."""


def list_id(raw: str) -> int:
    """A list id from a path; :class:`NotFound` for anything that cannot be one."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise NotFound(NO_LIST)
    return int(raw)


def clean_name(raw: object) -> str:
    """A list's name: stripped, 1-200 characters, no NUL (BadRequest naming the field)."""
    name = str(raw or "").replace("\x00", "").strip()
    if not 1 <= len(name) <= 200:
        raise BadRequest("name: give a name of 1 to 200 characters")
    return name


async def all_lists(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every list with its member count."""
    return [dict(r) for r in await pool.fetch(queries.LISTS)]


async def get(pool: asyncpg.Pool, lid: int) -> dict[str, Any]:
    """One list with its member count; :class:`NotFound` if none."""
    row = await pool.fetchrow(queries.LIST, lid)
    if row is None:
        raise NotFound(NO_LIST)
    return dict(row)


async def create(pool: asyncpg.Pool, name: str, caller: Caller) -> dict[str, Any]:
    """A new empty list (409 when the name is taken)."""
    async with pool.acquire() as conn, conn.transaction():
        with forms.readable_errors():
            row = dict(await conn.fetchrow(queries.CREATE_LIST, clean_name(name)))
        await audit.record(conn, caller, "create", "lists", row["id"], {"name": row["name"]})
    return row


async def rename(pool: asyncpg.Pool, lid: int, name: str, caller: Caller) -> dict[str, Any]:
    """The list under its new name (409 when taken by another list)."""
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(queries.LIST, lid)
        if old is None:
            raise NotFound(NO_LIST)
        with forms.readable_errors():
            row = dict(await conn.fetchrow(queries.RENAME_LIST, lid, clean_name(name)))
        await audit.record(conn, caller, "update", "lists", lid, {"name": [old["name"], row["name"]]})
    return row


async def delete(pool: asyncpg.Pool, lid: int, caller: Caller) -> None:
    """Delete the list and its memberships, unless a workflow rule names it (409)."""
    async with pool.acquire() as conn, conn.transaction():
        using = await conn.fetch(queries.RULES_USING_LIST, str(lid))
        if using:
            names = ", ".join(f"{r['name']} (#{r['id']})" for r in using)
            raise Conflict(f"workflow rules use this list: {names}")
        name = await conn.fetchval(queries.DELETE_LIST, lid)
        if name is None:
            raise NotFound(NO_LIST)
        await audit.record(conn, caller, "delete", "lists", lid, {"name": name})


async def members(
    pool: asyncpg.Pool, lid: int, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of members, newest first, after ``cursor`` (erased persons left out), and the next page's cursor."""
    await get(pool, lid)
    after: tuple[datetime | None, str | None] = decode_cursor(cursor) if cursor else (None, None)
    if after[1] is not None:
        try:
            uuid.UUID(after[1])
        except ValueError:
            raise BadRequest("invalid cursor") from None
    rows = [dict(r) for r in await pool.fetch(queries.MEMBERS, lid, limit + 1, *after)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["added_at"], str(rows[-1]["person_id"])) if more else None


async def add(pool: asyncpg.Pool, lid: int, person: uuid.UUID, caller: Caller) -> bool:
    """Put ``person`` on the list; False when already there. :class:`NotFound` for no such list or person."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(queries.LIST, lid) is None:
            raise NotFound(NO_LIST)
        found, added = await conn.fetchrow(queries.ADD_MEMBER, lid, person)
        if not found:
            raise NotFound("no such person")
        if added:
            await audit.record(conn, caller, "add_member", "lists", lid, {"person_id": str(person)})
    return bool(added)


async def remove(pool: asyncpg.Pool, lid: int, person: uuid.UUID, caller: Caller) -> bool:
    """Take ``person`` off the list; False when they were not on it."""
    async with pool.acquire() as conn, conn.transaction():
        gone: bool = await conn.execute(queries.REMOVE_MEMBER, lid, person) == "DELETE 1"
        if gone:
            await audit.record(conn, caller, "remove_member", "lists", lid, {"person_id": str(person)})
    return gone


def export(pool: asyncpg.Pool, lid: int) -> AsyncIterator[bytes]:
    """Every member as CSV (a server-side cursor, formula-safe cells: http/listing.py)."""
    return query_csv(pool, queries.MEMBERS_ALL, [lid], EXPORT_COLUMNS)


async def export_response(request: web.Request, lid: int) -> web.StreamResponse:
    """The members' CSV download of list ``lid`` (404 before anything is sent when there is none)."""
    await get(request.app[POOL], lid)
    return await csv_response(request, f"list-{lid}.csv", export(request.app[POOL], lid))


# --- the API ---


def _lid(request: web.Request) -> int:
    try:
        return list_id(request.match_info["id"])
    except NotFound:
        raise web.HTTPNotFound(text=NO_LIST) from None


def _person(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise web.HTTPNotFound(text="no such person") from None


async def _found(call: Any) -> Any:
    try:
        return await call
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


async def api_lists(request: web.Request) -> web.Response:
    """GET /api/v1/lists."""
    return json_response({"items": await all_lists(request.app[POOL]), "next": None})


async def api_create(request: web.Request) -> web.Response:
    """POST /api/v1/lists {name}: 201 with the empty list."""
    return json_response(await create(request.app[POOL], request[BODY]["name"], request[CALLER]), status=201)


async def api_get(request: web.Request) -> web.Response:
    """GET /api/v1/lists/{id}."""
    return json_response(await _found(get(request.app[POOL], _lid(request))))


async def api_rename(request: web.Request) -> web.Response:
    """PATCH /api/v1/lists/{id} {name}."""
    pool, body = request.app[POOL], request[BODY]
    return json_response(await _found(rename(pool, _lid(request), body["name"], request[CALLER])))


async def api_delete(request: web.Request) -> web.Response:
    """DELETE /api/v1/lists/{id}: 204, or 409 while a rule names the list."""
    await _found(delete(request.app[POOL], _lid(request), request[CALLER]))
    return web.Response(status=204)


async def api_members(request: web.Request) -> web.Response:
    """GET /api/v1/lists/{id}/members: the newest members first, a page at a time (``next`` is the cursor)."""
    items, nxt = await _found(
        members(request.app[POOL], _lid(request), page_limit(request, 100, 500), request.query.get("cursor"))
    )
    return json_response({"items": items, "next": nxt})


async def api_add(request: web.Request) -> web.Response:
    """POST /api/v1/lists/{id}/members {person_id}: 201 when added, 200 when already a member."""
    person = uuid.UUID(request[BODY]["person_id"])
    added = await _found(add(request.app[POOL], _lid(request), person, request[CALLER]))
    return json_response({"list_id": _lid(request), "person_id": str(person), "added": added},
                         status=201 if added else 200)  # fmt: skip


async def api_remove(request: web.Request) -> web.Response:
    """DELETE /api/v1/lists/{id}/members/{person_id}: 204, 404 when not a member."""
    person = _person(request.match_info["person_id"])
    if not await remove(request.app[POOL], _lid(request), person, request[CALLER]):
        raise web.HTTPNotFound(text="not a member of this list")
    return web.Response(status=204)


def operations() -> list[Operation]:
    """The static lists' operations: read by every role, changed by admins and marketers."""
    tag = "automation"
    return [
        Operation("GET", "/api/v1/lists", api_lists, "Static lists", READ_ROLES, tag),
        Operation("POST", "/api/v1/lists", api_create, "Create a static list", MARKETING, tag, body=LIST_BODY,
                  status=201, errors=(409,)),
        Operation("GET", "/api/v1/lists/{id}", api_get, "A static list", READ_ROLES, tag, params=(LIST_ID,)),
        Operation("PATCH", "/api/v1/lists/{id}", api_rename, "Rename a static list", MARKETING, tag,
                  params=(LIST_ID,), body=LIST_BODY, errors=(409,)),
        Operation("DELETE", "/api/v1/lists/{id}", api_delete, "Delete a static list (not while a rule names it)",
                  MARKETING, tag, params=(LIST_ID,), status=204, errors=(409,)),
        Operation("GET", "/api/v1/lists/{id}/members", api_members, "A list's members", READ_ROLES, tag,
                  params=(LIST_ID, LIMIT, CURSOR)),
        Operation("POST", "/api/v1/lists/{id}/members", api_add, "Add a person to a list", MARKETING, tag,
                  params=(LIST_ID,), body=MEMBER_BODY, status=201),
        Operation("DELETE", "/api/v1/lists/{id}/members/{person_id}", api_remove, "Remove a person from a list",
                  MARKETING, tag, params=(LIST_ID, PERSON_ID), status=204),
    ]  # fmt: skip
