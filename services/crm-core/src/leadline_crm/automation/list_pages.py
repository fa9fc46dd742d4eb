"""The static lists' pages: every list with its member count (/app/lists), a list's members with rename, delete,
remove-a-member and a CSV download (/app/lists/{id}), and the person page's part naming the person's lists with a
small form to add them to one. Everyone signed in reads; admins and marketers change, through lists.py as the
API does, so a taken name is a 409 and a list a rule names cannot be deleted (the page says which rules)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from leadline_crm.automation import lists, queries
from leadline_crm.http.auth import MARKETING, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.templating import render

PAGE = 500


def _lid(request: web.Request) -> int:
    try:
        return lists.list_id(request.match_info["id"])
    except lists.NotFound:
        raise web.HTTPNotFound(reason="No list has this id.") from None


def _person(request: web.Request, key: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[key])
    except ValueError:
        raise web.HTTPNotFound(reason="No such person") from None


async def _page(
    request: web.Request, caller: Caller, message: str | None = None, status: int = 200
) -> web.Response:
    return render(
        request, "automation/lists.html", status=status, title="Lists", message=message,
        notice=request.query.get("notice"), lists=await lists.all_lists(request.app[POOL]),
        can_write=may(caller, MARKETING),
    )  # fmt: skip


async def list_index(request: web.Request) -> web.Response:
    """GET /app/lists."""
    return await _page(request, await signed_in(request))


async def create_list(request: web.Request) -> web.Response:
    """POST /app/lists: a new list, then its page."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    try:
        row = await lists.create(request.app[POOL], str((await request.post()).get("name", "")), caller)
    except (BadRequest, Conflict) as exc:
        return await _page(request, caller, str(exc), 409 if isinstance(exc, Conflict) else 422)
    raise web.HTTPSeeOther(f"/app/lists/{row['id']}?" + urlencode({"notice": "List created"}))


async def _list_page(
    request: web.Request, caller: Caller, lid: int, message: str | None = None, status: int = 200
) -> web.Response:
    pool = request.app[POOL]
    try:
        found: dict[str, Any] = await lists.get(pool, lid)
    except lists.NotFound:
        raise web.HTTPNotFound(reason="No list has this id.") from None
    return render(
        request, "automation/list.html", status=status, title=found["name"], message=message,
        notice=request.query.get("notice"), list=found, members=(await lists.members(pool, lid, PAGE))[0], page=PAGE,
        can_write=may(caller, MARKETING),
    )  # fmt: skip


async def list_page(request: web.Request) -> web.Response:
    """GET /app/lists/{id}: the members, newest first."""
    return await _list_page(request, await signed_in(request), _lid(request))


async def change_list(request: web.Request) -> web.Response:
    """POST /app/lists/{id}: rename."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    lid = _lid(request)
    try:
        await lists.rename(request.app[POOL], lid, str((await request.post()).get("name", "")), caller)
    except lists.NotFound:
        raise web.HTTPNotFound(reason="No list has this id.") from None
    except (BadRequest, Conflict) as exc:
        return await _list_page(request, caller, lid, str(exc), 409 if isinstance(exc, Conflict) else 422)
    raise web.HTTPSeeOther(f"/app/lists/{lid}?" + urlencode({"notice": "List renamed"}))


async def delete_list(request: web.Request) -> web.Response:
    """POST /app/lists/{id}/delete: gone with its memberships, unless a rule names it."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    lid = _lid(request)
    try:
        await lists.delete(request.app[POOL], lid, caller)
    except lists.NotFound:
        raise web.HTTPNotFound(reason="No list has this id.") from None
    except Conflict as exc:
        return await _list_page(request, caller, lid, str(exc), 409)
    raise web.HTTPSeeOther("/app/lists?" + urlencode({"notice": "List deleted"}))


async def remove_member(request: web.Request) -> web.Response:
    """POST /app/lists/{id}/members/{person_id}/remove."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    lid, person = _lid(request), _person(request, "person_id")
    gone = await lists.remove(request.app[POOL], lid, person, caller)
    notice = "Removed from the list" if gone else "That person was not on the list"
    raise web.HTTPSeeOther(f"/app/lists/{lid}?" + urlencode({"notice": notice}))


async def members_csv(request: web.Request) -> web.StreamResponse:
    """GET /app/lists/{id}/members.csv: every member."""
    await signed_in(request)
    try:
        return await lists.export_response(request, _lid(request))
    except lists.NotFound:
        raise web.HTTPNotFound(reason="No list has this id.") from None


async def person_lists(request: web.Request) -> web.Response:
    """GET /app/persons/{id}/lists: the person page's part (automation/_lists.html)."""
    caller = await signed_in(request)
    person = _person(request, "id")
    rows = await request.app[POOL].fetch(queries.PERSON_LISTS, person)
    return render(
        request, "automation/_lists.html", pid=str(person), rows=rows, can_write=may(caller, MARKETING)
    )


async def add_person(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/lists (list_id): add the person, then back to their page."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    person = _person(request, "id")
    raw = str((await request.post()).get("list_id", ""))
    try:
        added = await lists.add(request.app[POOL], lists.list_id(raw), person, caller)
    except lists.NotFound as exc:
        detail = "Choose a list." if "list" in str(exc) else "No such person."
        return render(request, "error.html", status=422 if "list" in str(exc) else 404, title="Not added",
                      detail=detail)  # fmt: skip
    notice = "Added to the list" if added else "Already on that list"
    raise web.HTTPSeeOther(f"/app/persons/{person}?" + urlencode({"notice": notice}))


def pages() -> list[web.AbstractRouteDef]:
    """The static lists' pages."""
    return [
        web.get("/app/lists", list_index),
        web.post("/app/lists", create_list),
        web.get("/app/lists/{id}", list_page),
        web.post("/app/lists/{id}", change_list),
        web.post("/app/lists/{id}/delete", delete_list),
        web.get("/app/lists/{id}/members.csv", members_csv),
        web.post("/app/lists/{id}/members/{person_id}/remove", remove_member),
        web.get("/app/persons/{id}/lists", person_lists),
        web.post("/app/persons/{id}/lists", add_person),
    ]
