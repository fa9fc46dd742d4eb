"""Two web forms that make an identity conflict, and the rep's confirmed merge, through the real pipeline (issue 12).

Ann filled a form with her email, Bob with his; then Ann's browser sent a form with Bob's email. The graph never
merges two persons who each hold an email, so before this the CRM showed two persons and no rep could tell or
fix it. Now the conflict shows on both persons; a rep who confirms they are one asks for the merge, the identity
graph (which owns merges) performs it, and crm-core folds Bob into Ann: one person with both emails and the
whole history, a merge history naming the rep's merge, and the conflict resolved. Later forms with either email
land on the survivor.
"""

from __future__ import annotations

import pytest

from crm_pipeline import Pipeline, enriched, eventually

pytestmark = pytest.mark.integration


async def test_two_forms_make_a_conflict_and_a_confirmed_merge_makes_one_person(pipeline: Pipeline) -> None:
    p = pipeline
    first = await p.form("v-ann", email="ann@example.com", name="Ann Lee")
    second = await p.form("v-bob", email="bob@example.com", name="Bob Ray")
    events = await enriched(p, 2)
    ann, bob = events[first.event_id].person_id, events[second.event_id].person_id
    assert ann != bob
    clash = await p.form("v-ann", email="bob@example.com", name="Ann Lee")
    assert (await enriched(p, 3))[clash.event_id].person_id == bob  # not merged: the event stays on Bob

    async def conflict_on_both() -> bool:
        found = []
        for me, other in ((ann, bob), (bob, ann)):
            status, doc = await p.get(f"/api/v1/persons/{me}/conflicts")
            found.append(
                status == 200
                and [(i["other_person_id"], i["status"], i["identifier_type"]) for i in doc["items"]]
                == [(other, "open", "email")]
            )
        return all(found)

    await eventually(conflict_on_both, "the conflict on both persons")
    status, doc = await p.get(f"/api/v1/persons/{ann}/conflicts")
    assert doc["items"][0]["event_id"] == clash.event_id

    unconfirmed = await p.crm.post(
        f"/api/v1/persons/{bob}/merge", json={"other_person_id": ann}, headers=p.headers
    )
    assert unconfirmed.status == 422
    resp = await p.crm.post(
        f"/api/v1/persons/{bob}/merge", json={"other_person_id": ann, "confirm": True}, headers=p.headers
    )
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert (answer["survivor_id"], answer["merged_id"]) == (ann, bob)  # the older person keeps its id

    async def merged() -> bool:
        status, doc = await p.get(f"/api/v1/persons/{bob}")
        return status == 404 and doc.get("merged_into") == ann

    await eventually(merged, "Bob folded into Ann")
    status, person = await p.get(f"/api/v1/persons/{ann}")
    assert status == 200
    assert sorted(person["emails"]) == ["ann@example.com", "bob@example.com"]
    status, doc = await p.get("/api/v1/events", person_id=ann)
    on_ann = {e["event_id"] for e in doc["items"]}
    assert {first.event_id, second.event_id, clash.event_id, answer["request_id"]} <= on_ann
    status, doc = await p.get(f"/api/v1/persons/{ann}/merges")
    [entry] = doc["items"]
    assert (entry["person_id"], entry["by"]) == (bob, "rep")
    assert doc["pending"] == []
    status, doc = await p.get(f"/api/v1/persons/{ann}/conflicts")
    assert [(i["status"], i["resolution"]) for i in doc["items"]] == [("resolved", "merged")]

    later = await p.form("v-bob-2", email="bob@example.com")
    assert (await enriched(p, 5))[later.event_id].person_id == ann  # the merge request was the 4th
    assert [x["id"] for x in await p.persons_with("bob@example.com")] == [ann]
