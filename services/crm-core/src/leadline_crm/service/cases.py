"""Cases: what a customer asks, reports or returns, tracked under an ``SR-YYYY-NNNNNN`` number (issue 14).

The API (service/routes.py) and the web pages (service/pages.py) both change cases through these functions, so
their rules are one: the tracking number comes from the year's counter row in the case's own transaction, the due
time from the service level of the case's contract, a status moves only along :data:`MOVES` (anything else is a
409 naming the allowed moves), and every change is written to the audit log and to ``case_events``, which the
person's timeline shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from leadline_crm.automation import events as domain_events
from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.service import queries

TYPES = ("question", "complaint", "fault", "return")
STATUSES = ("new", "open", "waiting", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "waiting")
PRIORITIES = ("low", "normal", "high", "urgent")
#: Where a case may go from each status; "open" from resolved or closed is a reopen.
MOVES: dict[str, tuple[str, ...]] = {
    "new": ("open", "waiting", "resolved"),
    "open": ("waiting", "resolved"),
    "waiting": ("open", "resolved"),
    "resolved": ("closed", "open"),
    "closed": ("open",),
}
#: The service level of a case no contract covers: answered within three days.
DEFAULT_RESPONSE_HOURS = 72
TRACKING_PATTERN = r"^SR-[0-9]{4}-[0-9]{6,}$"


class UnknownCase(Exception):
    """No case has this tracking number (a 404)."""


def tracking_number(year: int, number: int) -> str:
    """``SR-2026-000042``: the year and its sequence number, six digits at least."""
    return f"SR-{year}-{number:06d}"


async def _service_level(
    conn: asyncpg.Connection, person: uuid.UUID, contract: uuid.UUID | None, purchase: uuid.UUID | None
) -> tuple[uuid.UUID | None, int]:
    """The contract the case falls under and its response hours (the default without one)."""
    if contract is not None:
        row = await conn.fetchrow(queries.CONTRACT_BY_ID, contract)
        if row is None:
            raise BadRequest(f"contract_id: no contract with id {contract}")
        if row["person_id"] != person:
            raise BadRequest("contract_id: the contract belongs to another person")
    else:
        row = await conn.fetchrow(queries.CONTRACT_COVERING, person, purchase)
        if row is None:
            return None, DEFAULT_RESPONSE_HOURS
    return row["id"], int(row["response_hours"])


def _uuid_or_none(value: Any, name: str) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadRequest(f"{name}: not a UUID") from None


async def create_case(pool: asyncpg.Pool, body: Mapping[str, Any], caller: Caller) -> asyncpg.Record:
    """Open a case from a body valid against routes.CASE_BODY; returns it as :func:`get_case` shows it."""
    person = _uuid_or_none(body["person_id"], "person_id")
    purchase = _uuid_or_none(body.get("purchase_id"), "purchase_id")
    contract = _uuid_or_none(body.get("contract_id"), "contract_id")
    assignee = _uuid_or_none(body.get("assignee_id"), "assignee_id")
    if person is None:
        raise BadRequest("person_id: required")
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(queries.PERSON_EXISTS, person):
            raise BadRequest(f"person_id: no person with id {person}")
        if purchase is not None and await conn.fetchval(queries.PURCHASE_OWNER, purchase) != person:
            raise BadRequest("purchase_id: no purchase of this person with that id")
        if assignee is not None and not await conn.fetchval(queries.USER_EXISTS, assignee):
            raise BadRequest(f"assignee_id: no active user with id {assignee}")
        contract, hours = await _service_level(conn, person, contract, purchase)
        year, number = await conn.fetchrow(queries.NEXT_NUMBER)
        row = await conn.fetchrow(
            queries.INSERT_CASE, tracking_number(year, number), person, body["type"],
            body.get("priority") or "normal", body["subject"], body["description"], purchase, contract,
            assignee, hours,
        )  # fmt: skip
        await conn.execute(queries.INSERT_EVENT, row["id"], person, "created", None, "new", caller.actor)
        await domain_events.case_changed(conn, "case.created", row)
        await audit.record(
            conn, caller, "create", "cases", row["tracking_number"], audit.values(row, AUDITED)
        )
        shown: asyncpg.Record = await conn.fetchrow(queries.CASE_BY_NUMBER, row["tracking_number"])
    return shown


#: Who opens the cases of support forms, in the audit log and on the case's events.
FORMS = Caller("support form", "service", via="cli")


@dataclass(frozen=True)
class Submission:
    """What a support form's submission asks for (service/support.py reads it from the event)."""

    event_id: str
    person_id: uuid.UUID
    type: str
    subject: str
    description: str
    form_ref: str | None = None


async def open_from_form(conn: asyncpg.Connection, sub: Submission) -> str | None:
    """Open the case a support form's submission asks for, in the caller's transaction (ingestion's); its tracking
    number, or None when this submission (or its page's reference) opened one already. The audit entry names the
    form's event, not the texts, so the audit log holds nothing the customer typed."""
    if await conn.fetchval(queries.FORM_CASE_EXISTS, sub.event_id, sub.form_ref):
        return None
    contract, hours = await _service_level(conn, sub.person_id, None, None)
    year, number = await conn.fetchrow(queries.NEXT_NUMBER)
    row = await conn.fetchrow(
        queries.INSERT_FORM_CASE, tracking_number(year, number), sub.person_id, sub.type, sub.subject,
        sub.description, contract, hours, sub.event_id, sub.form_ref,
    )  # fmt: skip
    await conn.execute(queries.INSERT_EVENT, row["id"], sub.person_id, "created", None, "new", FORMS.actor)
    await domain_events.case_changed(conn, "case.created", {**row, "person_id": sub.person_id, "type": sub.type,
                                                            "status": "new"})  # fmt: skip
    await audit.record(conn, FORMS, "create", "cases", row["tracking_number"],
                       {"type": sub.type, "event_id": sub.event_id})  # fmt: skip
    return str(row["tracking_number"])


AUDITED = ("tracking_number", "person_id", "type", "status", "priority", "subject", "description",
           "purchase_id", "contract_id", "assignee_id", "due_at")  # fmt: skip


async def get_case(pool: asyncpg.Pool, number: str) -> asyncpg.Record:
    """The case with this tracking number (:class:`UnknownCase` if none)."""
    row: asyncpg.Record | None = await pool.fetchrow(queries.CASE_BY_NUMBER, number)
    if row is None:
        raise UnknownCase(number)
    return row


async def _locked(conn: asyncpg.Connection, number: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(queries.CASE_FOR_UPDATE, number)
    if row is None:
        raise UnknownCase(number)
    return row


async def move(pool: asyncpg.Pool, number: str, to: str, caller: Caller) -> asyncpg.Record:
    """Move the case to status ``to``: 409 (:class:`Conflict` with ``allowed``) unless :data:`MOVES` allows it."""
    async with pool.acquire() as conn, conn.transaction():
        old = await _locked(conn, number)
        allowed = MOVES[old["status"]]
        if to not in allowed:
            raise Conflict(
                f"a {old['status']} case cannot move to {to}; it can move to {', '.join(allowed)}",
                current=old["status"],
                allowed=list(allowed),
            )
        new = await conn.fetchrow(queries.SET_STATUS, old["id"], to)
        await conn.execute(queries.INSERT_EVENT, old["id"], old["person_id"], "status", old["status"], to,
                           caller.actor)  # fmt: skip
        await domain_events.case_changed(conn, "case.updated", new, {"from": old["status"]})
        await audit.record(conn, caller, "update", "cases", number, audit.diff(old, new, ("status",)))
    return await get_case(pool, number)


async def change(pool: asyncpg.Pool, number: str, body: Mapping[str, Any], caller: Caller) -> asyncpg.Record:
    """Change a case's priority and/or assignee (``assignee_id`` null: nobody)."""
    assignee = _uuid_or_none(body.get("assignee_id"), "assignee_id")
    async with pool.acquire() as conn, conn.transaction():
        old = await _locked(conn, number)
        if assignee is not None and not await conn.fetchval(queries.USER_EXISTS, assignee):
            raise BadRequest(f"assignee_id: no active user with id {assignee}")
        new = await conn.fetchrow(
            queries.SET_FIELDS, old["id"], body.get("priority"), "assignee_id" in body, assignee
        )
        changes = audit.diff(old, new, ("priority", "assignee_id"))
        if "assignee_id" in changes:
            await conn.execute(queries.INSERT_EVENT, old["id"], old["person_id"], "assigned", None, None,
                               caller.actor)  # fmt: skip
        if changes:
            await audit.record(conn, caller, "update", "cases", number, changes)
            await domain_events.case_changed(conn, "case.updated", new, {"changed": sorted(changes)})
    return await get_case(pool, number)


async def comment(pool: asyncpg.Pool, number: str, body: str, public: bool, caller: Caller) -> asyncpg.Record:
    """Add a comment (customer-visible when ``public``, internal otherwise)."""
    async with pool.acquire() as conn, conn.transaction():
        case = await _locked(conn, number)
        row: asyncpg.Record = await conn.fetchrow(
            queries.INSERT_COMMENT, case["id"], caller.user_id, caller.name, body, public
        )
        await conn.execute(queries.INSERT_EVENT, case["id"], case["person_id"], "comment", None, None,
                           caller.actor)  # fmt: skip
        await conn.execute("UPDATE cases SET updated_at = now() WHERE id = $1", case["id"])
        if public:  # the service level counts the first answer the customer sees
            await conn.execute(queries.FIRST_RESPONSE, case["id"])
        await audit.record(conn, caller, "comment", "cases", number, {"public": public, "body": body})
    return row


async def comments(pool: asyncpg.Pool, case_id: uuid.UUID, public_only: bool = False) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(queries.COMMENTS_OF, case_id, public_only)
    return rows


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; every field optional. ``assignee``: a user's id, or "none";
    ``older_than``: opened more than this many days ago (the case's age)."""

    status: str | None = None
    type: str | None = None
    assignee: uuid.UUID | str | None = None
    overdue: bool = False
    person_id: uuid.UUID | None = None
    older_than: int | None = None


def check_filter(status: str | None, type_: str | None) -> None:
    if status and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    if type_ and type_ not in TYPES:
        raise BadRequest(f"type must be one of {', '.join(TYPES)}")


async def find_cases(
    pool: asyncpg.Pool, where: QueueFilter, after: tuple[datetime, str] | None, limit: int
) -> Sequence[asyncpg.Record]:
    """Up to ``limit`` cases matching ``where``, newest first, after the cursor ``(created_at, id)``.

    The SQL names only the conditions in use (not ``$1 IS NULL OR …``), so each filter meets its index instead of
    a generic plan scanning the whole queue."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if where.status:
        conditions.append(f"c.status = {arg(where.status)}")
    if where.type:
        conditions.append(f"c.type = {arg(where.type)}")
    if where.assignee == "none":
        conditions.append("c.assignee_id IS NULL")
    elif where.assignee is not None:
        conditions.append(f"c.assignee_id = {arg(where.assignee)}::uuid")
    if where.overdue:
        conditions.append("c.status IN ('new', 'open', 'waiting') AND c.due_at < now()")
    if where.person_id is not None:
        conditions.append(f"c.person_id = {arg(where.person_id)}")
    if where.older_than is not None:
        conditions.append(f"c.created_at < now() - make_interval(days => {arg(where.older_than)})")
    if after is not None:
        try:
            after_id = uuid.UUID(after[1])
        except ValueError:
            raise BadRequest("invalid cursor") from None
        conditions.append(f"(c.created_at, c.id) < ({arg(after[0])}::timestamptz, {arg(after_id)}::uuid)")
    sql = queries.QUEUE.format(
        columns=queries.CASE_COLUMNS, where=" AND ".join(conditions) or "true", limit=arg(limit)
    )
    rows: list[asyncpg.Record] = await pool.fetch(sql, *args)
    return rows
