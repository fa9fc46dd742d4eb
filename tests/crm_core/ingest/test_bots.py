"""Bots, link scanners and image proxies never score and never move a stage (issue 11): their events stay in the
history and on the timeline, marked, and count for nothing, neither when ingested nor when a merge recomputes
the person from the history. A form posted by a backend (a plain HTTP client) still makes a lead."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from crm_core.builders import event, form
from leadline_crm import lifecycle
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touches import write_batch
from leadline_shared.events import EnrichedEvent, IdentityChange, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

GOOGLEBOT = {"is_bot": True, "indicators": ["crawler_list", "ua_spider"]}
SCANNER = {"is_bot": True, "indicators": ["click_soon_after_send"]}
IMAGE_PROXY = {"is_bot": False, "indicators": [], "image_proxy": True}
PLAIN_CLIENT = {"is_bot": True, "indicators": ["crawler_list"]}  # curl, python-requests
PRICING = {"url": "https://shop.example/pricing", "user_agent": "Googlebot"}


def marked(ev: EnrichedEvent, bot: dict[str, Any]) -> EnrichedEvent:
    ev.bot = bot
    return ev


async def person(conn: asyncpg.Connection, pid: str) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM persons WHERE person_id = $1", pid)


async def test_googlebot_page_views_neither_score_nor_make_a_prospect(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    await write_batch(crm_conn, [form(pid, email="gb@example.com", minutes_ago=60 * 24 * 4)])
    views = [marked(event(pid, minutes_ago=60 * 24 * d, context=PRICING), GOOGLEBOT) for d in range(4)]
    assert await write_batch(crm_conn, views) == 4
    p = await person(crm_conn, pid)
    assert p["score"] == pytest.approx(20 * 0.5 ** (4 / 30), rel=1e-3)  # the form alone
    assert (p["stage"], p["visit_days"], p["clicked"]) == ("lead", 0, False)
    automated = await crm_conn.fetch("SELECT automated FROM touchpoints WHERE person_id = $1", pid)
    assert sorted(r[0] for r in automated) == [False, True, True, True, True]


async def test_scanner_clicks_and_image_proxy_opens_count_for_nothing(crm_conn: asyncpg.Connection) -> None:
    await crm_conn.execute(
        "INSERT INTO score_rules (name, event_type, points) VALUES ('open', 'email_open', 10)"
    )
    pid = new_id()
    await write_batch(crm_conn, [form(pid, email="sc@example.com")])
    link = {"campaign_id": "c1", "send_id": "s1", "target": "https://x.example/"}
    noise = [marked(event(pid, "link_click", link=link), SCANNER) for _ in range(4)]
    noise += [marked(event(pid, "email_open"), IMAGE_PROXY) for _ in range(2)]
    noise.append(marked(event(pid, "ad_click", affiliate={"affiliate_id": "a", "ad_id": "b"}), GOOGLEBOT))
    assert await write_batch(crm_conn, noise) == 7
    p = await person(crm_conn, pid)
    assert p["score"] == pytest.approx(20, rel=1e-3)
    assert (p["stage"], p["clicked"]) == ("lead", False)
    moves = await crm_conn.fetchval("SELECT count(*) FROM stage_transitions WHERE person_id = $1", pid)
    assert moves == 1  # anonymous → lead, by the form
    human = event(pid, "link_click", link=link)
    await write_batch(crm_conn, [human])
    assert (await person(crm_conn, pid))["stage"] == "prospect"


async def test_a_bots_form_identifies_nobody_but_a_backends_form_still_makes_a_lead(
    crm_conn: asyncpg.Connection,
) -> None:
    spam, backend = new_id(), new_id()
    await write_batch(
        crm_conn,
        [
            marked(form(spam, email="spam@example.com", name="Spam Bot"), GOOGLEBOT),
            marked(form(backend, email="be@example.com", name="Bea End"), PLAIN_CLIENT),
        ],
    )
    s, b = await person(crm_conn, spam), await person(crm_conn, backend)
    assert (s["stage"], s["emails"], s["first_name"], s["score"]) == ("anonymous", [], None, 0)
    assert (b["stage"], b["emails"], b["first_name"]) == ("lead", ["be@example.com"], "Bea")


async def test_a_merge_recomputes_the_person_without_the_bots_touchpoints(
    crm_conn: asyncpg.Connection,
) -> None:
    known, cookie = new_id(), new_id()
    await write_batch(crm_conn, [form(known, email="mg@example.com")])
    views = [marked(event(cookie, minutes_ago=60 * 24 * d, context=PRICING), GOOGLEBOT) for d in range(4)]
    ad = marked(event(cookie, "ad_click", affiliate={"affiliate_id": "a"}), GOOGLEBOT)
    await write_batch(crm_conn, [*views, ad])
    change = IdentityChange(
        change_id=new_id(), kind="merge", person_id=known, at=utc_now_iso(), merged=[cookie]
    )
    assert await apply_changes(crm_conn, [change]) == 1
    p = await person(crm_conn, known)
    assert p["score"] == pytest.approx(20, rel=1e-3)
    assert (p["stage"], p["visit_days"], p["clicked"]) == ("lead", 0, False)


@pytest.mark.parametrize(
    ("event_type", "source", "bot", "expected"),
    [
        ("page_view", "pixel", GOOGLEBOT, True),
        ("page_view", "pixel", {"is_bot": True, "indicators": ["no_user_agent"]}, True),
        ("link_click", "link", SCANNER, True),
        ("email_open", "pixel", IMAGE_PROXY, True),
        ("form_submit", "form", PLAIN_CLIENT, False),
        ("form_submit", "form", GOOGLEBOT, True),
        ("identify", "segment", PLAIN_CLIENT, False),
        ("track", "segment", PLAIN_CLIENT, False),
        ("page_view", "segment", GOOGLEBOT, True),
        ("page_view", "pixel", {"is_bot": False, "indicators": []}, False),
        ("page_view", "pixel", None, False),
    ],
)
def test_what_counts_as_automated(event_type: str, source: str, bot: Any, expected: bool) -> None:
    assert lifecycle.automated(event_type, source, bot) is expected
