"""The sales records behind the generic CRUD routes: companies, tasks, teams, team members and assignment rules.

A company with a domain takes in the known persons whose email is at that domain (not those a rep linked
elsewhere by hand), in the write's transaction; a changed domain lets go of the persons the old one brought.
Free-mail domains (gmail.com…) cannot be a company's domain: they would link strangers.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from leadline_crm.http.auth import ADMIN, READ_ROLES, REPS, SALES, Caller
from leadline_crm.http.crud import Column, Resource, Row
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.openapi import Param
from leadline_crm.http.schemas import DATETIME, NAME, TEXT, UUID_S
from leadline_crm.sales import queries
from leadline_crm.sales.assignment import free_mail_domains

SHORT: dict[str, Any] = {"type": "string", "maxLength": 100}
DOMAIN: dict[str, Any] = {
    "type": "string",
    "pattern": "^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$",
    "maxLength": 253,
    "description": "the email domain whose people work here, e.g. acme.com (not a free-mail domain)",
}


async def _company_defaults(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    if values.get("domain"):
        values["domain"] = values["domain"].lower()
        if values["domain"] in free_mail_domains():
            raise BadRequest(
                f"domain: {values['domain']} is a free-mail domain; people there are not one company"
            )
    if "owner_id" not in values and caller.user_id is not None and caller.role == "sales":
        values["owner_id"] = caller.user_id


async def _link_domain(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    """Take in the persons of the company's domain, and let go of those an old domain brought."""
    await conn.execute(queries.UNLINK_STALE, row["id"], row["domain"])
    if row["domain"]:
        await conn.execute(queries.LINK_BY_DOMAIN, row["id"], row["domain"])


async def _domain_lower(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    if row["domain"] and row["domain"] != row["domain"].lower():
        raise BadRequest("domain: write it in lower case")
    if row["domain"] in free_mail_domains():
        raise BadRequest(f"domain: {row['domain']} is a free-mail domain; people there are not one company")
    await _link_domain(conn, row, caller)


async def _task_owner(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    """A task is the calling rep's unless another owner is named."""
    if "owner_id" not in values and caller.user_id is not None:
        values["owner_id"] = caller.user_id


def _task_links(row: Row) -> None:
    if row["person_id"] is None and row["company_id"] is None and row["deal_id"] is None:
        raise BadRequest("give a person_id, company_id or deal_id: a task is about someone or something")


COMPANIES = Resource(
    "companies",
    "company",
    "companies",
    "id",
    (
        Column("name", NAME, required=True),
        Column("domain", DOMAIN, nullable=True),
        Column("industry", SHORT, nullable=True),
        Column("size", {"type": "string", "maxLength": 50}, nullable=True),
        Column("country", SHORT, nullable=True),
        Column("owner_id", UUID_S, cast="uuid", nullable=True),
    ),
    READ_ROLES,
    REPS,
    filters=(Param("domain", "query", {"type": "string"}, "the company with this domain"),),
    prepare=_company_defaults,
    after_create=_link_domain,
    after_update=_domain_lower,
)

TASKS = Resource(
    "tasks",
    "task",
    "tasks",
    "id",
    (
        Column("title", NAME, required=True),
        Column("notes", TEXT, nullable=True),
        Column("due_at", DATETIME, required=True, cast="timestamptz"),
        Column(
            "snoozed_until",
            {**DATETIME, "description": "hidden from overdue lists until then"},
            cast="timestamptz",
            nullable=True,
        ),
        Column("owner_id", UUID_S, cast="uuid", nullable=True),
        Column("person_id", UUID_S, cast="uuid", nullable=True),
        Column("company_id", UUID_S, cast="uuid", nullable=True),
        Column("deal_id", UUID_S, cast="uuid", nullable=True),
        Column(
            "done_at",
            {**DATETIME, "description": "when it was done; null reopens it"},
            cast="timestamptz",
            nullable=True,
        ),
    ),
    READ_ROLES,
    REPS,
    filters=(
        Param("owner_id", "query", UUID_S, "only this rep's tasks"),
        Param("person_id", "query", UUID_S, "only tasks about this person"),
        Param("deal_id", "query", UUID_S, "only tasks about this deal"),
    ),
    prepare=_task_owner,
    check=_task_links,
)

TEAMS = Resource(
    "teams",
    "team",
    "teams",
    "id",
    (Column("name", {"type": "string", "minLength": 1, "maxLength": 100}, required=True),),
    READ_ROLES,
    ADMIN | SALES,
)

TEAM_MEMBERS = Resource(
    "team_members",
    "team member",
    "team_members",
    "id",
    (
        Column("team_id", UUID_S, required=True, cast="uuid"),
        Column("user_id", UUID_S, required=True, cast="uuid"),
    ),
    READ_ROLES,
    ADMIN,
    filters=(Param("team_id", "query", UUID_S, "this team's members"),),
    ops=frozenset({"list", "create", "get", "delete"}),
)

ASSIGNMENT_RULES = Resource(
    "assignment_rules",
    "assignment rule",
    "assignment_rules",
    "id",
    (
        Column("name", {"type": "string", "minLength": 1, "maxLength": 100}, required=True),
        Column("position", {"type": "integer", "minimum": 0, "maximum": 100000}, cast="integer"),
        Column("country", {**SHORT, "description": "only leads from this country"}, nullable=True),
        Column("form_key", {**SHORT, "description": "only leads made by this form"}, nullable=True),
        Column(
            "team_id", {**UUID_S, "description": "round robin within this team"}, cast="uuid", nullable=True
        ),
        Column("user_id", {**UUID_S, "description": "or this rep"}, cast="uuid", nullable=True),
        Column("active", {"type": "boolean"}, cast="boolean"),
    ),
    READ_ROLES,
    ADMIN,
)

RESOURCES = (COMPANIES, TASKS, TEAMS, TEAM_MEMBERS, ASSIGNMENT_RULES)
