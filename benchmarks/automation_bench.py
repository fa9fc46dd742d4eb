"""Workflow rules with 100 active rules over a stream of domain events (issue 16: >= 10,000 events/s).

One schema gets 10,000 persons (a tenth in Germany, some with companies) and 100 enabled rules of the kinds a
workspace has: score thresholds with a country condition, form rules, custom-event rules, stage rules, each
tagging the person. 20,000 domain events are written as the API and ingestion write them (events.emit) — half
score changes, a quarter form submissions, the rest custom events and stage moves.

Measured:
- evaluation: the rules' decision step (rules.decide: trigger match, self-trigger check, compiled conditions) over
  the events read back from PostgreSQL, with the persons' facts read once, events/s;
- end to end: the automation loop (runner.Runner with the rules' handler) draining the 20,000 rows — read, the
  persons' facts, runs recorded, actions done, rows deleted, committed — events/s;
- baseline, in the same run: the same loop over the same events with no rules (reading and deleting only).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import asyncpg

from leadline_crm.app import MIGRATIONS
from leadline_crm.automation import events, rules
from leadline_crm.automation.runner import Runner
from leadline_shared import pg

PERSONS = 10_000
EVENTS = 20_000
RULES = 100
TARGET = 10_000


def rule_rows(rng: random.Random) -> list[tuple[Any, ...]]:
    """(name, trigger, params, conditions, actions) of the 100 rules."""
    out = []
    for i in range(RULES):
        tag = [{"type": "add_tag", "tag": f"r{i}"}]
        kind = i % 10
        if kind < 6:
            cond = [
                {"field": "country", "op": "eq", "value": "DE"},
                {"field": "score", "op": "gte", "value": 20},
            ]
            out.append((f"score {i}", "score.changed", {"threshold": rng.randint(10, 100)}, cond, tag))
        elif kind < 8:
            cond = [{"field": "stage", "op": "in", "value": ["lead", "prospect"]}]
            out.append((f"form {i}", "form.submitted", {"form": f"form-{i}"}, cond, tag))
        elif kind == 8:
            cond = [{"field": "attributes.plan", "op": "eq", "value": "pro"}]
            out.append((f"custom {i}", "event.custom", {"name": f"event-{i}"}, cond, tag))
        else:
            cond = [{"field": "email_domain", "op": "contains", "value": "acme"}]
            stage = ("lead", "prospect", "customer", "lost")[i // 10 % 4]
            out.append((f"stage {i}", "person.stage_changed", {"stage": stage}, cond, tag))
    return out


def stream(rng: random.Random, persons: list[uuid.UUID], step: float) -> list[events.NewEvent]:
    """The domain events: half score changes (by up to ``step`` points), a quarter forms, the rest custom events
    and stage moves."""
    out = []
    for n in range(EVENTS):
        p, roll = rng.choice(persons), rng.random()
        if roll < 0.5:
            old = rng.uniform(0, 90)
            out.append(
                events.NewEvent(
                    "score.changed", f"e{n}", p, None, {"old": old, "new": old + rng.uniform(1, step)}
                )
            )
        elif roll < 0.75:
            form = f"form-{rng.randrange(100)}"
            out.append(events.NewEvent("form.submitted", f"e{n}", p, form, {"form": form}))
        elif roll < 0.9:
            name = f"event-{rng.randrange(100)}"
            out.append(events.NewEvent("event.custom", f"e{n}", p, name, {"name": name}))
        else:
            out.append(
                events.NewEvent("person.stage_changed", f"e{n}", p, None, {"from": "lead", "to": "prospect"})
            )
    return out


SEED = [
    """INSERT INTO persons (person_id, first_seen, last_seen, emails, country, stage, score, attributes)
       SELECT gen_random_uuid(), now(), now(), ARRAY['p' || i || CASE WHEN i % 3 = 0 THEN '@acme.example'
                                                             ELSE '@other.example' END],
              CASE WHEN i % 10 = 0 THEN 'DE' ELSE 'FR' END, (ARRAY['lead', 'prospect', 'anonymous'])[1 + i % 3],
              i % 100, CASE WHEN i % 4 = 0 THEN '{"plan": "pro"}'::jsonb ELSE '{}'::jsonb END
         FROM generate_series(1, $1::int) AS i""",
]


async def seed(
    conn: asyncpg.Connection, with_rules: bool, rng: random.Random, step: float
) -> list[events.NewEvent]:
    """Persons, rules (or none) and the domain events, written; returns the events."""
    await conn.execute(SEED[0], PERSONS)
    if with_rules:
        for name, trigger, params, conds, acts in rule_rows(rng):
            await conn.execute(
                "INSERT INTO workflow_rules (name, enabled, trigger_type, trigger_params, conditions, actions)"
                " VALUES ($1, true, $2, $3::jsonb, $4::jsonb, $5::jsonb)",
                name, trigger, json.dumps(params), json.dumps(conds), json.dumps(acts),
            )  # fmt: skip
    persons = [r[0] for r in await conn.fetch("SELECT person_id FROM persons ORDER BY person_id")]
    stream_ = stream(rng, persons, step)
    for i in range(0, len(stream_), 1000):
        await events.emit(conn, stream_[i : i + 1000])
    return stream_


async def measure_decide(conn: asyncpg.Connection) -> tuple[float, int]:
    """The decision step over the events read back from PostgreSQL: (events/s, runs decided)."""
    ruleset = rules.RuleSet()
    await ruleset.refresh(conn)
    rows = await conn.fetch("SELECT * FROM domain_events ORDER BY id")
    evs = [events.from_row(r) for r in rows]
    persons = await rules.person_facts(conn, list({e.person_id for e in evs if e.person_id}))
    best, decided = 0.0, 0
    for _ in range(3):
        started = time.perf_counter()
        decided = len(rules.decide(ruleset, evs, persons))
        best = max(best, len(evs) / (time.perf_counter() - started))
    return best, decided


async def drain(pool: asyncpg.Pool, handlers: list[events.Handler], evaluator: rules.Evaluator) -> float:
    """The loop's own step until the table is empty; events/s."""
    runner = Runner(pool, handlers, jobs=[evaluator.due])
    async with pool.acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM domain_events")
        started = time.perf_counter()
        while await runner.step(conn):
            pass
        elapsed = time.perf_counter() - started
        assert await conn.fetchval("SELECT count(*) FROM domain_events") == 0
    return float(total) / elapsed


async def measure(pg_dsn: str, schema: str, with_rules: bool, step: float = 5.0) -> dict[str, float]:
    """Seed a schema, then time the decision step (with rules) and the loop end to end."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await seed(conn, with_rules, random.Random(16), step)
            decide_rate, decided = await measure_decide(conn) if with_rules else (0.0, 0)
        evaluator = rules.Evaluator()
        rate = await drain(pool, [evaluator], evaluator)
        async with pool.acquire() as conn:
            runs = await conn.fetchval("SELECT count(*) FROM rule_runs WHERE status = 'done'")
        return {"decide": decide_rate, "decided": decided, "end_to_end": rate, "runs": runs}
    finally:
        await pool.close()


async def _drop(pg_dsn: str, *schemas: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        for schema in schemas:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """The measurements; a :class:`benchmarks.harness.BenchResult`."""
    tag = uuid.uuid4().hex[:8]
    with_rules, heavy_schema, without = (
        f"bench_auto_{tag}",
        f"bench_auto_heavy_{tag}",
        f"bench_auto_none_{tag}",
    )
    try:
        mine = await measure(pg_dsn, with_rules, True)
        heavy = await measure(pg_dsn, heavy_schema, True, step=20.0)
        base = await measure(pg_dsn, without, False)
    finally:
        await _drop(pg_dsn, with_rules, heavy_schema, without)
    return {
        "title": f"automation: {RULES} active workflow rules over {EVENTS:,} domain events",
        "rows": [
            {"metric": "rule evaluation (trigger, self-trigger, compiled conditions)", "value": round(mine["decide"]),
             "unit": "events/s", "target": f">= {TARGET}", "baseline": None},
            {"metric": "end to end: domain events → runs and actions committed, rows deleted",
             "value": round(mine["end_to_end"]), "unit": "events/s", "target": f">= {TARGET}",
             "baseline": f"{base['end_to_end']:.0f} events/s with 0 rules"},
            {"metric": "runs carried out in it (each tagging a person)", "value": mine["runs"], "unit": "runs",
             "target": None, "baseline": None},
            {"metric": f"end to end, heavy: score jumps of up to 20 points ({heavy['runs']:,} runs)",
             "value": round(heavy["end_to_end"]), "unit": "events/s", "target": None,
             "baseline": f"{base['end_to_end']:.0f} events/s with 0 rules"},
        ],
        "notes": f"{PERSONS:,} persons; rules on score thresholds, forms, custom events and stage moves, each with "
        "1-2 conditions; score changes of 1-5 points (heavy: 1-20, so most score events cross several thresholds); the loop's step run back to back on one connection (batches of 1,000); best of 3 for "
        "the evaluation step.",
    }  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    print(asyncio.run(run("127.0.0.1:9092", "postgresql://postgres@127.0.0.1:5432/leadline")))
