"""Identity conflicts on a person, a rep's confirmed merge and the merge history (issue 12), against crm-core
running on the real broker and database.

The identity graph's side is played by its own messages: ``conflict`` and ``merge`` changes are applied the way
ingestion applies what it reads from identity.changes.v1 (``ingest.identity.apply_changes``), and the merge request
crm-core sends is read back from the real capture.raw.v1. The whole loop through the real enricher is the e2e
test (tests/e2e/test_conflict_merge.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in
from leadline_crm.http.auth import Caller
from leadline_crm.http.keys import POOL
from leadline_crm.http.templating import TEMPLATES
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.people.conflicts import conflicts_of, merges_of
from leadline_shared import kafka
from leadline_shared.events import IdentityChange, RawEvent, merge_request_of, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def lead(client: TestClient, headers: dict[str, str], **body: Any) -> str:
    resp = await client.post("/api/v1/leads", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    person: str = (await resp.json())["id"]
    return person


def conflict(person: str, other: str, event_id: str = "ev-1") -> IdentityChange:
    """What the graph announces when an event carries both persons' emails."""
    return IdentityChange(
        change_id=new_id(),
        kind="conflict",
        person_id=person,
        at=utc_now_iso(),
        identifier={"type": "email"},
        other=other,
        event_id=event_id,
    )


async def apply(pg_dsn: str, schema: str, *changes: IdentityChange) -> None:
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        await apply_changes(conn, list(changes))
    finally:
        await conn.close()


async def get(client: TestClient, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    resp = await client.get(path, headers=headers)
    return resp.status, await resp.json()


async def ok(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    status, doc = await get(client, path, headers)
    assert status == 200, doc
    return doc


async def test_a_conflict_shows_on_both_persons_and_a_confirmed_merge_resolves_it(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str, topics: kafka.Topics, kafka_bootstrap: str
) -> None:
    sales = auth_headers["sales"]
    ann = await lead(client, sales, email="ann@example.com", first_name="Ann")
    bob = await lead(client, sales, email="bob@example.com", first_name="Bob")
    call = await client.post(
        "/api/v1/activities", json={"person_id": bob, "kind": "phone_call"}, headers=sales
    )
    assert call.status == 201, await call.text()
    await apply(pg_dsn, schema, conflict(bob, ann, "ev-1"), conflict(bob, ann, "ev-2"))

    for me, other, name in ((ann, bob, "Bob"), (bob, ann, "Ann")):
        status, doc = await get(client, f"/api/v1/persons/{me}/conflicts", auth_headers["read_only"])
        assert status == 200
        [item] = doc["items"]
        assert (item["other_person_id"], item["other_name"], item["identifier_type"]) == (
            other,
            name,
            "email",
        )
        assert (item["status"], item["seen"], item["event_id"], item["merge_pending"]) == (
            "open",
            2,
            "ev-2",
            False,
        )

    refused = await client.post(f"/api/v1/persons/{ann}/merge", json={"other_person_id": bob}, headers=sales)
    assert refused.status == 422
    assert "confirm" in (await refused.json())["detail"]
    marketer = await client.post(
        f"/api/v1/persons/{ann}/merge",
        json={"other_person_id": bob, "confirm": True},
        headers=auth_headers["marketing"],
    )
    assert marketer.status == 403

    resp = await client.post(
        f"/api/v1/persons/{ann}/merge", json={"other_person_id": bob, "confirm": True}, headers=sales
    )
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert (answer["status"], answer["survivor_id"], answer["merged_id"]) == ("accepted", ann, bob)  # older
    doc = await ok(client, f"/api/v1/persons/{ann}/conflicts", sales)
    assert doc["items"][0]["merge_pending"] is True
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        audited = await conn.fetchrow(
            "SELECT actor, action, entity_id, changes FROM audit_log WHERE action = 'merge'"
        )
    finally:
        await conn.close()
    assert (audited["actor"], audited["entity_id"]) == ("token:t-sales", ann)
    assert orjson.loads(audited["changes"]) == {"merged": bob, "request_id": answer["request_id"]}

    # the request reached the identity graph's topic, through the outbox
    raws = [RawEvent.from_json(v) for _, v, _ in await read_topic(kafka_bootstrap, topics.raw, 3)]
    [request] = [r for r in raws if r.type == "merge"]
    assert merge_request_of(request) == (ann, [bob])
    assert request.event_id == answer["request_id"]
    assert request.key() == f"crm_contact_id:{ann}".encode()

    # ... and the graph's answer is the usual merge change, naming the request
    merge = IdentityChange(
        change_id=new_id(),
        kind="merge",
        person_id=ann,
        at=utc_now_iso(),
        merged=[bob],
        event_id=request.event_id,
    )
    await apply(pg_dsn, schema, merge)
    person = await ok(client, f"/api/v1/persons/{ann}", sales)
    assert sorted(person["emails"]) == ["ann@example.com", "bob@example.com"]
    status, gone = await get(client, f"/api/v1/persons/{bob}", sales)
    assert (status, gone["merged_into"]) == (404, ann)
    timeline = await ok(client, f"/api/v1/persons/{ann}/timeline", sales)
    assert "phone_call" in {i["data"].get("kind") for i in timeline["items"] if i["kind"] == "activity"}
    doc = await ok(client, f"/api/v1/persons/{ann}/conflicts", sales)
    [item] = doc["items"]
    assert (item["status"], item["resolution"], item["resolved_by_change"]) == (
        "resolved",
        "merged",
        merge.change_id,
    )
    doc = await ok(client, f"/api/v1/persons/{ann}/merges", sales)
    [entry] = doc["items"]
    assert (entry["person_id"], entry["change_id"], entry["by"], entry["requester"]) == (
        bob,
        merge.change_id,
        "rep",
        "t-sales",
    )
    assert doc["pending"] == []
    status, gone = await get(client, f"/api/v1/persons/{bob}/merges", sales)
    assert (status, gone["merged_into"]) == (404, ann)


async def test_merging_an_erased_or_unknown_person_is_refused(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    service = auth_headers["service"]
    cy = await lead(client, auth_headers["sales"], email="cy@example.com")
    dee = await lead(client, auth_headers["sales"], email="dee@example.com")
    await apply(pg_dsn, schema, conflict(cy, dee))
    erase = IdentityChange(change_id=new_id(), kind="erase", person_id=dee, at=utc_now_iso())
    await apply(pg_dsn, schema, erase)
    doc = await ok(client, f"/api/v1/persons/{cy}/conflicts", service)
    assert (doc["items"][0]["status"], doc["items"][0]["resolution"]) == ("resolved", "erased")

    body = {"other_person_id": dee, "confirm": True}
    erased = await client.post(f"/api/v1/persons/{cy}/merge", json=body, headers=service)
    assert erased.status == 409
    assert dee in (await erased.json())["detail"]
    nobody = str(uuid.uuid4())
    missing = await client.post(
        f"/api/v1/persons/{cy}/merge", json={"other_person_id": nobody, "confirm": True}, headers=service
    )
    assert missing.status == 404
    itself = await client.post(
        f"/api/v1/persons/{cy}/merge", json={"other_person_id": cy, "confirm": True}, headers=service
    )
    assert itself.status == 422
    assert (await client.get(f"/api/v1/persons/{nobody}/conflicts", headers=service)).status == 404
    # a conflict announced after one of its persons was erased is not opened again
    await apply(pg_dsn, schema, conflict(cy, dee, "ev-late"))
    doc = await ok(client, f"/api/v1/persons/{cy}/conflicts", service)
    assert [i["status"] for i in doc["items"]] == ["resolved"]


async def test_a_merged_persons_conflicts_move_to_the_survivor(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    """An automatic merge (a cookie that was the other person all along) keeps the conflict with a third person
    open, now on the survivor; the merge history says it was automatic."""
    sales = auth_headers["sales"]
    eve, fay, gus = [await lead(client, sales, email=f"{n}@example.com") for n in ("eve", "fay", "gus")]
    await apply(pg_dsn, schema, conflict(fay, gus), conflict(eve, gus))
    merge = IdentityChange(change_id=new_id(), kind="merge", person_id=eve, at=utc_now_iso(), merged=[fay])
    await apply(pg_dsn, schema, merge)
    doc = await ok(client, f"/api/v1/persons/{eve}/conflicts", sales)
    [item] = doc["items"]
    assert (item["other_person_id"], item["status"], item["seen"]) == (gus, "open", 2)
    doc = await ok(client, f"/api/v1/persons/{eve}/merges", sales)
    assert [(m["person_id"], m["by"]) for m in doc["items"]] == [(fay, "automatic")]


async def test_the_person_page_partials_and_the_merge_form(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    """What the lead engineer's person page includes: the conflicts with a merge form (CSRF field, a confirm
    box, data-confirm) and the merge history; the form's post redirects back with a notice."""
    sales = auth_headers["sales"]
    hal = await lead(client, sales, email="hal@example.com", first_name="Hal")
    ivy = await lead(client, sales, email="ivy@example.com", first_name="<script>x</script>")
    await apply(pg_dsn, schema, conflict(hal, ivy))
    pool = client.server.app[POOL]
    found, merged = await conflicts_of(pool, uuid.UUID(hal)), await merges_of(pool, uuid.UUID(hal))
    env = client.server.app[TEMPLATES]
    context = {
        "pid": hal,
        "conflicts": found,
        "merges": merged,
        "csrf": "tok",
        "caller": Caller("Rita", "sales"),
    }
    html = env.get_template("people/_conflicts.html").render(context)
    assert f'action="/app/persons/{hal}/merge"' in html
    assert 'name="_csrf" value="tok"' in html
    assert 'name="confirm"' in html
    assert "data-confirm=" in html
    assert f'href="/app/persons/{ivy}"' in html
    assert "<script>x" not in html
    assert "&lt;script&gt;x" in html
    reader = env.get_template("people/_conflicts.html").render(
        context | {"caller": Caller("Rob", "read_only")}
    )
    assert "<form" not in reader
    assert "No person was merged" in env.get_template("people/_merges.html").render(context)

    await sign_in(client, sales)
    token = await csrf_of(client)
    unconfirmed = await client.post(
        f"/app/persons/{hal}/merge", data={"_csrf": token, "other_person_id": ivy}, allow_redirects=False
    )
    assert unconfirmed.status == 303
    assert unconfirmed.headers["Location"].startswith(f"/app/persons/{hal}?notice=Nothing+merged")
    no_csrf = await client.post(
        f"/app/persons/{hal}/merge", data={"other_person_id": ivy, "confirm": "1"}, allow_redirects=False
    )
    assert no_csrf.status == 403
    done = await client.post(
        f"/app/persons/{hal}/merge",
        data={"_csrf": token, "other_person_id": ivy, "confirm": "1", "keep": "other"},
        allow_redirects=False,
    )
    assert done.status == 303
    assert done.headers["Location"].startswith(f"/app/persons/{ivy}?notice=Merge+requested")
    doc = await ok(client, f"/api/v1/persons/{hal}/merges", sales)
    assert [(p["survivor"], p["merged"]) for p in doc["pending"]] == [(ivy, hal)]


async def test_a_request_overtaken_by_another_merge_is_no_longer_pending(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    """The graph made the two one person before it read the rep's request (which then changes nothing): the
    request does not stay pending forever, and the history tells the merge was automatic."""
    sales = auth_headers["sales"]
    jo, kim = [await lead(client, sales, email=f"{n}@example.com") for n in ("jo", "kim")]
    body = {"other_person_id": kim, "confirm": True}
    assert (await client.post(f"/api/v1/persons/{jo}/merge", json=body, headers=sales)).status == 202
    assert len((await ok(client, f"/api/v1/persons/{jo}/merges", sales))["pending"]) == 1
    merge = IdentityChange(change_id=new_id(), kind="merge", person_id=jo, at=utc_now_iso(), merged=[kim])
    await apply(pg_dsn, schema, merge)
    doc = await ok(client, f"/api/v1/persons/{jo}/merges", sales)
    assert doc["pending"] == []
    assert [(m["person_id"], m["by"]) for m in doc["items"]] == [(kim, "automatic")]
