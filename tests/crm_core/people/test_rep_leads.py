"""What a rep types in about who someone is reaches the identity graph: identify events on capture.raw.v1.

Without them a lead entered by hand was unknown to the enricher, and the person's next web form made a second
person with the same email. Each event carries ``crm_contact_id`` (the CRM's person id) beside the email and
phone, keyed by that id, and goes through the outbox with the change itself (see test_outbox.py). An email or
phone another person already holds (a forced duplicate, a PATCH) is left out, so the graph keeps them apart.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in
from leadline_shared import kafka
from leadline_shared.events import RawEvent
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_a_lead_a_rep_enters_is_announced_to_the_enricher_with_its_crm_id(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Without this event the person's next web form made a second person with the same email."""
    sales = auth_headers["sales"]
    resp = await client.post(
        "/api/v1/leads",
        json={"email": "Lin@Example.com", "phone": "+44 20 7946 0958", "first_name": "Lin"},
        headers=sales,
    )
    assert resp.status == 201
    person = (await resp.json())["id"]
    dup = await client.post("/api/v1/leads", json={"email": "lin@example.com"}, headers=sales)
    assert dup.status == 409  # refused: owes nothing

    [(key, value, _)] = await read_topic(kafka_bootstrap, topics.raw, 1)
    event = RawEvent.from_json(value)
    assert key == f"crm_contact_id:{person}".encode()
    assert (event.type, event.source, event.anon_id) == ("identify", "api", None)
    assert event.ids == {"crm_contact_id": person, "email": "lin@example.com", "phone": "+442079460958"}
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 1, wait=1.0) == 1


async def test_a_rep_adding_an_email_or_phone_announces_only_the_new_ones(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """A PATCH that adds contact details tells the identity graph; one that changes other facts says nothing."""
    sales = auth_headers["sales"]
    resp = await client.post("/api/v1/leads", json={"email": "kai@example.com"}, headers=sales)
    person = (await resp.json())["id"]
    url = f"/api/v1/persons/{person}"
    assert (await client.patch(url, json={"company": "Acme"}, headers=sales)).status == 200
    change = {"emails": ["kai@example.com", "KAI@work.example"], "phones": ["+1 415 555 2671"]}
    assert (await client.patch(url, json=change, headers=sales)).status == 200

    messages = await read_topic(kafka_bootstrap, topics.raw, 2)
    events = [RawEvent.from_json(v) for _, v, _ in messages]
    assert {k for k, _, _ in messages} == {f"crm_contact_id:{person}".encode()}
    assert events[0].ids == {"crm_contact_id": person, "email": "kai@example.com"}
    assert events[1].ids == {"crm_contact_id": person, "email": "kai@work.example", "phone": "+14155552671"}
    assert events[1].properties == {"action": "contact_changed"}
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 2, wait=1.0) == 2


async def test_a_rep_correcting_a_typo_tells_the_graph_to_let_the_old_email_go(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Without the unlink the graph kept the typo on this lead, and its real owner's visits landed here."""
    sales = auth_headers["sales"]
    resp = await client.post(
        "/api/v1/leads", json={"email": "jon@acme.example", "phone": "+1 415 555 2671"}, headers=sales
    )
    person = (await resp.json())["id"]
    fixed = {"emails": ["john@acme.example"], "phones": []}
    assert (await client.patch(f"/api/v1/persons/{person}", json=fixed, headers=sales)).status == 200

    messages = await read_topic(kafka_bootstrap, topics.raw, 3)
    events = [RawEvent.from_json(v) for _, v, _ in messages]
    assert {k for k, _, _ in messages} == {f"crm_contact_id:{person}".encode()}  # one partition, in order
    assert [(e.type, e.ids) for e in events] == [
        ("identify", {"crm_contact_id": person, "email": "jon@acme.example", "phone": "+14155552671"}),
        ("unlink", {"crm_contact_id": person, "email": "jon@acme.example", "phone": "+14155552671"}),
        ("identify", {"crm_contact_id": person, "email": "john@acme.example"}),
    ]
    assert events[1].properties == {"action": "contact_removed"}
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 3, wait=1.0) == 3


async def test_a_lead_entered_in_the_web_app_is_announced_too(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    await sign_in(client, "sales")
    form = {"phone": "+44 20 7946 0958", "_csrf": await csrf_of(client)}
    created = await client.post("/app/leads", data=form, allow_redirects=False)
    assert created.status == 303
    person = created.headers["Location"].rsplit("/", 1)[1]
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.raw, 1)
    assert RawEvent.from_json(value).ids == {"crm_contact_id": person, "phone": "+442079460958"}


def by_person(events: list[RawEvent]) -> dict[str, list[dict[str, str]]]:
    """Each CRM person's announced ids, in order: one person's events share a key (and a partition), two
    persons' events may be read in either order."""
    found: dict[str, list[dict[str, str]]] = {}
    for event in events:
        found.setdefault(event.ids["crm_contact_id"], []).append(event.ids)
    return found


async def test_a_forced_duplicate_lead_does_not_claim_the_email_or_phone_another_person_holds(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """The rep, told the email exists, creates the lead anyway (two people behind one info@ mailbox). Announcing
    the email would make the enricher merge the new person straight back into the owner; the phone nobody holds
    is still announced, and so is the CRM id."""
    sales = auth_headers["sales"]
    first = await client.post("/api/v1/leads", json={"email": "info@acme.example"}, headers=sales)
    owner = (await first.json())["id"]
    body = {"email": "Info@Acme.example", "phone": "+1 415 555 2671", "first_name": "Ann"}
    assert (await client.post("/api/v1/leads", json=body, headers=sales)).status == 409
    forced = await client.post("/api/v1/leads", json=body | {"force": True}, headers=sales)
    assert forced.status == 201
    doc = await forced.json()
    assert doc["emails"] == ["info@acme.example"]  # crm-core keeps it: the rep finds both persons by it

    events = [RawEvent.from_json(v) for _, v, _ in await read_topic(kafka_bootstrap, topics.raw, 2)]
    assert by_person(events) == {
        owner: [{"crm_contact_id": owner, "email": "info@acme.example"}],
        doc["id"]: [{"crm_contact_id": doc["id"], "phone": "+14155552671"}],
    }
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 2, wait=1.0) == 2


async def test_a_forced_duplicate_in_the_web_app_does_not_claim_the_shared_phone(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """The web app's "create a new lead anyway" box goes through the same rule as the API's force."""
    sales = auth_headers["sales"]
    first = await client.post("/api/v1/leads", json={"phone": "+44 20 7946 0958"}, headers=sales)
    owner = (await first.json())["id"]
    await sign_in(client, "sales")
    form = {
        "phone": "+44 20 7946 0958",
        "email": "desk@acme.example",
        "first_name": "Bo",
        "_csrf": await csrf_of(client),
    }
    refused = await client.post("/app/leads", data=form, allow_redirects=False)
    assert refused.status == 409
    assert "create a new lead anyway" in await refused.text()
    created = await client.post("/app/leads", data=form | {"force": "1"}, allow_redirects=False)
    assert created.status == 303
    person = created.headers["Location"].rsplit("/", 1)[1]
    assert person != owner

    events = [RawEvent.from_json(v) for _, v, _ in await read_topic(kafka_bootstrap, topics.raw, 2)]
    assert by_person(events) == {
        owner: [{"crm_contact_id": owner, "phone": "+442079460958"}],
        person: [{"crm_contact_id": person, "email": "desk@acme.example"}],
    }


async def test_a_patch_adding_another_persons_email_stores_it_without_announcing_it(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """PATCH has no duplicate check (it accepts the value, as before); it must not merge the two persons
    behind the rep's back either, so only the values nobody else holds reach the identity graph."""
    sales = auth_headers["sales"]
    first = await client.post("/api/v1/leads", json={"email": "info@acme.example"}, headers=sales)
    owner = (await first.json())["id"]
    second = await client.post("/api/v1/leads", json={"email": "bo@acme.example"}, headers=sales)
    person = (await second.json())["id"]
    url = f"/api/v1/persons/{person}"
    shared = await client.patch(url, json={"emails": ["bo@acme.example", "INFO@acme.example"]}, headers=sales)
    assert shared.status == 200
    assert (await shared.json())["emails"] == ["bo@acme.example", "info@acme.example"]
    change = {"emails": ["bo@acme.example", "info@acme.example"], "phones": ["+1 415 555 2671"]}
    assert (await client.patch(url, json=change, headers=sales)).status == 200

    events = [RawEvent.from_json(v) for _, v, _ in await read_topic(kafka_bootstrap, topics.raw, 3)]
    assert by_person(events) == {
        owner: [{"crm_contact_id": owner, "email": "info@acme.example"}],
        person: [
            {"crm_contact_id": person, "email": "bo@acme.example"},
            {"crm_contact_id": person, "phone": "+14155552671"},  # the shared email's PATCH announced nothing
        ],
    }
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 3, wait=1.0) == 3


async def test_a_rep_can_enter_what_a_web_form_accepts_and_the_duplicate_check_sees_one_address(
    client: TestClient, auth_headers: H, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Forms took ``zoë@exämple.com`` and ``(415) 555-0123`` while this API refused both (issue 11, item 2)."""
    sales = auth_headers["sales"]
    resp = await client.post(
        "/api/v1/leads", json={"email": "Zoë@Exämple.com", "phone": "(415) 555-0123"}, headers=sales
    )
    assert resp.status == 201, await resp.text()
    person = await resp.json()
    assert (person["emails"], person["phones"]) == (["zoë@exämple.com"], ["+14155550123"])
    same = await client.post("/api/v1/leads", json={"email": "ZOË@xn--exmple-cua.com"}, headers=sales)
    assert same.status == 409  # one address, whichever way it is spelled
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.raw, 1)
    assert RawEvent.from_json(value).ids["email"] == "zoë@exämple.com"  # the key the enricher will use
    bad = await client.post("/api/v1/leads", json={"email": "not-an-address"}, headers=sales)
    assert bad.status == 422
    assert "email" in (await bad.json())["detail"]
