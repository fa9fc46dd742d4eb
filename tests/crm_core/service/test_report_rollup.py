"""The service report's rollup (migration 0066) gives the figures the report computed from the cases themselves:
the same counts, open cases, breaches and means, and medians within one histogram bucket, whatever happened to
the cases (status moves and reopens, first responses, a case moved to another day or month, a purchase's or a
contract's product changed, cases deleted), over ranges of whole months, parts of months and single days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from leadline_crm.service import histogram, report

pytestmark = pytest.mark.integration

# 400 cases over the last ~120 days, every 7.3 hours: types, products (through a purchase, a contract, both or
# neither), due times, first responses and resolutions varied by the case's number; 1 in 6 never answered.
SEED = """
WITH p AS (SELECT $1::uuid AS person, $2::uuid AS pu1, $3::uuid AS pu2, $4::uuid AS sc1, $5::uuid AS sc2)
INSERT INTO cases (tracking_number, person_id, type, status, subject, description, purchase_id, contract_id,
                   due_at, created_at, first_response_at, resolved_at)
SELECT 'SR-2026-' || lpad(i::text, 6, '0'), p.person, (ARRAY['question', 'complaint', 'fault', 'return'])[1 + i % 4],
       CASE WHEN i % 3 = 0 THEN 'resolved' WHEN i % 3 = 1 THEN 'open' ELSE 'new' END, 's', 'd',
       (ARRAY[NULL, p.pu1, p.pu2, NULL, NULL, p.pu1])[1 + i % 6], (ARRAY[NULL, NULL, NULL, p.sc1, p.sc2, p.sc1])[1 + i % 6],
       at + (i % 5) * interval '10 hours', at,
       CASE WHEN i % 6 <> 5 THEN at + (i % 37) * interval '97 minutes' + (i % 11) * interval '13 seconds' END,
       CASE WHEN i % 3 = 0 THEN at + (i % 23) * interval '5 hours' + interval '20 minutes' END
  FROM p, generate_series(1, 400) AS i, LATERAL (SELECT now() - i * interval '7.3 hours' AS at) AS t
"""

CHANGES = [
    # reopened: no resolution any more
    "UPDATE cases SET status = 'open', resolved_at = NULL WHERE substr(tracking_number, 9)::int % 9 = 0",
    # answered now, some of them late
    "UPDATE cases SET first_response_at = created_at + interval '3 days', status = 'waiting'"
    " WHERE first_response_at IS NULL AND substr(tracking_number, 9)::int % 4 = 1",
    # opened a day and a half earlier: some cross into another month
    "UPDATE cases SET created_at = created_at - interval '36 hours' WHERE substr(tracking_number, 9)::int % 10 = 2",
    # resolved long after
    "UPDATE cases SET status = 'closed', resolved_at = created_at + interval '41 days'"
    " WHERE substr(tracking_number, 9)::int % 13 = 0",
    "DELETE FROM cases WHERE substr(tracking_number, 9)::int % 50 = 7",
]

ROLLUP_ROWS = (
    "SELECT * FROM service_report_days WHERE cases <> 0 ORDER BY period, starts_on, product_id, type"
)
REBUILD = """
SELECT service_report_apply(array_agg(created_at), array_agg(product_id), array_agg(type), array_agg(status),
                            array_agg(due_at), array_agg(first_response_at), array_agg(resolved_at), array_agg(1))
  FROM cases
"""


async def _seed(conn: asyncpg.Connection) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    for name in ("Pump", "Panel", "Inverter"):
        ids[name] = await conn.fetchval(
            "INSERT INTO products (sku, name, list_price) VALUES ($1, $1, 10) RETURNING id", name
        )
    ids["person"] = await conn.fetchval(
        "INSERT INTO persons (person_id, first_seen, last_seen, emails) VALUES (gen_random_uuid(), now(), now(),"
        " ARRAY['roll@example.com']) RETURNING person_id"
    )
    for key, product in (("pu1", "Pump"), ("pu2", "Panel")):
        ids[key] = await conn.fetchval(
            "INSERT INTO purchases (person_id, product_id, quantity, price_paid) VALUES ($1, $2, 1, 10) RETURNING id",
            ids["person"], ids[product],
        )  # fmt: skip
    for key, product in (("sc1", ids["Inverter"]), ("sc2", None)):
        ids[key] = await conn.fetchval(
            "INSERT INTO service_contracts (person_id, product_id, name, starts_on, ends_on)"
            " VALUES ($1, $2, 'Care', current_date - 400, current_date + 30) RETURNING id",
            ids["person"], product,
        )  # fmt: skip
    await conn.execute(SEED, ids["person"], ids["pu1"], ids["pu2"], ids["sc1"], ids["sc2"])
    return ids


def _ranges() -> list[report.Range]:
    today = datetime.now(UTC).date()
    month = today.replace(day=1)
    two_back = (month - timedelta(days=40)).replace(day=1)
    return [
        report.Range.parse({}),  # the default 90 days
        report.Range.parse({"from": (today - timedelta(days=200)).isoformat()}),
        report.Range(two_back, month - timedelta(days=1)),  # whole months only
        report.Range(two_back + timedelta(days=9), today - timedelta(days=17)),  # from and to inside months
        report.Range(today - timedelta(days=30), today - timedelta(days=30)),  # one day
        report.Range(date(2001, 1, 1), date(2001, 3, 1)),  # nothing
    ]


async def _assert_same_figures(conn: asyncpg.Connection) -> int:
    """The rollup's report equals the raw one for every range; the number of rows compared."""
    compared = 0
    for span in _ranges():
        raw = {(r["product"], r["type"]): r for r in await report.raw_rows(conn, span)}
        rolled = {(r["product"], r["type"]): r for r in await report.rows(conn, span)}
        assert rolled.keys() == raw.keys(), span
        for key, exact in raw.items():
            got = rolled[key]
            assert [got[c] for c in ("cases", "open", "breaches")] == [
                exact[c] for c in ("cases", "open", "breaches")
            ], (span, key)
            for column in ("mean_first_response_hours", "mean_resolve_hours"):
                assert got[column] == pytest.approx(exact[column], abs=0.011), (span, key, column)
            for column in ("median_first_response_hours", "median_resolve_hours"):
                if exact[column] is None:
                    assert got[column] is None
                    continue
                bound = exact[column] * histogram.RELATIVE_ERROR + 1 / 60 + 0.01
                assert abs(got[column] - exact[column]) <= bound, (
                    span,
                    key,
                    column,
                    got[column],
                    exact[column],
                )
            compared += 1
    return compared


async def test_the_rollup_gives_the_figures_of_the_cases_themselves(crm_conn: asyncpg.Connection) -> None:
    ids = await _seed(crm_conn)
    assert await _assert_same_figures(crm_conn) > 20
    for sql in CHANGES:
        await crm_conn.execute(sql)
    # products change under the cases: the purchase's cases follow it, the contract's only without a purchase
    await crm_conn.execute("UPDATE purchases SET product_id = $2 WHERE id = $1", ids["pu1"], ids["Inverter"])
    await crm_conn.execute(
        "UPDATE service_contracts SET product_id = $2 WHERE id = $1", ids["sc2"], ids["Panel"]
    )
    assert await _assert_same_figures(crm_conn) > 20
    pump = {r["product"] for r in await report.rows(crm_conn, report.Range.parse({"from": "2020-01-01"}))}
    assert pump == {"Panel", "Inverter", "(no product)"}
    # the triggers' rows are what the migration's backfill computes from the cases
    kept = await crm_conn.fetch(ROLLUP_ROWS)
    await crm_conn.execute("DELETE FROM service_report_days")
    await crm_conn.execute(REBUILD)
    assert await crm_conn.fetch(ROLLUP_ROWS) == kept


async def test_an_update_that_changes_nothing_counted_writes_nothing(crm_conn: asyncpg.Connection) -> None:
    """A comment's updated_at or an erasure's texts touch every case of a person: the rollup's rows stay as they
    are (no write, no lock on the day's and month's rows)."""
    await _seed(crm_conn)
    versions = await crm_conn.fetch("SELECT xmin::text AS v FROM service_report_days ORDER BY 1")
    await crm_conn.execute(
        "UPDATE cases SET subject = '(erased)', description = '(erased)', updated_at = now()"
    )
    assert await crm_conn.fetch("SELECT xmin::text AS v FROM service_report_days ORDER BY 1") == versions
    await crm_conn.execute(
        "UPDATE cases SET status = 'resolved', resolved_at = now() WHERE tracking_number = 'SR-2026-000001'"
    )
    assert await crm_conn.fetch("SELECT xmin::text AS v FROM service_report_days ORDER BY 1") != versions


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2026, 1, 1), date(2026, 3, 31), (date(2026, 1, 1), date(2026, 4, 1))),
        (date(2026, 1, 2), date(2026, 3, 30), (date(2026, 2, 1), date(2026, 3, 1))),
        (date(2026, 1, 2), date(2026, 1, 30), (date(2026, 2, 1), date(2026, 2, 1))),
        (date(2025, 12, 15), date(2026, 2, 28), (date(2026, 1, 1), date(2026, 3, 1))),
    ],
)
def test_the_report_reads_whole_months_from_the_month_rows(
    start: date, end: date, months: tuple[date, date]
) -> None:
    assert report.Range(start, end).months() == months
