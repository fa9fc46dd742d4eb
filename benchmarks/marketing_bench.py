"""The marketing reports with 10,000,000 touchpoints, 1,000,000 persons and 100,000 purchases (issue 13: every
report answers in <= 100 ms at p95, and barely grows from 1 to 10 million touchpoints).

One schema gets a million persons made in SQL (5 % known, with country, region, gender, industry, company size;
of the known, 40 % became prospects and 20 % customers, with their stage moves), 100,000 purchases of 50
products, and then touchpoints by COPY in chunks (a progress bar on stderr): one in fifty an ad click on one of
40 ads of 8 affiliates, the rest page views, times rising over 180 days. Ingestion's rollup rows (the ad clicks,
which are also the arrivals the funnel credits, each visitor's first touch) are written by COPY beside them, as ingestion would write them per batch; the
triggers of migrations 0020-0023 keep the daily visitors, the stage times, the clicks per day, the conversions'
credits and the monthly product pairs. Ad impressions, which are no touchpoints (migration 0027), are counted per
day and ad for all 180 days at once (7,200 rows, a few milliseconds), at a click-through rate of 0.4-1.2 % of the
clicks the seeded volume gives each ad a day, so the ads report reads them as in production. The reports are timed
at 1,000,000
touchpoints and again at the full count (or as far as the seeding got within its time budget: the module has
600 s in all on a machine that may have 2 cores), each next to the same report computed naively from the raw
tables (``marketing.queries.naive``), run once with a statement timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from benchmarks import crm_bench
from leadline_crm.app import MIGRATIONS
from leadline_crm.marketing import recredit, reports
from leadline_shared import pg

TOUCHPOINTS = int(os.environ.get("LEADLINE_BENCH_TOUCHPOINTS", "10000000"))
PERSONS = int(os.environ.get("LEADLINE_BENCH_PERSONS", "1000000"))
PURCHASES = 100_000
FIRST_STAGE = min(1_000_000, TOUCHPOINTS)
CHUNK = 250_000
SEED_BUDGET_S = float(os.environ.get("LEADLINE_BENCH_SEED_BUDGET_S", "330"))
NAIVE_TIMEOUT_S = 30
CALLS = 20
TARGET_MS = 100.0
DAYS = 180
END = datetime(2026, 11, 30, tzinfo=UTC)
START = END - timedelta(days=DAYS)
AFFILIATES, ADS_EACH = 8, 5
TOUCH_COLUMNS = ["event_id", "person_id", "type", "source", "occurred_at", "received_at", "event"]

SEED_SQL = [
    """
INSERT INTO users (email, name, role)
SELECT 'rep' || i || '@bench.example', 'Rep ' || i, 'sales' FROM generate_series(1, 10) AS i""",
    """
INSERT INTO affiliates (affiliate_id, name) SELECT 'aff' || i, 'Affiliate ' || i FROM generate_series(0, $1::int - 1) AS i
""",
    """
INSERT INTO campaigns (name, channel) SELECT 'Campaign ' || i, 'ads' FROM generate_series(0, 3) AS i""",
    """
INSERT INTO ads (affiliate_id, ad_id, name, landing_url, campaign_id)
SELECT 'aff' || a, 'ad' || b, 'Ad ' || a || '/' || b, 'https://bench.example/',
       (SELECT id FROM campaigns ORDER BY name OFFSET (b % 4) LIMIT 1)
  FROM generate_series(0, $1::int - 1) AS a, generate_series(0, $2::int - 1) AS b""",
    """
INSERT INTO products (sku, name, list_price)
SELECT 'SKU' || i, 'Product ' || i, 20 + i * 10 FROM generate_series(0, 49) AS i""",
    # md5(i) as the id, so the touchpoints' generator knows every person's id without reading them back
    """
INSERT INTO persons (person_id, first_seen, last_seen, emails, country, region, gender, industry, company_size,
                     stage, identified, purchases)
SELECT md5(i::text)::uuid, $2::timestamptz, $2::timestamptz,
       CASE WHEN known THEN ARRAY['p' || i || '@bench.example'] ELSE '{}' END,
       CASE WHEN known THEN (ARRAY['DE','FR','GB','US','AU','NL','ES'])[1 + j % 7] END,
       CASE WHEN known THEN 'Region ' || (j % 12) END,
       CASE WHEN known THEN (ARRAY['female','male','diverse'])[1 + j % 3] END,
       CASE WHEN known THEN (ARRAY['retail','software','health','finance','education'])[1 + j % 5] END,
       CASE WHEN known THEN (ARRAY['1-10','11-50','51-200','201-1000'])[1 + j % 4] END,
       CASE WHEN NOT known THEN 'anonymous' WHEN j % 5 = 0 THEN 'customer' WHEN j % 5 IN (1, 2) THEN 'prospect'
            ELSE 'lead' END,
       known, CASE WHEN known AND j % 5 = 0 THEN 10 ELSE 0 END
  FROM generate_series(0, $1::int - 1) AS i, LATERAL (SELECT i % 20 = 0 AS known, i / 20 AS j) AS k""",
    # stage moves of the known: lead within the 180 days, prospect 3 days later, customer 10 days later
    """
INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, cause_user, reason)
SELECT p.person_id, m.from_stage, m.to_stage, $1::timestamptz + (i % 170) * interval '1 day' + m.after, 'bench', 'bench'
  FROM generate_series(0, $2::int - 1, 20) AS i
  JOIN persons AS p ON p.person_id = md5(i::text)::uuid
  CROSS JOIN LATERAL (VALUES ('anonymous', 'lead', interval '0'), ('lead', 'prospect', interval '3 days'),
                             ('prospect', 'customer', interval '10 days')) AS m(from_stage, to_stage, after)
 WHERE m.to_stage = 'lead' OR (m.to_stage = 'prospect' AND p.stage IN ('prospect', 'customer'))
    OR (m.to_stage = 'customer' AND p.stage = 'customer')""",
    """
INSERT INTO purchases (person_id, product_id, quantity, purchased_on, sales_rep, price_paid)
SELECT c.person_id, pr.id, 1 + n % 3, ($2::timestamptz)::date + (n % 180)::int, NULL,
       round(pr.list_price * (0.8 + (n % 21) / 100.0), 2)
  FROM (SELECT person_id, row_number() OVER (ORDER BY person_id) - 1 AS r FROM persons WHERE stage = 'customer') AS c
  CROSS JOIN LATERAL generate_series(0, 9) AS k
  CROSS JOIN LATERAL (SELECT (c.r * 10 + k) AS n) AS x
  JOIN products AS pr ON pr.sku = 'SKU' || (x.n % 50)
 WHERE x.n < $1::int""",
    # a weekly mailing of one of the campaigns to 2,000 of the known persons (a different 2,000 each week)
    """
INSERT INTO email_sends (campaign_id, person_id, subject, sent_at)
SELECT (SELECT id FROM campaigns ORDER BY name OFFSET (w % 4) LIMIT 1), md5((20 * ((w * 2000 + r) % ($2::int / 20)))::text)::uuid,
       'Mailing ' || w, $1::timestamptz + w * interval '7 days'
  FROM generate_series(0, $3::int / 7 - 1) AS w, generate_series(0, 1999) AS r""",
    # what ingestion would keep of the recipients' real opens (40 %, a day later) and clicks (10 %, two days later)
    """
INSERT INTO marketing_email_events (event_id, person_id, occurred_at, type, campaign_id, send_id)
SELECT 'm' || k.kind || s.id, s.person_id, s.sent_at + k.after, k.kind, s.campaign_id::text, s.id::text
  FROM (SELECT *, row_number() OVER (ORDER BY id) AS n FROM email_sends) AS s
  CROSS JOIN (VALUES ('email_open', interval '1 day', 8), ('link_click', interval '2 days', 2)) AS k(kind, after, share)
 WHERE s.n % 20 < k.share""",
    # what ingestion would count of the affiliates' impression pixels (migration 0027), per day and ad: the clicks
    # an ad gets a day ($3) over a click-through rate from 0.4 % to 1.2 % by ad, fewer at weekends
    """
INSERT INTO marketing_impressions_daily (day, affiliate_id, ad_id, impressions)
SELECT d::date, 'aff' || a, 'ad' || b,
       round($3::float8 / (0.004 + 0.0002 * ((a * 5 + b) % 41)) * CASE WHEN extract(isodow FROM d) > 5 THEN 0.6 ELSE 1 END)
  FROM generate_series($1::timestamptz, $1::timestamptz + ($2::int - 1) * interval '1 day', interval '1 day') AS d,
       generate_series(0, $4::int - 1) AS a, generate_series(0, $5::int - 1) AS b""",
]
CLICK_EVERY = 50  # one touchpoint in fifty is an ad click (Seeder.chunk)


def daily_clicks() -> float:
    """The ad clicks one ad gets on a day of the seeded volume."""
    return TOUCHPOINTS / CLICK_EVERY / DAYS / (AFFILIATES * ADS_EACH)


def person(i: int) -> str:
    return str(uuid.UUID(hashlib.md5(str(i).encode()).hexdigest()))  # noqa: S324 (an id, not a secret)


class Seeder:
    """Touchpoints n = 0, 1, … in COPY chunks, times rising, with the rollup rows ingestion would write."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = timedelta(days=DAYS) / total
        self.seen: set[int] = set()
        self.ids = [person(i) for i in range(PERSONS)]

    def chunk(self, start: int, stop: int) -> tuple[bytes, bytes, bytes]:
        touches, clicks, visitors = [], [], []
        for n in range(start, stop):
            i = (n * 7919) % PERSONS
            pid = self.ids[i]
            at = (START + self.step * n).isoformat()
            if n % CLICK_EVERY == 0:
                aff, ad = f"aff{n // 50 % AFFILIATES}", f"ad{n // 400 % ADS_EACH}"
                doc = f'{{"affiliate":{{"affiliate_id":"{aff}","ad_id":"{ad}"}},"campaign":{{"source":"{aff}","name":"{ad}"}}}}'
                touches.append(f"e{n}\t{pid}\tad_click\taffiliate\t{at}\t{at}\t{doc}")
                clicks.append(f"e{n}\t{pid}\t{at}\t{aff}\t{ad}")
                source, campaign = aff, ad
            else:
                touches.append(f"e{n}\t{pid}\tpage_view\tpixel\t{at}\t{at}\t{{}}")
                source, campaign = "pixel", ""
            if i not in self.seen:
                self.seen.add(i)
                visitors.append(f"{pid}\t{at}\te{n}\t{source}\t{campaign}")

        def encode(rows: list[str]) -> bytes:
            return ("\n".join(rows) + "\n").encode() if rows else b""

        return encode(touches), encode(clicks), encode(visitors)


def progress(done: int, total: int, started: float) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(
        f"\r  touchpoints {done:>12,}/{total:,} [{'#' * filled}{'.' * (width - filled)}] {time.perf_counter() - started:5.0f} s"
    )
    sys.stderr.flush()


async def copy(conn: asyncpg.Connection, table: str, data: bytes, columns: list[str]) -> None:
    if data:
        await conn.copy_to_table(table, source=io.BytesIO(data), columns=columns)


async def seed_touchpoints(
    conn: asyncpg.Connection, seeder: Seeder, start: int, stop: int, deadline: float, started: float
) -> int:
    """COPY touchpoints [start, stop) until the deadline; returns where it stopped."""
    n = start
    pending = asyncio.create_task(asyncio.to_thread(seeder.chunk, n, min(n + CHUNK, stop)))
    while n < stop:
        touches, clicks, visitors = await pending
        nxt = min(n + CHUNK, stop)
        if (
            nxt < stop and time.perf_counter() < deadline
        ):  # make the next chunk while PostgreSQL takes this one
            pending = asyncio.create_task(asyncio.to_thread(seeder.chunk, nxt, min(nxt + CHUNK, stop)))
        async with conn.transaction():
            await copy(conn, "touchpoints", touches, TOUCH_COLUMNS)
            await copy(
                conn,
                "marketing_clicks",
                clicks,
                ["event_id", "person_id", "occurred_at", "affiliate_id", "ad_id"],
            )
            await copy(  # each ad click is an arrival from its affiliate (UTM source) and ad (campaign)
                conn,
                "marketing_arrivals",
                clicks,
                ["event_id", "person_id", "occurred_at", "source", "campaign"],
            )
            await copy(
                conn,
                "marketing_visitors",
                visitors,
                ["person_id", "visited_at", "event_id", "source", "campaign"],
            )
        n = nxt
        progress(n, seeder.total, started)
        if time.perf_counter() >= deadline:
            break
    sys.stderr.write("\n")
    return n


SETTLED = (
    "marketing_stages",
    "marketing_credits",
    "marketing_credits_daily",
    "marketing_email_credits",
    "marketing_email_credits_daily",
    "marketing_stage_credits",
    "marketing_recredit_queue",
)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


QUERIES = {
    "ads by ad, position, 30 days": ("ads", {"model": "position"}),
    "ads by campaign, linear, 30 days": ("ads", {"model": "linear", "by": "campaign"}),
    "affiliates, last click, 30 days": ("affiliates", {"model": "last"}),
    "funnel by source, 30 days": ("funnel", {"by": "source"}),
    "products by product, 30 days": ("products", {}),
    "demographics by country, 30 days": ("demographics", {"by": "country"}),
    "ads by ad, position, 180 days": ("ads", {"model": "position", "from": START.date().isoformat()}),
    "funnel, 180 days": ("funnel", {"from": START.date().isoformat()}),
    "funnel by campaign, last, 180 days": (
        "funnel",
        {"by": "campaign", "model": "last", "from": START.date().isoformat()},
    ),
    "forecast, 104 weeks of history": ("forecast", {}),
    "cross-sell, 180 days": ("cross-sell", {"from": START.date().isoformat()}),
    "emails by campaign, position, 30 days": ("emails", {"model": "position"}),
    "emails by send, last click, 30 days (the first page, 100 of some 6,000 sends)": (
        "emails",
        {"model": "last", "by": "send"},
    ),
    "emails by mailing, last click, 30 days (a campaign's sends with one subject on one day)": (
        "emails",
        {"model": "last", "by": "mailing"},
    ),
    "demographics by device, 30 days": ("demographics", {"by": "device"}),
    "affiliates, last click, 180 days": ("affiliates", {"model": "last", "from": START.date().isoformat()}),
    "ads by ad, linear, 12-day lookback (not kept: per request), 30 days": (
        "ads",
        {"model": "linear", "lookback": "12"},
    ),
}
NAIVE = (
    "ads by ad, position, 30 days",
    "funnel by source, 30 days",
    "affiliates, last click, 30 days",
    "cross-sell, 180 days",
)


async def measure(
    conn: asyncpg.Connection, seeded: int
) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    """Each report over the days up to the newest touchpoint seeded (the 30 days before it, or all 180), once the
    credits the seeding queued are computed (migration 0071: crm-core's automation loop does it in the
    background)."""
    await recredit.catch_up(conn)
    for (
        table
    ) in SETTLED:  # what the fold just rewrote, vacuumed now rather than by autovacuum during the timing
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    await conn.execute("ANALYZE")
    timings: dict[str, list[float]] = {}
    today = (START + timedelta(days=DAYS * seeded / TOUCHPOINTS)).date()
    for name, (report, params) in QUERIES.items():
        q = reports.Query.parse({"to": today.isoformat(), **params}, today=today)
        out = []
        for i in range(CALLS + 3):
            began = time.perf_counter()
            await reports.compute(conn, report, q)
            if i >= 3:
                out.append((time.perf_counter() - began) * 1000)
        timings[name] = out
    naive: dict[str, float | None] = {}
    await conn.execute(f"SET statement_timeout = '{NAIVE_TIMEOUT_S}s'")
    for name in NAIVE:
        report, params = QUERIES[name]
        q = reports.Query.parse({"to": today.isoformat(), **params}, today=today)
        began = time.perf_counter()
        try:
            await reports.compute(conn, report, q, naive=True)
            naive[name] = (time.perf_counter() - began) * 1000
        except asyncpg.QueryCanceledError:
            naive[name] = None
    await conn.execute("RESET statement_timeout")
    return timings, naive


def _rows(
    stage: str, timings: dict[str, list[float]], naive: dict[str, float | None]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, values in timings.items():
        base = naive.get(name, "absent")
        baseline = (
            None
            if base == "absent"
            else f"naive from raw tables: {'> ' + str(NAIVE_TIMEOUT_S) + ' s (cancelled)' if base is None else f'{base:,.0f} ms'}"
        )
        rows.append(
            {
                "metric": f"{stage}: {name}, p50 / p95",
                "value": round(statistics.median(values), 1),
                "unit": f"ms (p95 {p95(values):.1f})",
                "target": f"<= {TARGET_MS:.0f}",
                "baseline": baseline,
            }
        )
    return rows


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """The measurements; a :class:`benchmarks.harness.BenchResult`."""
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_mk_{tag}"
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
        try:
            await conn.execute(SEED_SQL[0])
            await conn.execute(SEED_SQL[1], AFFILIATES)
            await conn.execute(SEED_SQL[2])
            await conn.execute(SEED_SQL[3], AFFILIATES, ADS_EACH)
            await conn.execute(SEED_SQL[4])
            await conn.execute(SEED_SQL[5], PERSONS, START)
            await conn.execute(SEED_SQL[6], START, PERSONS)
            await conn.execute(SEED_SQL[7], PURCHASES, START)
            await conn.execute(SEED_SQL[8], START, PERSONS, DAYS)
            await conn.execute(SEED_SQL[9])
            await conn.execute(SEED_SQL[10], START, DAYS, daily_clicks(), AFFILIATES, ADS_EACH)
            base_s = time.perf_counter() - started
            seeder = Seeder(TOUCHPOINTS)
            deadline = started + SEED_BUDGET_S
            first = await seed_touchpoints(conn, seeder, 0, FIRST_STAGE, deadline, started)
            timings, naive = await measure(conn, first)
            rows += _rows(f"{first:,} touchpoints", timings, naive)
            first_s = time.perf_counter() - started
            reached = await seed_touchpoints(conn, seeder, first, TOUCHPOINTS, deadline, started)
            seeded_s = time.perf_counter() - started
            if reached > first:
                timings, naive = await measure(conn, reached)
                rows += _rows(f"{reached:,} touchpoints", timings, naive)
            counts = {
                t: await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608 (fixed names)
                for t in (
                    "persons",
                    "purchases",
                    "marketing_clicks",
                    "marketing_visitors",
                    "marketing_stages",
                    "email_sends",
                    "marketing_email_events",
                )
            }
            counts["impressions"] = await conn.fetchval(
                "SELECT coalesce(sum(impressions), 0)::bigint FROM marketing_impressions_daily"
            )
        finally:
            await conn.close()
    finally:
        await crm_bench._drop_schemas(pg_dsn, schema)
    reached_note = (
        f"all {TOUCHPOINTS:,} touchpoints were seeded"
        if reached >= TOUCHPOINTS
        else f"seeding stopped at {reached:,} of {TOUCHPOINTS:,} touchpoints when its {SEED_BUDGET_S:.0f} s budget ran out"
    )
    return {
        "title": f"marketing reports: {reached:,} touchpoints, {counts['persons']:,} persons, {counts['purchases']:,} purchases",
        "rows": rows,
        "notes": (
            f"Persons, stage moves and purchases made in SQL in {base_s:.0f} s; touchpoints by COPY in chunks of "
            f"{CHUNK:,} with ingestion's rollup rows beside them ({counts['marketing_clicks']:,} ad clicks, "
            f"{counts['marketing_visitors']:,} visitors, {counts['marketing_stages']:,} persons with stage times; "
            f"{counts['email_sends']:,} e-mails sent and {counts['marketing_email_events']:,} real opens and clicks "
            f"kept as ingestion keeps them; {counts['impressions']:,} ad impressions counted per day and ad, "
            f"a click-through rate of 0.4-1.2 % by ad); "
            f"the first {first:,} by {first_s:.0f} s, {reached_note} ({seeded_s:.0f} s in all). Each report is "
            f"{reports.__name__}.compute on one connection (SQL and the Python that shapes the rows, no HTTP), "
            f"{CALLS} calls after 3 warm-up calls; the range ends on the newest touchpoint's day (touchpoints rise over "
            f"{DAYS} days, stage moves and purchases are spread over all of them). The naive figure "
            f"is the same report over the raw tables (touchpoints, stage_transitions, purchases), one call, cancelled after "
            f"{NAIVE_TIMEOUT_S} s. Client and PostgreSQL share the machine's cores."
        ),
    }


def main() -> int:
    """Run against the local stack (or LEADLINE_PG_DSN) and print the figures."""
    bootstrap = os.environ.get("LEADLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    dsn = os.environ.get("LEADLINE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/leadline")
    result = asyncio.run(run(bootstrap, dsn))
    print(result["title"])
    for row in result["rows"]:
        print(f"{row['metric']}: {row['value']} {row['unit']} (target {row['target']}; {row['baseline']})")
    print(result["notes"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
