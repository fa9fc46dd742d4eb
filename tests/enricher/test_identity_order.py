"""Property: who is grouped with whom does not depend on the order in which events arrive.

Hypothesis draws a few real people (cookies on several devices, at most one email and one user_id each) and a
stream of events carrying subsets of one person's identifiers. The stream is resolved in its own order one
event at a time, and again shuffled and cut into random batches, each run with fresh identifier values in the
real PostgreSQL schema. Both runs must group the identifiers into the same persons: exactly the groups of
identifiers that were ever seen together, directly or through a chain of events.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadline_enricher.app import MIGRATIONS
from leadline_enricher.identifiers import Ident, IdentifierRules
from leadline_enricher.identity import IdentityGraph, Work
from leadline_shared import pg

pytestmark = pytest.mark.integration

Partition = frozenset[frozenset[Ident]]


@st.composite
def person(draw: st.DrawFn, index: int) -> list[Ident]:
    ids: list[Ident] = [("anon_id", f"p{index}a{j}") for j in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        ids.append(("email", f"p{index}@example.com"))
    if draw(st.booleans()):
        ids.append(("user_id", f"u{index}"))
    return ids


@st.composite
def stream(draw: st.DrawFn) -> list[list[Ident]]:
    people = [draw(person(i)) for i in range(draw(st.integers(1, 4)))]
    events = []
    for _ in range(draw(st.integers(1, 14))):
        ids = draw(st.sampled_from(people))
        chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
        events.append(chosen)
    return events


def seen_together(events: list[list[Ident]]) -> Partition:
    """The connected groups of identifiers (union-find over the events)."""
    parent: dict[Ident, Ident] = {}

    def find(x: Ident) -> Ident:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ids in events:
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
        find(ids[0])
    groups: dict[Ident, set[Ident]] = {}
    for ident in parent:
        groups.setdefault(find(ident), set()).add(ident)
    return frozenset(frozenset(g) for g in groups.values())


STRENGTH = {"user_id": 0, "email": 1, "anon_id": 2}


def prefixed(ids: list[Ident], prefix: str) -> list[Ident]:
    """The event's identifiers made unique to one run, strongest first as the enricher orders them."""
    ordered = sorted(ids, key=lambda i: STRENGTH[i[0]])
    return [(k, f"{prefix}{v}") for k, v in ordered]


async def resolve_run(dsn: str, schema: str, batches: list[list[list[Ident]]], prefix: str) -> Partition:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    graph = IdentityGraph(IdentifierRules.create())
    try:
        for batch in batches:
            async with conn.transaction():
                result = await graph.resolve_batch(conn, [Work(prefixed(ids, prefix)) for ids in batch])
            graph.commit(result)
        rows = await conn.fetch(
            "SELECT type, value, person_id FROM identifiers WHERE value LIKE $1 || '%'", prefix
        )
    finally:
        await conn.close()
    groups: dict[str, set[Ident]] = {}
    for kind, value, person_id in rows:
        groups.setdefault(str(person_id), set()).add((kind, value.removeprefix(prefix)))
    return frozenset(frozenset(g) for g in groups.values())


def cut(items: list[list[Ident]], sizes: list[int]) -> list[list[list[Ident]]]:
    out, i = [], 0
    for size in sizes:
        if i >= len(items):
            break
        out.append(items[i : i + size])
        i += size
    if i < len(items):
        out.append(items[i:])
    return out


@pytest.fixture
def migrated(pg_dsn: str, schema: str) -> tuple[str, str]:
    pg.migrate_sync(pg_dsn, schema, MIGRATIONS)
    return pg_dsn, schema


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_grouping_of_identifiers_into_persons_does_not_depend_on_arrival_order(
    migrated: tuple[str, str], data: st.DataObject
) -> None:
    dsn, schema = migrated
    events = data.draw(stream())
    order = data.draw(st.permutations(range(len(events))))
    sizes = data.draw(st.lists(st.integers(1, 6), max_size=len(events)))
    shuffled = [events[i] for i in order]

    in_order = asyncio.run(resolve_run(dsn, schema, [[e] for e in events], f"{uuid.uuid4().hex[:8]}-"))
    reordered = asyncio.run(resolve_run(dsn, schema, cut(shuffled, sizes), f"{uuid.uuid4().hex[:8]}-"))
    expected = seen_together(events)
    assert in_order == expected
    assert reordered == expected
