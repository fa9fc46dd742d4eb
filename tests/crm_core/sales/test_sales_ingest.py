"""The sales records through ingestion: a web form that makes a lead links it to its email domain's company and
gives it an owner by the form's rule, in the batch's own transaction; a merge takes the merged person's deals and
tasks to the survivor (they would otherwise block the merge: their foreign keys point at the merged person)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from crm_core.builders import NOW, event, form
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touches import write_batch
from leadline_shared.events import IdentityChange, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


async def test_a_form_lead_gets_its_company_and_owner_in_the_batch(crm_conn: asyncpg.Connection) -> None:
    rep = await crm_conn.fetchval(
        "INSERT INTO users (email, name, role) VALUES ('d@x.example', 'Dee', 'sales') RETURNING id"
    )
    company = await crm_conn.fetchval(
        "INSERT INTO companies (name, domain) VALUES ('Acme', 'acme.example') RETURNING id"
    )
    await crm_conn.execute(
        "INSERT INTO assignment_rules (name, form_key, user_id) VALUES ('demo form', 'demo', $1)", rep
    )
    person, freemail = new_id(), new_id()
    await write_batch(
        crm_conn, [form(person, email="Kim@acme.example"), form(freemail, email="kim@gmail.com")], now=NOW
    )
    row = await crm_conn.fetchrow(
        "SELECT stage, owner_id, company_id, company_linked FROM persons WHERE person_id = $1", person
    )
    assert tuple(row) == ("lead", rep, company, "domain")
    other = await crm_conn.fetchrow("SELECT owner_id, company_id FROM persons WHERE person_id = $1", freemail)
    assert tuple(other) == (rep, None)
    # a page view of a known lead moves nothing out of anonymous: no second assignment
    await write_batch(crm_conn, [event(person)], now=NOW)
    assert await crm_conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'assign'") == 2


async def test_a_merge_takes_deals_and_tasks_to_the_survivor(crm_conn: asyncpg.Connection) -> None:
    old, survivor = new_id(), new_id()
    await write_batch(
        crm_conn, [form(old, email="a@b.example"), form(survivor, email="c@d.example")], now=NOW
    )
    pipeline, stage = await crm_conn.fetchrow(
        "SELECT pipeline_id, id FROM pipeline_stages WHERE name = 'Qualified'"
    )
    deal = await crm_conn.fetchval(
        "INSERT INTO deals (title, person_id, pipeline_id, stage_id) VALUES ('Roof', $1, $2, $3) RETURNING id",
        old, pipeline, stage,
    )  # fmt: skip
    await crm_conn.execute(
        "INSERT INTO tasks (title, due_at, person_id, deal_id) VALUES ('Call', $1, $2, $3)",
        NOW + timedelta(days=1),
        old,
        deal,
    )
    change = IdentityChange(
        change_id=new_id(), kind="merge", person_id=survivor, at=utc_now_iso(), merged=[old]
    )
    assert await apply_changes(crm_conn, [change], now=NOW) == 1
    assert await crm_conn.fetchval("SELECT person_id::text FROM deals WHERE id = $1", deal) == survivor
    assert await crm_conn.fetchval("SELECT person_id::text FROM tasks WHERE deal_id = $1", deal) == survivor
