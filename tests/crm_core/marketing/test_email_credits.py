"""The emails report's credits kept per day and send (migration 0063) equal the credits computed from the raw
touchpoints, for every model, every kept lookback and one that is not kept, by send and by campaign: after a
replay, a late e-mail click, a merge, an edited and a deleted purchase and an erasure."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest

from crm_core.marketing.dataset import at, erase, form, mail, merge, newsletter, seed
from leadline_crm.ingest.touch import Touch
from leadline_crm.ingest.touches import write_batch, write_touches
from leadline_crm.marketing import recredit, reports
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))


def q(**kw: Any) -> reports.Query:
    return reports.Query(**{"start": MARCH.start, "end": MARCH.end, **kw})


async def same_as_raw(conn: asyncpg.Connection) -> None:
    for lookback in (*reports.KEPT_LOOKBACKS, 12):
        for model in reports.MODELS:
            for by in reports.EMAIL_GROUPS:
                query = q(model=model, lookback_days=lookback, by=by)
                kept = await reports.compute(conn, "emails", query)
                assert kept == await reports.compute(conn, "emails", query, naive=True), (lookback, model, by)


async def test_kept_email_credits_equal_the_raw_computation_through_every_change(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    to_a, to_b = await newsletter(crm_conn, m)
    daily = "SELECT count(*) FROM marketing_email_credits_daily WHERE lookback = 30 AND model = 'last'"
    await recredit.catch_up(crm_conn)  # ingestion queued the credits (migration 0071)
    # A's click credits A's lead (6 Mar), and A becoming a customer and A's purchase (both 10 Mar): two days
    assert await crm_conn.fetchval(daily) == 2
    await same_as_raw(crm_conn)

    stored = await crm_conn.fetch("SELECT event FROM touchpoints")
    assert await write_touches(crm_conn, [Touch.parse(r["event"].encode()) for r in stored], now=at(25)) == 0
    await same_as_raw(crm_conn)

    # B's own click on B's e-mail arrives late (3 Mar, before B's lead on 7 Mar), then a second one on A's
    await write_batch(crm_conn, [mail(m.b, "link_click", to_b, "", 3, 9)], now=at(27))
    await write_batch(crm_conn, [mail(m.b, "link_click", to_a, "", 6, 9)], now=at(27))
    sends = {r["send_id"]: r for r in await reports.emails(crm_conn, q(model="last", by="send"))}
    # B's lead's last click is now on A's e-mail; A's e-mail has two clickers, B's one
    assert [(sends[s]["clicks"], sends[s]["leads"]) for s in (to_a, to_b)] == [(2, 2), (1, 0)]
    await same_as_raw(crm_conn)

    # a visitor who clicked A's e-mail early, and became a lead, turns out to be A
    early = new_id()
    await write_batch(crm_conn, [mail(early, "link_click", to_a, "", 2, 8)], now=at(2, 8))
    await write_batch(crm_conn, [form(early, "early@example.com", "AT", at(4))], now=at(4))
    await same_as_raw(crm_conn)
    await merge(crm_conn, m.a, early, 26)
    await same_as_raw(crm_conn)

    await crm_conn.execute(
        "UPDATE purchases SET quantity = 5, purchased_on = '2026-03-09' WHERE person_id = $1", m.a
    )
    await same_as_raw(crm_conn)
    await crm_conn.execute("DELETE FROM purchases WHERE person_id = $1", m.a)
    await same_as_raw(crm_conn)

    await erase(crm_conn, m.b, 27)
    await same_as_raw(crm_conn)
    left = await crm_conn.fetchval("SELECT count(*) FROM marketing_email_credits_daily WHERE touches <= 0")
    assert left == 0


async def test_ad_credits_are_unchanged_by_the_shared_weights(crm_conn: asyncpg.Connection) -> None:
    """marketing_credit (ads) now reads marketing_weights; a person's rows are those of the raw computation."""
    m = await seed(crm_conn)
    await recredit.catch_up(crm_conn)
    rows = await crm_conn.fetch(
        "SELECT kind, lookback, ad_id, w_first, w_last, w_linear, w_position FROM marketing_credits"
        " WHERE person_id = $1 AND lookback = 30 ORDER BY kind, ad_id",
        m.b,
    )
    # B's lead (7 Mar) has three clicks: a2 (2 Mar), a1 (3 Mar), n1 (4 Mar)
    assert [
        (r["ad_id"], float(r["w_first"]), float(r["w_last"]), round(float(r["w_position"]), 4)) for r in rows
    ] == [
        ("a1", 0.0, 0.0, 0.2),
        ("a2", 1.0, 0.0, 0.4),
        ("n1", 0.0, 1.0, 0.4),
    ]
