"""After an erasure (issue 14): the erased person's email, typed into a new form, is refused by its tombstone in the
identity graph, and crm-core keeps it nowhere either (it used to be stored in the new touchpoint's event); replayed
old events bring nothing back; a support form sent that way still opens a case, on the new anonymous person, and
shows its number on the thank-you page."""

from __future__ import annotations

import asyncpg
import pytest

from crm_core.builders import event
from crm_pipeline import Pipeline, eventually, run_pipeline
from e2e.test_erase import rows_holding
from leadline_crm.http import auth
from leadline_crm.ingest.touches import write_batch
from leadline_shared import kafka
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

EMAIL = "erin.erased@shop.example"


async def test_a_refused_email_is_not_kept_in_the_stored_event(crm_conn: asyncpg.Connection) -> None:
    """The graph refused the event's email (a tombstone): neither the person nor the touchpoint holds it."""
    pid = new_id()
    ev = event(pid, "form_submit", form={"key": "contact", "fields": {"email": EMAIL, "message": "hi"}},
               ids={"email": EMAIL})  # fmt: skip
    ev.identity = {"attached": [], "refused": ["email"]}
    assert await write_batch(crm_conn, [ev]) == 1
    stored = await crm_conn.fetchval("SELECT event FROM touchpoints WHERE event_id = $1", ev.event_id)
    assert EMAIL not in stored
    assert '"message":"hi"' in stored.replace(" ", "")
    assert await crm_conn.fetchval("SELECT emails FROM persons WHERE person_id = $1", pid) == []


def _support_form(anon_id: str, ref: str) -> RawEvent:
    return RawEvent(
        event_id=new_id(), type="form_submit", source="form", received_at=utc_now_iso(), anon_id=anon_id,
        ids={"email": EMAIL}, context={"url": "https://shop.example/support", "user_agent": "Mozilla/5.0 Firefox"},
        form={"key": "help", "fields": {"email": EMAIL, "message": "My pump hums", "support_ref": ref}},
    )  # fmt: skip


async def test_erase_then_replay_and_a_new_support_form_with_the_same_email(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics
) -> None:
    async with run_pipeline(kafka_bootstrap, pg_dsn, schema, run_id) as p:
        await _erase_then_submit(p)


async def _erase_then_submit(p: Pipeline) -> None:
    crm = await asyncpg.connect(p.dsn, server_settings={"search_path": p.crm_schema})
    try:
        await crm.execute(
            "INSERT INTO forms (key, fields, thank_you_url, support)"
            """ VALUES ('help', '["email", "message"]', '/support/thanks', true)"""
        )
        first = await p.publish(_support_form("v-erin", "ref-first-0000000000"))

        async def opened(ref: str) -> bool:
            return bool(await crm.fetchval("SELECT 1 FROM cases WHERE form_ref = $1", ref))

        await eventually(lambda: opened("ref-first-0000000000"), "the support form opens a case")
        person = (await p.persons_with(EMAIL))[0]["id"]
        admin = {"Authorization": f"Bearer {await auth.create_token(crm, 'dpo', 'admin')}"}
        resp = await p.crm.post(
            f"/api/v1/persons/{person}/erase", json={"reference": "DSR-14"}, headers=admin
        )
        assert resp.status == 202, await resp.text()

        async def applied() -> bool:
            return bool(await crm.fetchval(
                "SELECT count(*) >= 2 FROM identity_changes WHERE person_id = $1 AND kind = 'erase'", person))  # fmt: skip

        await eventually(applied, "the graph erases the person and crm-core applies its change")
        await p.publish(first)  # the old submission replayed: already stored, nothing comes back
        second = await p.publish(_support_form("v-erin-2", "ref-second-000000000"))
        await eventually(lambda: opened("ref-second-000000000"), "the new submission opens a case")
        assert await rows_holding(p.dsn, [p.crm_schema, p.identity_schema], [EMAIL]) == []
        assert await crm.fetchval("SELECT count(*) FROM cases") == 2
        new = await crm.fetchrow(
            "SELECT person_id, description FROM cases WHERE form_ref = 'ref-second-000000000'"
        )
        assert str(new["person_id"]) != str(person)  # no old history re-attaches
        assert new["description"] == "My pump hums"
        assert await crm.fetchval("SELECT erased_at IS NOT NULL FROM persons WHERE person_id = $1", person)
        touch = await crm.fetchval("SELECT person_id FROM touchpoints WHERE event_id = $1", second.event_id)
        assert str(touch) == str(new["person_id"])
        p.crm.session.cookie_jar.update_cookies({"ll_support_ref": "ref-second-000000000"})
        page = await (await p.crm.get("/support/thanks")).text()
        number = await crm.fetchval(
            "SELECT tracking_number FROM cases WHERE form_ref = 'ref-second-000000000'"
        )
        assert f'id="tracking-number">{number}<' in page
    finally:
        await crm.close()
