"""A lead a rep types in and the same person's web form end up as ONE person in the CRM.

crm-core and the enricher run in this process (aiohttp test servers) on the real broker and database, each on
a schema of its own, wired by this test's topics; the web form is put on capture.raw.v1 as the collector would.
Before crm-core told the identity graph about rep-entered leads, the form made a second person with the email.
A lead the rep forces in beside an existing person with the same email is the opposite case: it must stay apart.
"""

from __future__ import annotations

import asyncpg
import pytest

from crm_pipeline import Pipeline, enriched, eventually

pytestmark = pytest.mark.integration


async def test_a_rep_lead_and_the_persons_later_web_form_are_one_person(pipeline: Pipeline) -> None:
    p = pipeline
    resp = await p.crm.post(
        "/api/v1/leads", json={"email": "Lin@Example.com", "first_name": "Lin"}, headers=p.headers
    )
    assert resp.status == 201
    lead = (await resp.json())["id"]

    [rep_event] = (await enriched(p, 1)).values()  # the graph heard of the lead (through the outbox)
    assert (rep_event.type, rep_event.source, rep_event.person_id) == ("identify", "api", lead)

    form = await p.form("v-lin", email="lin@example.com", name="Lin Form", company="Acme")
    assert (await enriched(p, 2))[form.event_id].person_id == lead  # the graph took the CRM's id

    async def form_is_on_the_lead() -> bool:
        status, doc = await p.get("/api/v1/events", person_id=lead)
        return status == 200 and form.event_id in {e["event_id"] for e in doc["items"]}

    await eventually(form_is_on_the_lead, "the form's touchpoint on the rep's lead")
    [person] = await p.persons_with("lin@example.com")
    assert person["id"] == lead
    assert person["first_name"] == "Lin"  # the rep's entry stays
    assert person["company"] == "Acme"  # the form adds what the rep left out
    assert person["stage"] == "lead"
    status, timeline = await p.get(f"/api/v1/persons/{lead}/timeline")
    assert status == 200
    touchpoints = [i["data"]["type"] for i in timeline["items"] if i["kind"] == "touchpoint"]
    assert sorted(touchpoints) == ["form_submit", "identify"]
    conn = await asyncpg.connect(p.dsn, server_settings={"search_path": p.crm_schema})
    try:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 1
    finally:
        await conn.close()


async def test_a_forced_duplicate_lead_stays_a_person_of_its_own(pipeline: Pipeline) -> None:
    """The form came first; the rep, told the email exists, forces a new lead anyway (two people behind one
    mailbox). Before, the rep's identify event carried the email and the graph merged the new person straight
    back into the form's person, undoing the rep's choice. Now crm-core keeps the shared email out of the event:
    both persons remain, the email's later forms land on its first owner, and the forced person keeps its id
    (and its phone, which nobody else held)."""
    p = pipeline
    form = await p.form("v-kim", email="kim@example.com")
    known = (await enriched(p, 1))[form.event_id].person_id

    async def stored() -> bool:
        return len(await p.persons_with("kim@example.com")) == 1

    await eventually(stored, "the web form's person in the CRM")
    body = {"email": "kim@example.com", "phone": "+1 415 555 2671", "first_name": "Kim"}
    refused = await p.crm.post("/api/v1/leads", json=body, headers=p.headers)
    assert refused.status == 409
    forced = await p.crm.post("/api/v1/leads", json=body | {"force": True}, headers=p.headers)
    assert forced.status == 201
    duplicate = (await forced.json())["id"]
    assert duplicate != known

    rep_event = next(e for e in (await enriched(p, 2)).values() if e.event_id != form.event_id)
    assert (rep_event.type, rep_event.person_id) == ("identify", duplicate)  # the graph kept the CRM's id
    later = await p.form("v-kim-2", email="kim@example.com", name="Kim Later")
    by_phone = await p.form("v-kim-desk", phone="+14155552671")
    events = await enriched(p, 4)
    assert events[later.event_id].person_id == known  # the shared email stays with its first owner
    assert events[by_phone.event_id].person_id == duplicate

    async def touchpoints_landed() -> bool:
        _, on_known = await p.get("/api/v1/events", person_id=known)
        _, on_duplicate = await p.get("/api/v1/events", person_id=duplicate)
        return later.event_id in {e["event_id"] for e in on_known["items"]} and by_phone.event_id in {
            e["event_id"] for e in on_duplicate["items"]
        }

    await eventually(touchpoints_landed, "the later forms' touchpoints on their persons")
    assert {q["id"] for q in await p.persons_with("kim@example.com")} == {known, duplicate}
    status, person = await p.get(f"/api/v1/persons/{duplicate}")
    assert status == 200
    assert (person["first_name"], person["phones"], person["stage"]) == ("Kim", ["+14155552671"], "lead")
    status, owner = await p.get(f"/api/v1/persons/{known}")
    assert status == 200
    assert owner["phones"] == []  # nothing of the rep's lead was folded into the form's person
    conn = await asyncpg.connect(p.dsn, server_settings={"search_path": p.crm_schema})
    try:
        assert await conn.fetchval("SELECT count(*) FROM person_merges") == 0
    finally:
        await conn.close()


async def test_the_owner_of_an_email_a_rep_corrected_is_not_put_on_the_reps_lead(pipeline: Pipeline) -> None:
    """The rep typed jon@ for John, then corrected it to john@. Before, the graph kept jon@ on John's lead, so
    when the real Jon filled a form his visit was put on John: the rep's lead gained a stranger's history."""
    p = pipeline
    resp = await p.crm.post(
        "/api/v1/leads", json={"email": "jon@acme.example", "first_name": "John"}, headers=p.headers
    )
    lead = (await resp.json())["id"]
    fixed = await p.crm.patch(
        f"/api/v1/persons/{lead}", json={"emails": ["john@acme.example"]}, headers=p.headers
    )
    assert fixed.status == 200
    events = await enriched(p, 3)  # identify, unlink, identify: one partition, in this order
    assert sorted(e.type for e in events.values()) == ["identify", "identify", "unlink"]
    assert {e.person_id for e in events.values()} == {lead}

    jon = await p.form("v-jon", email="jon@acme.example", name="Jon")
    john = await p.form("v-john", email="john@acme.example", name="John")
    events = await enriched(p, 5)
    assert events[jon.event_id].person_id != lead  # the real Jon is a person of his own
    assert events[john.event_id].person_id == lead

    async def jon_is_his_own_person() -> bool:
        people = await p.persons_with("jon@acme.example")
        return [x["id"] for x in people] == [events[jon.event_id].person_id]

    async def the_reps_events_are_in() -> bool:
        _, doc = await p.get("/api/v1/events", person_id=lead)
        return sorted(e["type"] for e in doc["items"]) == ["form_submit", "identify", "identify", "unlink"]

    await eventually(jon_is_his_own_person, "the real Jon as his own person in the CRM")
    await eventually(the_reps_events_are_in, "the rep's identify and unlink events on the lead")
    assert [x["id"] for x in await p.persons_with("jon@acme.example")] == [events[jon.event_id].person_id]
    [john_row] = await p.persons_with("john@acme.example")
    assert john_row["id"] == lead
    assert john_row["emails"] == ["john@acme.example"]
