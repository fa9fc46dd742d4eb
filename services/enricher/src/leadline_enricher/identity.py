"""Identity resolution: which person is behind an event's identifiers (ARCHITECTURE.md §4).

The skeleton's rule: an event joins the person that already owns one of its identifiers, preferring the
strongest kind (user_id, email, phone, recipient_token, then the cookie); otherwise a new person is created.
Identifiers the person does not own yet are attached to it. Creation relies on the primary key of
``identifiers`` (insert, then read back the owner) so two replicas never make two persons for one identifier.
"""

from __future__ import annotations

import asyncpg

from leadline_shared.events import IDENTIFIER_TYPES, RawEvent
from leadline_shared.ids import new_id

STRENGTH = (*IDENTIFIER_TYPES, "anon_id")
BLOCKED = frozenset({"", "null", "undefined", "anonymous", "none", "0", "-1", "[object object]"})


def identifiers_of(event: RawEvent) -> list[tuple[str, str]]:
    """The event's usable identifiers, strongest first; blocked values never count."""
    found: list[tuple[str, str]] = []
    for kind in STRENGTH:
        raw = event.anon_id if kind == "anon_id" else event.ids.get(kind)
        if raw is None:
            continue
        value = raw.strip().lower() if kind == "email" else raw.strip()
        if value.lower() not in BLOCKED:
            found.append((kind, value))
    return found


async def resolve(conn: asyncpg.Connection, event: RawEvent) -> str:
    """The person id for ``event``, creating or extending a person as needed."""
    ids = identifiers_of(event)
    if not ids:
        return new_id()  # nothing to tie it to: a person of its own, never joined by anything later
    owner = await _strongest_owner(conn, ids)
    if owner is None:
        candidate = new_id()
        await conn.execute("INSERT INTO persons (person_id) VALUES ($1)", candidate)
        owner = await _claim(conn, ids[0], candidate)
    for ident in ids:
        await _claim(conn, ident, owner)
    return owner


async def _strongest_owner(conn: asyncpg.Connection, ids: list[tuple[str, str]]) -> str | None:
    rows = await conn.fetch(
        "SELECT i.type, i.person_id::text FROM identifiers i"
        " JOIN unnest($1::text[], $2::text[]) AS q(type, value) ON i.type = q.type AND i.value = q.value",
        [t for t, _ in ids],
        [v for _, v in ids],
    )
    owners = {row[0]: row[1] for row in rows}
    for kind, _ in ids:
        if kind in owners:
            return str(owners[kind])
    return None


async def _claim(conn: asyncpg.Connection, ident: tuple[str, str], person_id: str) -> str:
    """Attach ``ident`` to ``person_id`` unless someone owns it already; returns the owner."""
    for _ in range(5):
        owner: str | None = await conn.fetchval(
            "WITH ins AS (INSERT INTO identifiers (type, value, person_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (type, value) DO NOTHING RETURNING person_id)"
            " SELECT person_id::text FROM ins UNION ALL"
            " SELECT person_id::text FROM identifiers WHERE type = $1 AND value = $2 LIMIT 1",
            ident[0],
            ident[1],
            person_id,
        )
        if owner is not None:
            return owner
        # A concurrent insert committed after this statement's snapshot: read again with a fresh one.
    raise RuntimeError(f"could not claim identifier of type {ident[0]}")
