"""CRM contact ids in the identity graph: a lead a rep typed into crm-core and the person on the website are one.

crm-core announces a rep-entered lead (and a new email or phone on a person) as an ``identify`` event of source
``api`` carrying ``crm_contact_id`` = its person id. The graph must give a person new to it that very id, merge a
CRM person into whoever already holds its email (the rules of architecture.md §4), recognise crm-core's persons
that carry the enricher's own ids, refuse the identifier from anyone but crm-core, keep erased CRM persons
erased, and let go an email or phone crm-core took off its person (``unlink``). Each scenario runs on the batched path and on the locked one-event-at-a-time path replicas fall back to.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from enricher.test_identity import Graph, ev, graph_for
from leadline_enricher.erase import erase_identifier, erase_person
from leadline_enricher.identifiers import IdentifierRules, identifiers_of
from leadline_enricher.identity import IdentityGraph, Work, _Batch, resolve
from leadline_enricher.pipeline import work_for
from leadline_shared import pg
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


def rep(person: str, **ids: str) -> RawEvent:
    """What crm-core writes when a rep enters a lead or adds a contact detail."""
    return RawEvent(
        event_id=new_id(),
        type="identify",
        source="api",
        received_at=utc_now_iso(),
        ids={"crm_contact_id": person, **ids},
    )


class Paths:
    """Resolve through the batched path (the normal one) or the locked slow path (retries, replicas racing)."""

    def __init__(self, g: Graph, slow: bool) -> None:
        self.g = g
        self.slow = slow

    async def one(self, event: RawEvent) -> str:
        if not self.slow:
            return await self.g.one(event)
        work = [Work(identifiers_of(event, self.g.rules), event_id=event.event_id)]
        async with self.g.pool.acquire() as conn, conn.transaction():
            result = await _Batch(self.g.graph, conn, slow_only=True).run(work)
        self.g.graph.commit(result)
        self.g.results.append(result)
        return result.persons[0]


@pytest.fixture(params=["batched", "locked"])
def paths(request: pytest.FixtureRequest, pool: asyncpg.Pool) -> Paths:
    return Paths(graph_for(pool), slow=request.param == "locked")


async def owner(pool: asyncpg.Pool, kind: str, value: str) -> str | None:
    person: str | None = await pool.fetchval(
        "SELECT person_id::text FROM identifiers WHERE type = $1 AND value = $2", kind, value
    )
    return person


async def test_a_rep_entered_lead_keeps_its_crm_id_and_the_later_web_form_joins_it(
    paths: Paths, pool: asyncpg.Pool
) -> None:
    """The bug this fixes: the web form minted a second person and crm-core showed two for one email."""
    crm_id = new_id()
    assert await paths.one(rep(crm_id, email="Lin@Example.com", phone="+44 20 7946 0958")) == crm_id
    assert await owner(pool, "crm_contact_id", crm_id) == crm_id
    assert await owner(pool, "email", "lin@example.com") == crm_id
    assert await paths.one(ev("browser", email="lin@example.com")) == crm_id
    assert await graph_for(pool).one(ev("phone", phone="+442079460958")) == crm_id  # no cache: the same
    assert paths.g.changes("merge") == []
    assert await pool.fetchval("SELECT count(*) FROM persons") == 1


async def test_a_lead_and_the_form_in_one_batch_are_one_person_under_the_crm_id(pool: asyncpg.Pool) -> None:
    g = graph_for(pool)
    crm_id = new_id()
    persons = await g.batch([rep(crm_id, email="one@example.com"), ev("c1", email="one@example.com")])
    assert persons == [crm_id, crm_id]


async def test_a_crm_person_whose_email_the_graph_knows_is_merged_into_that_person(
    paths: Paths, pool: asyncpg.Pool
) -> None:
    """The web form came first (or the rep forced a duplicate): the CRM's person is folded into the one holding
    the email, which survives as the owner of the stronger identifier; crm-core re-points the rep's record."""
    known = await paths.one(ev("c1", email="kim@example.com"))
    crm_id = new_id()
    assert await paths.one(rep(crm_id, email="kim@example.com", phone="+1 415 555 2671")) == known
    [merge] = paths.g.changes("merge")
    assert (merge.person_id, merge.merged) == (known, [crm_id])
    assert await owner(pool, "crm_contact_id", crm_id) == known
    assert await owner(pool, "phone", "+14155552671") == known
    merged_into = await pool.fetchval("SELECT merged_into::text FROM persons WHERE person_id = $1", crm_id)
    assert merged_into == known
    assert (
        await paths.one(rep(crm_id, phone="+1 415 555 0000")) == known
    )  # the rep edits the old record later
    assert len(paths.g.changes("merge")) == 1


async def test_a_crm_person_carrying_the_enrichers_own_id_is_that_person(
    paths: Paths, pool: asyncpg.Pool
) -> None:
    """Most of crm-core's persons were made by ingestion under the enricher's ids: a rep adding an email to one
    extends that person (no new person, no merge), also in a process that never cached it, and after a merge
    the id leads to the survivor."""
    visitor = await paths.one(ev("v1"))
    assert await paths.one(rep(visitor, email="vic@example.com")) == visitor
    assert await owner(pool, "email", "vic@example.com") == visitor
    assert await graph_for(pool).one(rep(visitor, phone="+1 415 555 2671")) == visitor
    assert await pool.fetchval("SELECT count(*) FROM persons") == 1
    assert paths.g.changes("merge") == []

    other = await paths.one(ev("v2"))
    survivor = await paths.one(ev("v2", user_id="u-7"))
    assert survivor == other
    assert await paths.one(ev("v1", user_id="u-7")) == other  # v1's person (email, phone) merges into u-7's
    assert await graph_for(pool).one(rep(visitor, phone="+1 415 555 9999")) == other


def test_crm_contact_ids_must_be_uuids_and_only_crm_core_may_send_them() -> None:
    rules = IdentifierRules.create()
    crm_id = new_id()
    assert identifiers_of(rep(crm_id.upper()), rules) == [("crm_contact_id", crm_id)]
    assert identifiers_of(rep("not-a-uuid"), rules) == []
    assert identifiers_of(rep("00000000-0000-0000-0000-000000000000"), rules) == []
    forged = ev("c1", email="eve@example.com", crm_contact_id=crm_id)  # a browser naming a CRM person
    assert identifiers_of(forged, rules) == [("email", "eve@example.com"), ("anon_id", "c1")]


async def test_an_erased_crm_person_is_not_rebuilt_under_its_id(paths: Paths, pool: asyncpg.Pool) -> None:
    """After erasure crm-core's id, like the email, is a tombstone: naming it again makes nobody under that id."""
    crm_id = new_id()
    assert await paths.one(rep(crm_id, email="gone@example.com")) == crm_id
    visitor = await paths.one(ev("v9"))
    async with pool.acquire() as conn, conn.transaction():
        assert await erase_person(conn, crm_id) is not None
        assert await erase_identifier(conn, "crm_contact_id", visitor, paths.g.rules) is not None
    paths.g.graph.forget({crm_id, visitor})
    again = await paths.one(rep(crm_id, email="gone@example.com"))
    assert again != crm_id
    assert await paths.one(rep(visitor, phone="+1 415 555 2671")) != visitor
    assert await owner(pool, "crm_contact_id", crm_id) is None
    assert await pool.fetchval("SELECT count(*) FROM identifiers WHERE type = 'crm_contact_id'") == 0


async def test_two_replicas_taking_the_same_crm_id_make_one_person(
    pg_dsn: str, schema: str, pool: asyncpg.Pool
) -> None:
    """Replicas racing on one new CRM person (a rebalance): one row under the CRM's id, every event on it."""
    other = await pg.create_pool(pg_dsn, schema, max_size=4)
    rules = IdentifierRules.create()
    crm_id = new_id()

    async def one(p: asyncpg.Pool, i: int) -> str:
        async with p.acquire() as conn, conn.transaction():
            event = rep(crm_id, email=f"r{i}@example.com")
            return await resolve(conn, IdentityGraph(rules), Work(identifiers_of(event, rules)))

    try:
        results = await asyncio.gather(*(one(p, i) for i, p in enumerate((pool, other) * 4)))
    finally:
        await other.close()
    assert set(results) == {crm_id}
    assert await pool.fetchval("SELECT count(*) FROM persons") == 1
    assert await pool.fetchval("SELECT count(DISTINCT person_id) FROM identifiers") == 1


def unlink(person: str, source: str = "api", **ids: str) -> RawEvent:
    """What crm-core writes when a rep takes an email or phone off a person (a typo corrected)."""
    return RawEvent(
        event_id=new_id(),
        type="unlink",
        source=source,
        received_at=utc_now_iso(),
        ids={"crm_contact_id": person, **ids},
    )


async def through(paths: Paths, event: RawEvent) -> str:
    """Resolve ``event`` with the identity work the pipeline makes of it (an unlink's detach list included)."""
    work = [work_for(event, identifiers_of(event, paths.g.rules), True)]
    async with paths.g.pool.acquire() as conn, conn.transaction():
        result = await _Batch(paths.g.graph, conn, slow_only=paths.slow).run(work)
    paths.g.graph.commit(result)
    paths.g.results.append(result)
    return result.persons[0]


async def test_an_email_the_crm_took_off_its_person_is_let_go(paths: Paths, pool: asyncpg.Pool) -> None:
    """A rep corrected a typo'd email. Before, the graph kept the old address on the lead, so when its real owner
    filled a form, their visits were put on the rep's lead. Now the address is let go and announced as unlink."""
    crm_id = new_id()
    assert await through(paths, rep(crm_id, email="jon@acme.example")) == crm_id
    assert await paths.one(ev("browser", email="jon@acme.example")) == crm_id  # now cached in this process
    assert await through(paths, unlink(crm_id, email="Jon@Acme.example")) == crm_id
    assert await owner(pool, "email", "jon@acme.example") is None
    [change] = paths.g.changes("unlink")
    assert change.person_id == crm_id
    assert change.identifier == {"type": "email"}
    row = await pool.fetchrow("SELECT kind, published_at FROM changes WHERE change_id = $1", change.change_id)
    assert row["kind"] == "unlink"
    jon = await paths.one(ev("jons-laptop", email="jon@acme.example"))
    assert jon != crm_id
    assert await owner(pool, "email", "jon@acme.example") == jon


async def test_an_unlink_lets_go_only_what_its_person_holds_and_only_from_crm_core(
    paths: Paths, pool: asyncpg.Pool
) -> None:
    kim = await paths.one(ev("c1", email="kim@example.com"))
    crm_id = new_id()
    assert await through(paths, rep(crm_id, phone="+1 415 555 2671")) == crm_id
    assert await through(paths, unlink(crm_id, email="kim@example.com")) == crm_id  # someone else's email
    assert await owner(pool, "email", "kim@example.com") == kim
    await through(paths, unlink(crm_id, source="beacon", phone="+1 415 555 2671"))  # a browser cannot
    assert await owner(pool, "phone", "+14155552671") == crm_id
    assert paths.g.changes("unlink") == []


async def test_another_replica_that_cached_the_email_lets_it_go_when_it_hears_of_the_unlink(
    pool: asyncpg.Pool,
) -> None:
    """Replica A had cached jon@ → the lead; replica B made the unlink. A follows identity.changes.v1, so the
    next form with jon@ on A does not land on the lead either."""
    a, b = graph_for(pool), graph_for(pool)
    crm_id = new_id()
    paths_a, paths_b = Paths(a, slow=False), Paths(b, slow=False)
    assert await through(paths_a, rep(crm_id, email="jon@acme.example")) == crm_id
    assert await through(paths_b, unlink(crm_id, email="jon@acme.example")) == crm_id
    [change] = b.changes("unlink")
    a.graph.apply(change)  # what A's follower does with the change it reads
    assert await paths_a.one(ev("jons-laptop", email="jon@acme.example")) != crm_id
