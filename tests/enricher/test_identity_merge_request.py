"""Conflicts a rep can see, and the merge a rep confirms (issue 12).

The graph never merges two persons that each hold an email on its own (architecture.md §4); it records a
conflict. crm-core shows those conflicts only if the graph tells it: every event that hits the rule is announced
as a ``conflict`` change (the two persons and the identifier's type, never its value), through the changes
outbox like merges. When a rep confirms the two are one person, crm-core's ``merge`` request makes the graph
merge them regardless of the conflict rule: identifiers move to the survivor, the usual ``merge`` change (naming
the request) goes out, the conflict is resolved, and the next event with either email lands on the survivor.
"""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from enricher.test_identity import Graph, ev, graph_for
from leadline_enricher.app import create_app
from leadline_enricher.erase import erase_person
from leadline_enricher.identifiers import identifiers_of
from leadline_enricher.identity import Work, _Batch
from leadline_enricher.pipeline import work_for
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from leadline_shared.events import IdentityChange, RawEvent, merge_request
from leadline_shared.ids import new_id
from support import read_topic

pytestmark = pytest.mark.integration


async def run(g: Graph, event: RawEvent) -> str:
    """Resolve one event the way the pipeline does (work_for reads crm-core's merge request)."""
    work = [work_for(event, identifiers_of(event, g.rules), True)]
    async with g.pool.acquire() as conn, conn.transaction():
        result = await g.graph.resolve_batch(conn, work)
    g.graph.commit(result)
    g.results.append(result)
    return result.persons[0]


async def two_persons_in_conflict(g: Graph) -> tuple[str, str, RawEvent]:
    ann = await g.one(ev("v-ann", email="ann@example.com"))
    bob = await g.one(ev("v-bob", email="bob@example.com"))
    clash = ev("v-ann", email="bob@example.com")  # Ann's browser, Bob's email: never merged automatically
    assert await g.one(clash) == bob
    return ann, bob, clash


async def test_every_conflicting_event_is_announced_without_the_value(pool: asyncpg.Pool) -> None:
    """crm-core learns of the conflict from identity.changes.v1; the change is in the outbox (published again
    after a crash) and holds the persons, the type and the event, not the email."""
    g = graph_for(pool)
    ann, bob, clash = await two_persons_in_conflict(g)
    [change] = g.changes("conflict")
    assert (change.person_id, change.other, change.identifier, change.event_id) == (
        bob,
        ann,
        {"type": "email"},
        clash.event_id,
    )
    assert IdentityChange.from_json(change.to_json()) == change
    assert b"@example.com" not in change.to_json()
    row = await pool.fetchrow(
        "SELECT person_id::text, other::text, identifier, event_id FROM changes WHERE kind = 'conflict'"
    )
    assert tuple(row) == (bob, ann, {"type": "email"}, clash.event_id)
    again = ev("v-ann", email="bob@example.com")
    await g.one(again)
    assert [c.event_id for c in g.changes("conflict")] == [clash.event_id, again.event_id]
    assert await pool.fetchval("SELECT seen FROM conflicts") == 2


async def test_the_locked_path_announces_conflicts_too(pool: asyncpg.Pool) -> None:
    """Replicas fall back to resolving one event at a time under row locks; a conflict found there is announced
    like one found in a batch."""
    g = graph_for(pool)
    ann = await g.one(ev("v-ann", email="ann@example.com"))
    bob = await g.one(ev("v-bob", email="bob@example.com"))
    clash = ev("v-ann", email="bob@example.com")
    async with pool.acquire() as conn, conn.transaction():
        result = await _Batch(g.graph, conn, slow_only=True).run(
            [Work(identifiers_of(clash, g.rules), event_id=clash.event_id)]
        )
    assert result.persons == [bob]
    [change] = [c for c in result.changes if c.kind == "conflict"]
    assert (change.person_id, change.other, change.event_id) == (bob, ann, clash.event_id)
    assert await pool.fetchval("SELECT count(*) FROM changes WHERE kind = 'conflict'") == 1


@pytest.mark.parametrize("survivor_is", ["ann", "bob"])
async def test_a_merge_request_merges_two_persons_in_conflict(pool: asyncpg.Pool, survivor_is: str) -> None:
    g = graph_for(pool)
    ann, bob, _ = await two_persons_in_conflict(g)
    survivor, other = (ann, bob) if survivor_is == "ann" else (bob, ann)
    request = merge_request(survivor, [other], new_id())
    assert await run(g, request) == survivor
    [merge] = g.changes("merge")
    assert (merge.person_id, merge.merged, merge.event_id) == (survivor, [other], request.event_id)
    owners = await pool.fetch("SELECT DISTINCT person_id::text FROM identifiers")
    assert [r[0] for r in owners] == [survivor]  # both emails and both cookies
    assert await pool.fetchval("SELECT resolution FROM conflicts") == "merged"
    assert await pool.fetchval("SELECT event_id FROM changes WHERE kind = 'merge'") == request.event_id
    assert await g.one(ev("v-new", email="ann@example.com")) == survivor
    assert await g.one(ev("v-bob", email="bob@example.com")) == survivor  # no more conflict
    assert len(g.changes("conflict")) == 1


async def test_a_merge_request_follows_earlier_merges_and_leaves_erased_persons_alone(
    pool: asyncpg.Pool,
) -> None:
    """A person merged away since the rep looked is followed to its survivor; an erased one is never brought
    back; a request naming the survivor twice changes nothing."""
    g = graph_for(pool)
    ann, bob, _ = await two_persons_in_conflict(g)
    cookie = await g.one(ev("v-carl"))
    carl = await g.one(ev("v-carl", email="carl@example.com"))  # the cookie joined Carl: merged away
    assert cookie == carl
    assert await run(g, merge_request(ann, [bob], new_id())) == ann
    assert await run(g, merge_request(bob, [ann], new_id())) == ann  # bob is ann now: nothing left to merge
    assert len(g.changes("merge")) == 1
    async with pool.acquire() as conn, conn.transaction():
        assert await erase_person(conn, carl) is not None
    assert await run(g, merge_request(ann, [carl], new_id())) == ann
    assert len(g.changes("merge")) == 1
    assert await pool.fetchval("SELECT count(*) FROM identifiers WHERE person_id = $1", carl) == 0


async def test_a_merge_request_from_a_browser_is_not_obeyed(pool: asyncpg.Pool) -> None:
    """Only crm-core (source api) may ask: a collector event cannot merge people."""
    g = graph_for(pool)
    ann, bob, _ = await two_persons_in_conflict(g)
    forged = merge_request(ann, [bob], new_id())
    forged.source = "beacon"
    await run(g, forged)
    assert g.changes("merge") == []


async def test_conflicts_and_a_reps_merge_whose_kafka_transaction_was_lost_are_published_at_the_next_start(
    pool: asyncpg.Pool, kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics
) -> None:
    """The graph committed a conflict and a rep's merge, then the process died before its Kafka transaction: the
    next enricher to start publishes both from the outbox, with the other person and the events they name."""
    g = graph_for(pool)
    ann, bob, clash = await two_persons_in_conflict(g)
    request = merge_request(ann, [bob], new_id())
    await run(g, request)
    settings = config.load(
        EnricherSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
            "LEADLINE_PG_DSN": pg_dsn,
            "LEADLINE_IDENTITY_SCHEMA": schema,
            "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
            "LEADLINE_INSTANCE_ID": "test",
        },
    )
    async with TestClient(TestServer(create_app(settings))):
        records = await read_topic(kafka_bootstrap, topics.identity_changes, 2)
    changes = {c.kind: c for c in (IdentityChange.from_json(v) for _, v, _ in records)}
    assert changes["conflict"] == g.changes("conflict")[0]
    assert (changes["conflict"].other, changes["conflict"].event_id) == (ann, clash.event_id)
    assert (changes["merge"].person_id, changes["merge"].merged, changes["merge"].event_id) == (
        ann,
        [bob],
        request.event_id,
    )
