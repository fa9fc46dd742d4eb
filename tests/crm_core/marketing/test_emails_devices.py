"""The emails report counts sends, real opens and clicks (an image proxy's open and a link scanner's click count
nowhere), click-through, and the leads and revenue credited to the sends' links by the attribution model; the
demographics report counts leads and customers by their first visit's device. Both equal their computation from
the raw tables, also after a merge."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest

from crm_core.marketing.dataset import at, form, hit, newsletter, seed
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touches import write_batch
from leadline_crm.marketing import reports
from leadline_crm.marketing.rollups import device
from leadline_shared.events import IdentityChange
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))
IPHONE = {"browser": "Mobile Safari", "os": "iOS", "device": "iPhone", "is_mobile": True}


def q(**kw: Any) -> reports.Query:
    return reports.Query(**{"start": MARCH.start, "end": MARCH.end, **kw})


NEWSLETTER = {
    "campaign": "Newsletter",
    "sends": 2,
    "opens": 1,
    "clicks": 1,
    # A's only e-mail click: A's lead (6 Mar), A becoming a customer and A's purchase (2 x 90) are its own
    "leads": 1,
    "customers": 1,
    "revenue": 180.0,
    "open_rate": 0.5,
    "click_through": 0.5,
    "click_to_open": 1.0,
}


async def test_emails_count_real_opens_and_clicks_and_credit_conversions(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    to_a, to_b = await newsletter(crm_conn, m)
    for model in reports.MODELS:
        [row] = await reports.emails(crm_conn, q(model=model))
        assert row == NEWSLETTER, model
    sends = {r["send_id"]: r for r in await reports.emails(crm_conn, q(by="send"))}
    assert (sends[to_a]["opens"], sends[to_a]["clicks"], sends[to_a]["leads"]) == (1, 1, 1)
    assert (sends[to_b]["sends"], sends[to_b]["opens"], sends[to_b]["clicks"], sends[to_b]["leads"]) == (
        1,
        0,
        0,
        0,
    )
    assert (sends[to_a]["subject"], sends[to_a]["campaign"]) == ("March news", "Newsletter")
    # the newsletter as one mailing: its two sends (A's and B's) on 1 March, its recipient count
    for model in reports.MODELS:
        [mailing] = await reports.emails(crm_conn, q(by="mailing", model=model))
        assert mailing == {**NEWSLETTER, "subject": "March news", "sent_on": "2026-03-01"}, model
    # a lookback of 1 day leaves A's purchase (10 Mar) without the click of 5 Mar
    [short] = await reports.emails(crm_conn, q(lookback_days=1))
    assert (short["leads"], short["revenue"]) == (1, 0)
    assert await reports.emails(crm_conn, reports.Query(date(2026, 4, 1), date(2026, 4, 30))) == []


async def test_emails_and_devices_equal_the_raw_computation_after_a_merge(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    await newsletter(crm_conn, m)
    phone = new_id()
    visit = hit(phone, "page_view", at(2, 9))
    visit.ua = IPHONE
    await write_batch(crm_conn, [visit], now=at(2, 9))
    await write_batch(crm_conn, [form(phone, "d@example.com", "DE", at(9))], now=at(9))
    rows = await reports.demographics(crm_conn, q(by="device"))
    assert rows == [
        {"device": "(unknown)", "leads": 1, "customers": 2},
        {"device": "mobile", "leads": 1, "customers": 0},
    ]
    await same_as_raw(crm_conn)
    # the phone's visitor turns out to be B: B's first visit (2 Mar 11:00) is later than the phone's (9:00)
    await apply_changes(
        crm_conn,
        [
            IdentityChange(
                change_id=new_id(), kind="merge", person_id=m.b, at=at(26).isoformat(), merged=[phone]
            )
        ],
        now=at(26),
    )
    devices = {r["device"]: r for r in await reports.demographics(crm_conn, q(by="device"))}
    assert (devices["mobile"]["leads"], devices["(unknown)"]["customers"]) == (1, 2)
    await same_as_raw(crm_conn)


async def same_as_raw(conn: asyncpg.Connection) -> None:
    for model in reports.MODELS:
        for by in reports.EMAIL_GROUPS:
            query = q(model=model, by=by)
            assert await reports.emails(conn, query) == await reports.emails(conn, query, naive=True), (
                model,
                by,
            )
    query = q(by="device")
    assert await reports.demographics(conn, query) == await reports.demographics(conn, query, naive=True)


UAS = [
    None,
    "not an object",
    {"device": "iPad", "is_mobile": False},
    {"device": "Samsung Galaxy Tablet", "is_mobile": True},
    {"device": "iPhone", "is_mobile": True},
    {"device": "Other", "is_mobile": False},
    {"device": "Other"},
]


async def test_device_classes_agree_between_ingestion_and_sql(crm_conn: asyncpg.Connection) -> None:
    """The fold (Python) and the migration's backfill and raw computation (SQL) class a user agent alike."""
    expected = ["", "", "tablet", "tablet", "mobile", "desktop", "desktop"]
    assert [device({"ua": ua}) for ua in UAS] == expected
    sql = [await crm_conn.fetchval("SELECT marketing_device($1::jsonb)", ua) for ua in UAS]
    assert sql == expected
