"""Who works a new lead: companies by email domain, and assignment rules giving an owner (issue 15).

:func:`new_leads` runs where persons become leads, in the transaction that makes them: a rep's lead entry
(people/persons.py ``enter_lead``) and every automatic stage move out of ``anonymous`` (stages.py
``apply_moves``, which ingestion, identity changes and rep records share). It costs nothing for the moves that
are not new leads, and two small reads (the rules, the unowned leads) for those that are.

Rules are read in position order; the first whose conditions hold (country, the form that made the lead; an empty
condition always holds) gives the lead to its user, or to its team's next member. A team's turn is a counter in
PostgreSQL taken with ``UPDATE … RETURNING`` under the team row's lock, so round robin stays fair across restarts
and across replicas (two app instances take turns one after the other). Every owner given is in the audit log
(action ``assign``, with the rule's name).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from importlib import resources

import asyncpg

from leadline_crm.automation import events as domain_events
from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.sales import queries

#: How the audit log names assignment done by rules on behalf of ingestion.
RULES = Caller("assignment rules", "admin", via="cli")


@cache
def free_mail_domains() -> frozenset[str]:
    """The vendored list of free-mail domains (free_email_domains.txt names its source and licence)."""
    text = resources.files("leadline_crm.sales").joinpath("free_email_domains.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


async def new_leads(
    conn: asyncpg.Connection, persons: Sequence[uuid.UUID | str], caller: Caller | None
) -> None:
    """Link ``persons`` (who just became leads) to their email domain's company, then give each one still without
    an owner the owner the rules say, in the caller's transaction."""
    if not persons:
        return
    ids = [uuid.UUID(str(p)) for p in persons]
    await conn.execute(queries.LINK_NEW_LEADS, ids)
    await assign(conn, ids, caller or RULES)


async def assign(
    conn: asyncpg.Connection, persons: list[uuid.UUID], caller: Caller
) -> dict[uuid.UUID, uuid.UUID]:
    """Apply the active rules to those of ``persons`` without an owner; returns who got whom."""
    rules = await conn.fetch(queries.ACTIVE_RULES)
    if not rules:
        return {}
    wants_form = any(r["form_key"] for r in rules)
    given: dict[uuid.UUID, uuid.UUID] = {}
    for lead in await conn.fetch(queries.UNOWNED_LEADS, persons, wants_form):
        for rule in rules:
            if rule["country"] and (lead["country"] or "").upper() != rule["country"].upper():
                continue
            if rule["form_key"] and lead["form_key"] != rule["form_key"]:
                continue
            owner = rule["user_id"] or await next_member(conn, rule["team_id"])
            if owner is None:
                continue  # a team without active members: the next rule may still apply
            if await conn.execute(queries.SET_OWNER, lead["person_id"], owner) == "UPDATE 1":
                given[lead["person_id"]] = owner
                await domain_events.lead_assigned(conn, lead["person_id"], owner)
                await audit.record(
                    conn, caller, "assign", "persons", lead["person_id"],
                    {"owner_id": [None, str(owner)], "rule": rule["name"]},
                )  # fmt: skip
            break
    return given


async def next_member(conn: asyncpg.Connection, team: uuid.UUID) -> uuid.UUID | None:
    """The member whose turn it is; the turn is taken in the caller's transaction, so a lead rolled back gives its
    turn back."""
    members = [r["user_id"] for r in await conn.fetch(queries.TEAM_MEMBERS, team)]
    if not members:
        return None
    turn = await conn.fetchval(queries.TAKE_TURN, team)
    member: uuid.UUID = members[turn % len(members)]
    return member
