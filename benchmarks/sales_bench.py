"""The sales pages with 100,000 deals and 1,000,000 persons (issue 15: the board and the deal list <= 200 ms).

One schema gets the web workspace's million persons (benchmarks/workspace_bench.py's seed: 5 % known, ten reps),
then 5,000 companies and 100,000 deals in the default pipeline made in SQL: spread over its stages (a quarter
closed, won or lost), the ten reps, the known persons and the companies, with amounts and expected close dates.
crm-core's own app serves the pages on a loopback port to a signed-in rep, and each page is timed over HTTP.

Baselines measured in the same run: the bare handler (the sign-in page) and the naive board, every deal of the
pipeline with its stage, person and company read at once and sorted into columns (what a board that draws every
card does), timed straight on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from benchmarks import crm_bench, workspace_bench
from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, pg

DEALS = int(os.environ.get("LEADLINE_BENCH_DEALS", "100000"))
COMPANIES = 5_000
CALLS = 40
TARGET_MS = 200.0

SEED_SQL = [
    """
INSERT INTO companies (name, domain, country, owner_id)
SELECT 'Company ' || i, 'company' || i || '.example', (ARRAY['DE','FR','GB','US'])[1 + i % 4],
       (SELECT id FROM users ORDER BY email OFFSET (i % 10) LIMIT 1)
  FROM generate_series(1, $1::int) AS i
""",
    """
CREATE TEMP TABLE bench_people AS
SELECT row_number() OVER () AS n, person_id FROM persons WHERE identified
""",
    """
CREATE TEMP TABLE bench_reps AS SELECT row_number() OVER (ORDER BY email) - 1 AS n, id FROM users
""",
    """
CREATE TEMP TABLE bench_companies AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM companies
""",
    """
INSERT INTO deals (title, person_id, company_id, amount, currency, pipeline_id, stage_id, expected_close_on,
                   owner_id, status, close_reason, closed_at, stage_at, created_at, updated_at)
SELECT 'Deal ' || i, pe.person_id, co.id, (500 + (i * 7919) % 50000)::numeric, 'EUR', s.pipeline_id, s.id,
       current_date + (i % 120 - 30), r.id, s.kind,
       CASE s.kind WHEN 'lost' THEN 'no budget' WHEN 'won' THEN 'signed' END,
       CASE WHEN s.kind <> 'open' THEN now() - (i % 150) * interval '1 day' END,
       now() - (i % 60) * interval '1 day', now() - (i % 365) * interval '1 day' - i * interval '1 second',
       now()
  FROM generate_series(1, $1::int) AS i
  JOIN LATERAL (SELECT * FROM pipeline_stages WHERE pipeline_id = (SELECT id FROM pipelines WHERE is_default)
                 ORDER BY position OFFSET (CASE WHEN i % 4 = 0 THEN 4 + i % 8 / 4 ELSE i % 4 END) LIMIT 1) AS s
    ON true
  JOIN bench_people pe ON pe.n = 1 + i % (SELECT count(*) FROM bench_people)
  JOIN bench_reps r ON r.n = (i / 7) % 10
  LEFT JOIN bench_companies co ON co.n = 1 + i % $2::int AND i % 3 <> 0
""",
]

NAIVE_BOARD = """
SELECT d.*, s.name AS stage, s.position, p.first_name, p.last_name, p.emails, c.name AS company
  FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
  LEFT JOIN persons p ON p.person_id = d.person_id LEFT JOIN companies c ON c.id = d.company_id
 WHERE d.pipeline_id = (SELECT id FROM pipelines WHERE is_default)
 ORDER BY s.position, d.expected_close_on
"""


async def seed(dsn: str, schema: str) -> tuple[str, str]:
    """The million persons, then the companies and deals; a rep's email and the default pipeline's id."""
    email, _ = await workspace_bench.seed(dsn, schema)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute(SEED_SQL[0], COMPANIES)
        for sql in SEED_SQL[1:4]:
            await conn.execute(sql)
        await conn.execute(SEED_SQL[4], DEALS, COMPANIES)
        await conn.execute("VACUUM ANALYZE deals")
        await conn.execute("VACUUM ANALYZE companies")
        pipeline = await conn.fetchval("SELECT id FROM pipelines WHERE is_default")
    finally:
        await conn.close()
    return email, str(pipeline)


async def naive(dsn: str, schema: str) -> tuple[list[float], int]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        out, rows = [], 0
        for _ in range(5):
            started = time.perf_counter()
            rows = len(await conn.fetch(NAIVE_BOARD))
            out.append((time.perf_counter() - started) * 1000)
        return out, rows
    finally:
        await conn.close()


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """The measurements; a :class:`benchmarks.harness.BenchResult`."""
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_sales_{tag}", f"bench-sales-{tag}."
    started = time.perf_counter()
    try:
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        email, pipeline = await seed(pg_dsn, schema)
        seeded_s = time.perf_counter() - started
        settings = config.load(
            CrmSettings,
            {
                "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "LEADLINE_TOPIC_PREFIX": prefix,
                "LEADLINE_PG_DSN": pg_dsn,
                "LEADLINE_CRM_SCHEMA": schema,
                "LEADLINE_CRM_GROUP": f"bench-sales-{tag}",
            },
        )
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            pages = {
                "board, default pipeline (every owner)": "/app/deals/board",
                "board, my deals (owner=me)": f"/app/deals/board?pipeline={pipeline}&owner=me",
                "deal table, default (newest)": "/app/deals",
                "deal table, open deals by amount": "/app/deals?status=open&sort=amount",
                "deal table, my deals closing soonest": "/app/deals?owner=me&sort=close",
                "deal table, search 'deal 4242'": "/app/deals?q=deal+4242",
                "deal table, page 20": "/app/deals?page=20",
                "sales dashboard (volume, weighted pipeline)": "/app/sales",
            }
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                bare = await workspace_bench.timed(session, f"{base}/app/login", CALLS)
                await workspace_bench.sign_in(session, base, email)
                measured = {
                    name: await workspace_bench.timed(session, base + p, CALLS) for name, p in pages.items()
                }
                export_started = time.perf_counter()
                async with session.get(f"{base}/app/deals.csv") as resp:
                    exported = (await resp.read()).count(b"\n") - 1
                export_ms = (time.perf_counter() - export_started) * 1000
        finally:
            await runner.cleanup()
        naive_ms, naive_rows = await naive(pg_dsn, schema)
    finally:
        await crm_bench._drop_schemas(pg_dsn, schema)
        await crm_bench._delete_topics(kafka_bootstrap, kafka.Topics.with_prefix(prefix))
    bare_p50 = statistics.median(bare)
    rows = [
        {"metric": "bare handler: the sign-in page (template, no query), p50", "value": round(bare_p50, 2),
         "unit": "ms", "target": None, "baseline": None},
    ]  # fmt: skip
    for name, values in measured.items():
        rows.append(
            {
                "metric": f"{name}, p50 / p95",
                "value": round(statistics.median(values), 1),
                "unit": f"ms (p95 {workspace_bench.p95(values):.1f})",
                "target": f"<= {TARGET_MS:.0f}",
                "baseline": f"{bare_p50:.1f} ms bare handler",
            }
        )
    rows.append(
        {
            "metric": f"naive board: every deal of the pipeline at once ({naive_rows:,} rows, on PostgreSQL)",
            "value": round(statistics.median(naive_ms), 1),
            "unit": "ms",
            "target": None,
            "baseline": "for the boards above",
        }
    )
    rows.append(
        {
            "metric": f"CSV export of every deal ({exported:,} rows)",
            "value": round(export_ms),
            "unit": "ms",
            "target": None,
            "baseline": None,
        }
    )
    return {
        "title": f"sales workspace: the board and the deal list with {DEALS:,} deals and "
        f"{workspace_bench.PERSONS:,} persons",
        "rows": rows,
        "notes": (
            f"The web workspace's {workspace_bench.PERSONS:,} persons, then {COMPANIES:,} companies and {DEALS:,} deals "
            "made in SQL (the default pipeline's six stages, a quarter closed; ten reps; two thirds with a company); "
            f"seeding took {seeded_s:.0f} s. crm-core's own app serves the pages on a loopback port to a rep signed "
            f"in through the form; {CALLS} GETs per page after 5 warm-up calls, one at a time. The board shows the "
            "first 50 cards of each column and every column's count and value. The naive board is every deal of the "
            "pipeline with its person and company in one query (5 calls). Client, server and PostgreSQL share the "
            "machine's cores."
        ),
    }


def main() -> int:
    """Run against the local stack (or LEADLINE_KAFKA_BOOTSTRAP / LEADLINE_PG_DSN) and print the figures."""
    bootstrap = os.environ.get("LEADLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    dsn = os.environ.get("LEADLINE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/leadline")
    result = asyncio.run(run(bootstrap, dsn))
    for row in result["rows"]:
        print(f"{row['metric']}: {row['value']} {row['unit']} (target {row['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
