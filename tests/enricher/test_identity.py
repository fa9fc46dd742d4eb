"""Identity resolution in the real identity schema: one person behind a visitor's cookies and identifiers.

The scenarios are the rules of architecture.md §4 as a sales rep would state them: a cookie's history joins the
person who later fills a form, a second device with the same email is the same person, two people with
different emails are never merged, junk values and bots identify nobody, erased people stay erased.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from leadline_enricher.app import MIGRATIONS
from leadline_enricher.erase import erase_identifier, erase_person
from leadline_enricher.identifiers import IdentifierRules, identifiers_of
from leadline_enricher.identity import BatchResult, IdentityGraph, Work, resolve
from leadline_shared import pg
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


def ev(anon_id: str | None = None, **ids: str) -> RawEvent:
    return RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        anon_id=anon_id,
        ids=ids,
    )


@dataclass
class Graph:
    """A graph plus everything it reported, for the scenarios' assertions."""

    pool: asyncpg.Pool
    graph: IdentityGraph
    rules: IdentifierRules
    results: list[BatchResult] = field(default_factory=list)

    async def batch(self, events: list[RawEvent], bots: frozenset[int] = frozenset()) -> list[str]:
        work = [
            Work(identifiers_of(e, self.rules), identify=i not in bots, event_id=e.event_id)
            for i, e in enumerate(events)
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            result = await self.graph.resolve_batch(conn, work)
        self.graph.commit(result)
        self.results.append(result)
        return result.persons

    async def one(self, event: RawEvent, bot: bool = False) -> str:
        return (await self.batch([event], frozenset({0}) if bot else frozenset()))[0]

    def changes(self, kind: str) -> list[Any]:
        return [c for r in self.results for c in r.changes if c.kind == kind]

    def skipped(self, kind: str) -> int:
        return sum(r.skipped[kind] for r in self.results)


def graph_for(pool: asyncpg.Pool, blocked: tuple[str, ...] = (), **limits: int) -> Graph:
    rules = IdentifierRules.create(blocked, limits)
    return Graph(pool, IdentityGraph(rules), rules)


@dataclass(frozen=True)
class Step:
    """One event of a scenario: its cookie and identifiers, and whether a bot sent it."""

    anon: str | None = None
    bot: bool = False
    ids: dict[str, str] = field(default_factory=dict)


def step(anon: str | None = None, bot: bool = False, **ids: str) -> Step:
    return Step(anon, bot, ids)


@dataclass(frozen=True)
class Scenario:
    steps: list[Step]
    same: list[tuple[int, ...]] = field(default_factory=list)
    different: list[tuple[int, int]] = field(default_factory=list)
    merges: int = 0
    conflicts: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    blocked: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)


SCENARIOS = {
    "a cookie's visits are one person": Scenario(
        [step("c1"), step("c1"), step("c2")], same=[(0, 1)], different=[(0, 2)]
    ),
    "cross-device: a second cookie with the same email is the same person": Scenario(
        [step("laptop"), step("laptop", email=" Ann@Example.COM "), step("phone", email="ann@example.com"),
         step("phone")],
        same=[(0, 1, 2, 3)],
    ),
    "late identity: an anonymous cookie joins the known person and its history moves with it": Scenario(
        [step("desk", email="bob@example.com"), step("mobile"), step("mobile"),
         step("mobile", email="BOB@example.com"), step("mobile")],
        same=[(0, 3, 4), (1, 2)], different=[(0, 1)], merges=1,
    ),
    "conflicting emails: two known people are never merged, the event stays with the strongest": Scenario(
        [step("c1", email="a@example.com"), step("c2", email="b@example.com", user_id="u-2"),
         step(None, email="a@example.com", user_id="u-2"), step("c1"), step("c2")],
        same=[(0, 3), (1, 2, 4)], different=[(0, 1)], conflicts=1,
    ),
    "another person's email on a known cookie: no merge, the event goes to the email's person": Scenario(
        [step("c1", email="a@example.com"), step("c2", email="b@example.com"), step("c2", email="a@example.com"),
         step("c2")],
        same=[(0, 2), (1, 3)], different=[(0, 1)], conflicts=1,
    ),
    "blocked values never join people": Scenario(
        [step("c1", email="null"), step("c2", email="null"), step("c3", email="test@example.com"),
         step("c4", email="TEST@example.com"), step("undefined"), step("undefined"), step("c5", user_id="0"),
         step("c6", user_id="0")],
        different=[(0, 1), (2, 3), (4, 5), (6, 7)], blocked=("test@example.com",),
    ),
    "phone numbers are compared in E.164": Scenario(
        [step("c1", phone="+1 (415) 555-2671"), step("c2", phone="+14155552671")], same=[(0, 1)]
    ),
    "limits: a person holds one user_id; the second is not attached and counted": Scenario(
        [step("c1", user_id="u1"), step("c1", user_id="u2"), step(None, user_id="u2")],
        same=[(0, 1)], different=[(0, 2)], skipped={"user_id": 1},
    ),
    "limits: past the cookie limit a new cookie is not attached": Scenario(
        [step("c1", email="x@example.com"), step("c2", email="x@example.com"), step("c3", email="x@example.com"),
         step("c3"), step("c2")],
        same=[(0, 1, 2, 4)], different=[(0, 3)], skipped={"anon_id": 1}, limits={"anon_id": 2},
    ),
    "bots and link scanners never identify anyone": Scenario(
        [step("scanner", bot=True, email="eve@example.com"), step(None, email="eve@example.com"),
         step("scanner"), step("human", email="eve@example.com"), step("scanner", bot=True, email="eve@example.com")],
        same=[(0, 2), (1, 3, 4)], different=[(0, 1)],
    ),
}  # fmt: skip


def _event(s: Step) -> RawEvent:
    return ev(s.anon, **s.ids)


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "one-batch"])
async def test_identity_scenarios(pool: asyncpg.Pool, name: str, batched: bool) -> None:
    """Each rule holds whether events arrive in separate batches or all in one."""
    sc = SCENARIOS[name]
    g = graph_for(pool, sc.blocked, **sc.limits)
    events = [_event(s) for s in sc.steps]
    bots = frozenset(i for i, s in enumerate(sc.steps) if s.bot)
    if batched:
        persons = await g.batch(events, bots)
    else:
        persons = [await g.one(e, bot=s.bot) for e, s in zip(events, sc.steps, strict=True)]
    for group in sc.same:
        assert len({persons[i] for i in group}) == 1, f"steps {group} should be one person"
    for a, b in sc.different:
        assert persons[a] != persons[b], f"steps {a} and {b} should be different people"
    assert len(g.changes("merge")) == sc.merges
    assert sum(r.conflicts for r in g.results) == sc.conflicts
    assert await pool.fetchval("SELECT count(*) FROM conflicts") == sc.conflicts
    for kind, n in sc.skipped.items():
        assert g.skipped(kind) == n


async def test_late_identity_merge_names_the_anonymous_person_and_repoints_its_cookie(
    pool: asyncpg.Pool,
) -> None:
    """crm-core re-points touchpoints from each merged person id to the survivor: the change must say so."""
    g = graph_for(pool)
    known = await g.one(ev("desk", email="kim@example.com"))
    anonymous = await g.one(ev("mobile"))
    assert await g.one(ev("mobile", email="kim@example.com")) == known
    [change] = g.changes("merge")
    assert change.person_id == known
    assert change.merged == [anonymous]
    owner = await pool.fetchval("SELECT person_id::text FROM identifiers WHERE value = 'mobile'")
    assert owner == known
    assert (
        await pool.fetchval("SELECT merged_into::text FROM persons WHERE person_id = $1", anonymous) == known
    )
    row = await pool.fetchrow("SELECT kind, published_at FROM changes WHERE change_id = $1", change.change_id)
    assert row["kind"] == "merge"


async def test_a_fresh_process_resolves_like_the_one_that_cached(pool: asyncpg.Pool) -> None:
    """The cache is only a shortcut: a restarted replica (empty cache) finds the same persons in PostgreSQL."""
    g = graph_for(pool)
    first = await g.one(ev("c1", email="lee@example.com"))
    await g.one(ev("c2"))
    await g.one(ev("c2", email="lee@example.com"))
    fresh = graph_for(pool)
    assert await fresh.one(ev("c2")) == first
    assert await fresh.one(ev("c1")) == first


async def test_erased_people_are_never_rebuilt(pool: asyncpg.Pool) -> None:
    """After erasure the cookie and email are tombstones: later events carrying them identify nobody."""
    g = graph_for(pool)
    person = await g.one(ev("c1", email="gone@example.com"))
    await g.one(ev("c2"))
    await g.one(ev("c2", email="gone@example.com"))
    async with pool.acquire() as conn, conn.transaction():
        change = await erase_identifier(conn, "email", "Gone@Example.com", g.rules)
    assert change is not None
    assert change.kind == "erase"
    assert change.person_id == person
    g.graph.forget({person})
    assert await pool.fetchval("SELECT count(*) FROM identifiers") == 0
    later = [await g.one(ev("c1", email="gone@example.com")), await g.one(ev("c1")), await g.one(ev("c2"))]
    assert person not in later
    assert len(set(later)) == 3, "tombstoned identifiers must not tie later events together"
    assert await pool.fetchval("SELECT count(*) FROM identifiers") == 0
    erased = await pool.fetchval("SELECT erased_at IS NOT NULL FROM persons WHERE person_id = $1", person)
    assert erased is True
    async with pool.acquire() as conn, conn.transaction():
        assert await erase_person(conn, new_id()) is None


def test_blocked_and_malformed_values_never_count_as_identifiers() -> None:
    rules = IdentifierRules.create(("test@example.com",))
    found = identifiers_of(
        ev("undefined", email="null", user_id="[object Object]", phone="+1 415 555 2671"), rules
    )
    assert found == [("phone", "+14155552671")]
    assert identifiers_of(ev(None, email="not-an-email", phone="12"), rules) == []
    assert identifiers_of(ev(None, email=" Test@Example.com"), rules) == []


async def test_migrations_are_idempotent(pg_dsn: str, schema: str, pool: asyncpg.Pool) -> None:
    assert await pg.migrate(pg_dsn, schema, MIGRATIONS) == []


async def test_two_replicas_racing_on_a_new_identifier_make_one_person(
    pg_dsn: str, schema: str, pool: asyncpg.Pool
) -> None:
    """Two enricher processes (two pools, two caches) see the same new email at once: one person."""
    other = await pg.create_pool(pg_dsn, schema, max_size=4)
    rules = IdentifierRules.create()
    graphs = [IdentityGraph(rules) for _ in range(10)]

    async def one(p: asyncpg.Pool, g: IdentityGraph, anon: str) -> str:
        async with p.acquire() as conn, conn.transaction():
            return await resolve(conn, g, Work(identifiers_of(ev(anon, email="race@example.com"), rules)))

    try:
        results = await asyncio.gather(
            *(one(p, g, f"c{i}") for i, (p, g) in enumerate(zip((pool, other) * 5, graphs, strict=True)))
        )
    finally:
        await other.close()
    assert len(set(results)) == 1
    owners = await pool.fetchval("SELECT count(DISTINCT person_id) FROM identifiers")
    assert owners == 1


async def test_a_link_change_is_written_to_the_outbox_with_the_graph_change(pool: asyncpg.Pool) -> None:
    """A new email on a known person is announced to crm-core; like a merge, the announcement is written in the
    graph's own transaction, so a crash before its Kafka transaction cannot lose it."""
    g = graph_for(pool)
    person = await g.one(ev("lap"))
    assert await g.one(ev("lap", email="Lee@Example.com")) == person
    [link] = g.changes("link")
    row = await pool.fetchrow(
        "SELECT kind, person_id::text, identifier, published_at FROM changes WHERE change_id = $1",
        link.change_id,
    )
    assert row["kind"] == "link"
    assert row["person_id"] == person
    assert row["identifier"] == {"type": "email"}  # the type only: the topic is kept forever (erasure)
    assert "lee@example.com" not in link.to_json().decode()
    assert row["published_at"] is None  # the pipeline marks it once its Kafka transaction committed


async def test_two_replicas_adding_identifiers_to_one_person_at_once_keep_its_limit(
    pg_dsn: str, schema: str, pool: asyncpg.Pool
) -> None:
    """A person may hold one email here; replicas each attaching a different new email to it at the same moment
    used to pass the limit (each checked the count it had read). Now the person is locked and re-checked first."""
    rules = IdentifierRules.create((), {"email": 1})
    person = await graph_for(pool, email=1).one(ev("shared-cookie"))
    other = await pg.create_pool(pg_dsn, schema, max_size=4)

    async def attach(p: asyncpg.Pool, i: int) -> str:
        graph = IdentityGraph(rules)
        async with p.acquire() as conn, conn.transaction():
            work = Work(identifiers_of(ev("shared-cookie", email=f"new{i}@example.com"), rules))
            return (await graph.resolve_batch(conn, [work])).persons[0]

    try:
        results = await asyncio.gather(*(attach(p, i) for i, p in enumerate((pool, other) * 4)))
    finally:
        await other.close()
    assert set(results) == {person}
    emails = await pool.fetchval("SELECT count(*) FROM identifiers WHERE type = 'email'")
    assert emails == 1
