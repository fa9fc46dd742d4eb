"""The sales pages with 100,000 deals and 1,000,000 persons (issue 15: the board and the deal list <= 200 ms).

One schema gets the web workspace's million persons (benchmarks/workspace_bench.py's seed: 5 % known, ten reps),
then 5,000 companies and 100,000 deals in the default pipeline made in SQL: spread over its stages (a quarter
closed, won or lost), the ten reps, the known persons and the companies, with amounts and expected close dates.
crm-core's own app serves the pages on a loopback port to a signed-in rep, and each page is timed over HTTP.

Baselines measured in the same run: the bare handler (the sign-in page) and the naive board, every deal of the
pipeline with its stage, person and company read at once and sorted into columns (what a board that draws every
card does), timed straight on PostgreSQL.

Then the CSV import (issue 15: >= 5,000 rows/s): 100,000 people new to the schema, 10,000 companies and 20,000
deals, each file in one POST /api/v1/imports over HTTP against the million persons; beside it, the same people
file loaded one INSERT round trip per row (the first 5,000 rows) and by a bare COPY into a bare table.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from benchmarks import crm_bench, workspace_bench
from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, pg

DEALS = int(os.environ.get("LEADLINE_BENCH_DEALS", "100000"))
COMPANIES = 5_000
CALLS = 40
TARGET_MS = 200.0
IMPORT_ROWS = int(os.environ.get("LEADLINE_BENCH_IMPORT_ROWS", "100000"))
IMPORT_TARGET = 5_000  # rows/s
NAIVE_ROWS = 5_000

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


@contextlib.asynccontextmanager
async def serving(kafka_bootstrap: str, pg_dsn: str, schema: str, prefix: str) -> AsyncIterator[str]:
    """crm-core's own app on ``schema`` and topics under ``prefix``, on a loopback port; its base URL."""
    settings = config.load(
        CrmSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": prefix,
            "LEADLINE_PG_DSN": pg_dsn,
            "LEADLINE_CRM_SCHEMA": schema,
            "LEADLINE_CRM_GROUP": prefix.rstrip("."),
        },
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """The measurements; a :class:`benchmarks.harness.BenchResult`."""
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_sales_{tag}", f"bench-sales-{tag}."
    started = time.perf_counter()
    try:
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        email, pipeline = await seed(pg_dsn, schema)
        seeded_s = time.perf_counter() - started
        async with serving(kafka_bootstrap, pg_dsn, schema, prefix) as base:
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
            naive_ms, naive_rows = await naive(pg_dsn, schema)
            import_rows = await imports(base, await admin_token(pg_dsn, schema), pg_dsn, schema)
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
    rows += import_rows
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
            "machine's cores. CSV import: people new to the schema (a third with a phone), then companies (a tenth, "
            "by website) and deals (a fifth, each with a person by email and a company by domain), each file in one "
            "POST /api/v1/imports (commit) over HTTP, timed from the request to the answer (parsing, checks, "
            "duplicate matching against the million persons, writes, audit and outbox); the baselines load the same "
            "people file row by row and by a bare COPY. Then another people file of the same size with assignment rules "
            "on (Germany to one rep, everyone else round robin within a team of five)."
        ),
    }


# --- CSV import (issue 15: >= 5,000 rows/s, 100,000 rows in well under a minute) ---


def people_file(people: int, prefix: str = "import") -> bytes:
    """``people`` people new to the schema (a third with a phone; ``prefix`` starts their emails) as CSV."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Email", "First name", "Last name", "Phone", "Company", "Job title", "Country", "City"])
    area = 415 if prefix == "import" else 628  # another file's phones are other people's
    for i in range(people):
        w.writerow([f"{prefix}{i}@firm{i % 977}.example", f"First{i}", f"Last{i}", f"+1 {area} {200 + i % 700} {i % 10000:04d}"
                    if i % 3 == 0 else "", f"Firm {i % 977}", "Buyer", ("DE", "FR", "GB", "US")[i % 4], "Springfield"])  # fmt: skip
    return out.getvalue().encode()


def import_files(people: int) -> dict[str, tuple[bytes, int]]:
    """People (new to the schema), companies (a tenth) and deals (a fifth, with a company and a person) as CSV."""
    companies, deals = max(people // 10, 1), max(people // 5, 1)
    files = {"people": (people_file(people), people)}
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Company name", "Website", "Industry", "Country"])
    for i in range(companies):
        w.writerow([f"Imported {i}", f"https://www.imported{i}.example/", "Software", "DE"])
    files["companies"] = (out.getvalue().encode(), companies)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Deal name", "Value", "Stage", "Email", "Company", "Close date"])
    stages = ("Qualified", "Meeting", "Proposal", "Negotiation")
    for i in range(deals):
        w.writerow([f"Imported deal {i}", f"{1000 + i % 9000}.00", stages[i % 4], f"import{i % people}@firm{i % people % 977}.example",
                    f"imported{i % companies}.example", "2027-01-15"])  # fmt: skip
    files["deals"] = (out.getvalue().encode(), deals)
    return files


async def timed_import(
    session: aiohttp.ClientSession, base: str, token: str, kind: str, body: bytes
) -> tuple[float, dict[str, Any]]:
    """Seconds for one POST /api/v1/imports (commit) of ``body``, and the job it answered."""
    started = time.perf_counter()
    async with session.post(
        f"{base}/api/v1/imports?kind={kind}&mode=commit&on_duplicate=skip",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    ) as resp:
        job = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"import of {kind}: {resp.status} {job}")
    return time.perf_counter() - started, job


NAIVE_INSERT = """
INSERT INTO bench_naive_import (email, first_name, last_name, phone, company, title, country, city)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"""


async def naive_import(dsn: str, schema: str, body: bytes, rows: int) -> tuple[float, float]:
    """Rows/s of two baselines on the same people file: one INSERT round trip per row (the first ``NAIVE_ROWS``
    rows, into a bare table), and PostgreSQL's plain COPY of the whole file into a bare table (no checks)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute(
            "CREATE TABLE bench_naive_import (email text, first_name text, last_name text, phone text,"
            " company text, title text, country text, city text)"
        )
        records = list(csv.reader(io.StringIO(body.decode())))[1 : 1 + min(NAIVE_ROWS, rows)]
        started = time.perf_counter()
        for r in records:
            await conn.execute(NAIVE_INSERT, *r)
        by_row = len(records) / (time.perf_counter() - started)
        started = time.perf_counter()
        await conn.copy_to_table("bench_naive_import", source=io.BytesIO(body), format="csv", header=True)
        copy = rows / (time.perf_counter() - started)
    finally:
        await conn.close()
    return by_row, copy


# Assignment rules for the second people file: Germany to one rep, everyone else round robin in a team of five.
RULES_SQL = [
    "INSERT INTO teams (name) VALUES ('Bench inbound')",
    """INSERT INTO team_members (team_id, user_id)
       SELECT (SELECT id FROM teams WHERE name = 'Bench inbound'), id FROM users ORDER BY email LIMIT 5""",
    """INSERT INTO assignment_rules (name, position, country, user_id)
       SELECT 'Germany', 1, 'DE', id FROM users ORDER BY email DESC LIMIT 1""",
    """INSERT INTO assignment_rules (name, position, team_id)
       SELECT 'Everyone else', 2, id FROM teams WHERE name = 'Bench inbound'""",
]


async def import_one(
    session: aiohttp.ClientSession, base: str, token: str, kind: str, body: bytes, n: int, label: str = ""
) -> dict[str, Any]:
    """Import one file through the API; its row of the report (``label`` says what is special about it)."""
    seconds, job = await timed_import(session, base, token, kind, body)
    if job["created"] != n:
        raise RuntimeError(f"import of {kind}: created {job['created']} of {n} ({job['rejected']} rejected)")
    return {"metric": f"CSV import of {n:,} {kind}{label} (API, commit, {len(body) / 1e6:.1f} MB)",
            "value": round(n / seconds), "unit": f"rows/s ({seconds:.1f} s)",
            "target": f">= {IMPORT_TARGET:,}", "baseline": None}  # fmt: skip


async def with_rules(dsn: str, schema: str) -> None:
    """Turn the assignment rules of :data:`RULES_SQL` on in the bench's schema."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        for sql in RULES_SQL:
            await conn.execute(sql)
    finally:
        await conn.close()


async def imports(base: str, token: str, dsn: str, schema: str) -> list[dict[str, Any]]:
    """Import people, then companies, then deals through the API, then more people with assignment rules on; the
    rows of the report."""
    files = import_files(IMPORT_ROWS)
    async with aiohttp.ClientSession() as session:
        out = [await import_one(session, base, token, kind, body, n) for kind, (body, n) in files.items()]
        await with_rules(dsn, schema)
        out.append(await import_one(session, base, token, "people", people_file(IMPORT_ROWS, "assigned"),
                                    IMPORT_ROWS, " with assignment rules (a team's round robin)"))  # fmt: skip
    by_row, copy = await naive_import(dsn, schema, files["people"][0], files["people"][1])
    out[0]["baseline"] = f"{by_row:,.0f} rows/s one INSERT per row; {copy:,.0f} rows/s bare COPY"
    out.append({"metric": f"naive import: one INSERT round trip per row ({min(NAIVE_ROWS, IMPORT_ROWS):,} people rows, "
                "bare table)", "value": round(by_row), "unit": "rows/s", "target": None, "baseline": None})  # fmt: skip
    out.append({"metric": f"bare COPY of the {IMPORT_ROWS:,}-row people file into a bare table (no checks)",
                "value": round(copy), "unit": "rows/s", "target": None, "baseline": None})  # fmt: skip
    return out


async def import_only(kafka_bootstrap: str, pg_dsn: str) -> list[dict[str, Any]]:
    """The CSV import rows alone, on a fresh schema without the million persons (for checking the import at a size
    a loaded machine affords: LEADLINE_BENCH_IMPORT_ROWS); the people import is faster here than beside a million
    persons, the companies and deals about the same."""
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_import_{tag}", f"bench-import-{tag}."
    try:
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
        try:
            await conn.execute(
                "INSERT INTO users (email, name, role) SELECT 'rep' || i || '@bench.example', 'Rep ' || i,"
                " 'sales' FROM generate_series(0, 9) AS i"
            )
        finally:
            await conn.close()
        async with serving(kafka_bootstrap, pg_dsn, schema, prefix) as base:
            return await imports(base, await admin_token(pg_dsn, schema), pg_dsn, schema)
    finally:
        await crm_bench._drop_schemas(pg_dsn, schema)
        await crm_bench._delete_topics(kafka_bootstrap, kafka.Topics.with_prefix(prefix))


async def admin_token(dsn: str, schema: str) -> str:
    """An admin API token in the bench's schema."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        return await auth.create_token(conn, "bench-import", "admin")
    finally:
        await conn.close()


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
