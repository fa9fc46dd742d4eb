"""Who works a new lead: companies by email domain, and assignment rules giving an owner (issue 15).

:func:`new_leads` runs where persons become leads, in the transaction that makes them: a rep's lead entry
(people/persons.py ``enter_lead``) and every automatic stage move out of ``anonymous`` (stages.py
``apply_moves``, which ingestion, identity changes and rep records share) and a CSV import's chunk
(imports/load.py). It costs nothing for the moves that are not new leads, and a handful of statements per batch
of new leads whatever its size (the rules, the unowned leads, the teams' members, their turns, the owners, the
audit entries, the events).

Rules are read in position order; the first whose conditions hold (country, the form that made the lead; an empty
condition always holds) gives the lead to its user, or to its team's next member. A team's turn is a counter in
PostgreSQL taken with ``UPDATE … RETURNING`` under the team row's lock, so round robin stays fair across restarts
and across replicas (two app instances take turns one after the other). Every owner given is in the audit log
(action ``assign``, with the rule's name).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import asyncpg

from leadline_crm.automation import events as domain_events
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


Given = tuple[uuid.UUID, uuid.UUID, str]
"""A lead, the owner the rules give it, and the rule's name."""


async def assign(
    conn: asyncpg.Connection, persons: list[uuid.UUID], caller: Caller
) -> dict[uuid.UUID, uuid.UUID]:
    """Apply the active rules to those of ``persons`` without an owner; returns who got whom.

    Set-based, so a batch of leads costs a handful of statements, not a few round trips per lead (:func:`choose`),
    then one UPDATE sets the owners, one INSERT audits them and one announces them."""
    rules = await conn.fetch(queries.ACTIVE_RULES)
    if not rules:
        return {}
    leads = await conn.fetch(queries.UNOWNED_LEADS, persons, any(r["form_key"] for r in rules))
    chosen = await _choose(conn, rules, leads)
    if not chosen:
        return {}
    rows = await conn.fetch(queries.SET_OWNERS, [p for p, _, _ in chosen], [o for _, o, _ in chosen])
    given: dict[uuid.UUID, uuid.UUID] = {r["person_id"]: r["owner_id"] for r in rows}
    done = [g for g in chosen if g[0] in given]
    await record(conn, done, caller)
    await domain_events.emit_listened(conn, [
        domain_events.NewEvent("lead.assigned", f"assign:{p}:{uuid.uuid4().hex}", p, None, {"owner_id": str(o)})
        for p, o, _ in done
    ])  # fmt: skip
    return given


async def choose(conn: asyncpg.Connection, leads: Sequence[Mapping[str, Any]]) -> list[Given]:
    """The owners the active rules give ``leads`` (``person_id``, ``country``, ``form_key``) that are not written
    yet (an import's new persons, which are then inserted with their owner instead of updated after), the teams'
    turns taken in the caller's transaction. The caller writes the owners and :func:`record`s them."""
    if not leads:
        return []
    rules = await conn.fetch(queries.ACTIVE_RULES)
    return await _choose(conn, rules, sorted(leads, key=lambda lead: lead["person_id"])) if rules else []


async def record(conn: asyncpg.Connection, given: Sequence[Given], caller: Caller) -> None:
    """One audit entry (``assign``, the owner and the rule's name) per owner given, in one INSERT."""
    if given:
        await conn.execute(
            queries.AUDIT_ASSIGNED, caller.actor, caller.user_id, caller.via, [p for p, _, _ in given],
            [o for _, o, _ in given], [r for _, _, r in given],
        )  # fmt: skip


async def _choose(
    conn: asyncpg.Connection, rules: Sequence[asyncpg.Record], leads: Sequence[Mapping[str, Any]]
) -> list[Given]:
    """Each lead's first matching rule chosen in Python (rules are few), each team's turns for the whole batch taken
    with one ``UPDATE … RETURNING``: leads in the order given (person id) get consecutive turns, as one at a time
    would give them."""
    if not leads:
        return []
    members = await _members(conn, {r["team_id"] for r in rules if r["team_id"]})
    chosen = [(lead["person_id"], rule) for lead in leads if (rule := _rule_for(lead, rules, members))]
    turns = await _take_turns(conn, Counter(r["team_id"] for _, r in chosen if not r["user_id"]))
    out: list[Given] = []
    for person, rule in chosen:
        if rule["user_id"]:
            out.append((person, rule["user_id"], rule["name"]))
        else:
            team = members[rule["team_id"]]
            out.append((person, team[turns[rule["team_id"]] % len(team)], rule["name"]))
            turns[rule["team_id"]] += 1
    return out


def _rule_for(
    lead: Mapping[str, Any], rules: Sequence[asyncpg.Record], members: dict[uuid.UUID, list[uuid.UUID]]
) -> asyncpg.Record | None:
    """The first rule whose conditions hold for ``lead`` and that has somebody to give it to (a team without
    active members passes the lead on to the next rule)."""
    for rule in rules:
        if rule["country"] and (lead["country"] or "").upper() != rule["country"].upper():
            continue
        if rule["form_key"] and lead["form_key"] != rule["form_key"]:
            continue
        if rule["user_id"] or members.get(rule["team_id"]):
            return rule
    return None


async def _members(conn: asyncpg.Connection, teams: set[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each team's active members in turn order (teams without any are left out)."""
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    if teams:
        for r in await conn.fetch(queries.TEAMS_MEMBERS, list(teams)):
            out.setdefault(r["team_id"], []).append(r["user_id"])
    return out


async def _take_turns(conn: asyncpg.Connection, wanted: Counter[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Take ``wanted[team]`` turns of each team in the caller's transaction; each team's first turn (a lead rolled
    back gives its turns back)."""
    if not wanted:
        return {}
    teams = sorted(wanted)
    if len(teams) > 1:
        await conn.execute(queries.LOCK_TEAMS, teams)
    rows = await conn.fetch(queries.TAKE_TURNS, teams, [wanted[t] for t in teams])
    return {r["id"]: r["first"] for r in rows}


async def next_member(conn: asyncpg.Connection, team: uuid.UUID) -> uuid.UUID | None:
    """The member whose turn it is; the turn is taken in the caller's transaction, so a lead rolled back gives its
    turn back."""
    members = [r["user_id"] for r in await conn.fetch(queries.TEAM_MEMBERS, team)]
    if not members:
        return None
    turn = await conn.fetchval(queries.TAKE_TURN, team)
    member: uuid.UUID = members[turn % len(members)]
    return member
