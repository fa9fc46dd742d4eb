"""The graph's verdict on each event's identifiers (EnrichedEvent.identity): which ones its person holds, which
it was refused, so that crm-core records only the first (issue 11; architecture.md §4)."""

from __future__ import annotations

import asyncpg
import pytest

from leadline_enricher.identifiers import IdentifierRules
from leadline_enricher.identity import IdentityGraph, Work
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

PHONE = ("phone", "+14155550177")


async def resolve(
    pool: asyncpg.Pool, graph: IdentityGraph, *work: Work
) -> list[tuple[str, dict[str, list[str]]]]:
    async with pool.acquire() as conn, conn.transaction():
        result = await graph.resolve_batch(conn, list(work))
    graph.commit(result)
    return list(zip(result.persons, result.identity, strict=True))


def w(*ids: tuple[str, str], identify: bool = True) -> Work:
    return Work(list(ids), identify=identify, event_id=new_id())


async def test_a_phone_another_person_holds_is_refused_when_the_graph_keeps_them_apart(
    pool: asyncpg.Pool,
) -> None:
    graph = IdentityGraph(IdentifierRules())
    [(ann, verdict)] = await resolve(pool, graph, w(("email", "ann@example.com"), PHONE, ("anon_id", "a1")))
    assert verdict == {"attached": ["email", "phone", "anon_id"], "refused": []}
    [(bob, _)] = await resolve(pool, graph, w(("email", "bob@example.com"), ("anon_id", "b1")))
    [(person, verdict)] = await resolve(
        pool, graph, w(("email", "bob@example.com"), PHONE, ("anon_id", "b1"))
    )
    assert person == bob != ann
    assert verdict == {"attached": ["email", "anon_id"], "refused": ["phone"]}


async def test_a_merge_in_the_same_batch_counts_for_the_earlier_events_and_a_bot_attaches_nothing(
    pool: asyncpg.Pool,
) -> None:
    graph = IdentityGraph(IdentifierRules())
    [(cookie, _)] = await resolve(pool, graph, w(("anon_id", "c1")))
    [(known, _)] = await resolve(pool, graph, w(("email", "cy@example.com")))
    out = await resolve(
        pool,
        graph,
        w(("anon_id", "c1")),
        w(("email", "cy@example.com"), ("anon_id", "c1")),  # the cookie joins the known person
        w(("email", "new@example.com"), ("anon_id", "c1"), identify=False),  # a bot with a new email
    )
    assert [p for p, _ in out] == [cookie, known, known]
    assert out[0][1] == {"attached": ["anon_id"], "refused": []}
    assert out[1][1] == {"attached": ["email", "anon_id"], "refused": []}
    assert out[2][1] == {"attached": ["anon_id"], "refused": ["email"]}
