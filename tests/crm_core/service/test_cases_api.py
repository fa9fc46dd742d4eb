"""Cases through the REST API against the real PostgreSQL: tracking numbers that stay unique under concurrent
creation, the status machine (an illegal move is a 409 naming the allowed ones), the due time from the contract's
service level, comments, the queue's filters and paging, the person's timeline, and who may do what."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from crm_core.service.helpers import api, case, person
from crm_core.web import sign_in
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_200_concurrent_creations_get_200_distinct_numbers_of_this_year(
    client: TestClient, auth_headers: H
) -> None:
    """Customers quote their number: two cases must never share one, however many agents open cases at once."""
    pid = await person(client, auth_headers["sales"], "many@example.com")
    docs = await asyncio.gather(
        *(case(client, auth_headers["service"], pid, subject=f"n{i}") for i in range(200))
    )
    numbers = [d["tracking_number"] for d in docs]
    assert len(set(numbers)) == 200
    year = datetime.now(UTC).year
    assert all(re.fullmatch(rf"SR-{year}-\d{{6}}", n) for n in numbers)
    assert sorted(int(n[-6:]) for n in numbers) == list(range(1, 201))  # the sequence has no gap either


async def test_a_case_is_found_by_its_number_and_an_unknown_number_is_404(
    client: TestClient, auth_headers: H
) -> None:
    pid = await person(client, auth_headers["sales"], "find@example.com")
    made = await case(client, auth_headers["sales"], pid, type="complaint", priority="high")
    got = await api(client, "GET", f"/api/v1/cases/{made['tracking_number']}", auth_headers["read_only"], 200)
    assert (got["type"], got["priority"], got["status"], got["person_id"]) == (
        "complaint",
        "high",
        "new",
        pid,
    )
    resp = await client.get("/api/v1/cases/SR-1999-999999", headers=auth_headers["read_only"])
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert (await client.get("/api/v1/cases/nonsense", headers=auth_headers["admin"])).status == 404


async def test_status_moves_follow_the_machine_and_an_illegal_one_is_409_with_the_allowed(
    client: TestClient, auth_headers: H
) -> None:
    h = auth_headers["service"]
    pid = await person(client, auth_headers["sales"], "moves@example.com")
    number = (await case(client, h, pid))["tracking_number"]
    path = f"/api/v1/cases/{number}/status"
    refused = await api(client, "POST", path, h, 409, json={"status": "closed"})
    assert refused["allowed"] == ["open", "waiting", "resolved"]
    assert "cannot move to closed" in refused["detail"]
    for to in ("open", "waiting", "open", "resolved", "closed", "open"):  # the last one reopens
        doc = await api(client, "POST", path, h, 200, json={"status": to})
        assert doc["status"] == to
    assert doc["resolved_at"] is None  # reopened
    await api(client, "POST", path, h, 422, json={"status": "lost"})


async def test_the_due_time_comes_from_the_contracts_service_level(
    client: TestClient, auth_headers: H
) -> None:
    h = auth_headers["service"]
    pid = await person(client, auth_headers["sales"], "sla@example.com")
    today = date.today()
    contract = await api(client, "POST", "/api/v1/contracts", h, 201, json={
        "person_id": pid, "name": "Gold", "starts_on": str(today - timedelta(days=10)),
        "ends_on": str(today + timedelta(days=20)), "response_hours": 4})  # fmt: skip
    named = await case(client, h, pid, contract_id=contract["id"])
    covered = await case(client, h, pid)  # no contract named: the one covering today
    for doc in (named, covered):
        assert doc["contract_id"] == contract["id"]
        due = datetime.fromisoformat(doc["due_at"]) - datetime.fromisoformat(doc["created_at"])
        assert due == timedelta(hours=4)
    other = await person(client, auth_headers["sales"], "other@example.com")
    refused = await api(client, "POST", "/api/v1/cases", h, 422, json={
        "person_id": other, "type": "question", "subject": "s", "description": "d", "contract_id": contract["id"]})  # fmt: skip
    assert "another person" in refused["detail"]
    plain = await case(client, h, other)
    due = datetime.fromisoformat(plain["due_at"]) - datetime.fromisoformat(plain["created_at"])
    assert due == timedelta(hours=72)
    assert plain["contract_id"] is None


async def test_contract_periods_and_renewals(client: TestClient, auth_headers: H) -> None:
    h = auth_headers["service"]
    pid = await person(client, auth_headers["sales"], "renew@example.com")
    today = date.today()
    bad = await api(client, "POST", "/api/v1/contracts", h, 422, json={
        "person_id": pid, "name": "Backwards", "starts_on": str(today), "ends_on": str(today - timedelta(days=1))})  # fmt: skip
    assert "ends_on" in bad["detail"]
    for name, days in (("Soon", 12), ("Later", 90)):
        await api(client, "POST", "/api/v1/contracts", h, 201, json={
            "person_id": pid, "name": name, "starts_on": str(today - timedelta(days=300)),
            "ends_on": str(today + timedelta(days=days))})  # fmt: skip
    due = await api(client, "GET", "/api/v1/contracts/renewals", auth_headers["read_only"], 200)
    assert [c["name"] for c in due["items"]] == ["Soon"]
    await api(client, "POST", "/api/v1/contracts", auth_headers["sales"], 403, json={
        "person_id": pid, "name": "x", "starts_on": str(today), "ends_on": str(today)})  # fmt: skip


async def test_comments_assignee_queue_filters_and_paging(client: TestClient, auth_headers: H) -> None:
    h = auth_headers["service"]
    pid = await person(client, auth_headers["sales"], "queue@example.com")
    pool = client.server.app[POOL]
    rep = str(await pool.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'"))
    made = [await case(client, h, pid, type=t) for t in ("question", "complaint", "fault", "return", "fault")]
    number = made[0]["tracking_number"]
    await api(
        client, "PATCH", f"/api/v1/cases/{number}", h, 200, json={"assignee_id": rep, "priority": "urgent"}
    )
    await api(
        client,
        "POST",
        f"/api/v1/cases/{number}/comments",
        h,
        201,
        json={"body": "Called back", "public": True},
    )
    await api(client, "POST", f"/api/v1/cases/{number}/comments", h, 201, json={"body": "Internal note"})
    got = await api(client, "GET", f"/api/v1/cases/{number}", h, 200)
    assert [(c["body"], c["public"]) for c in got["comments"]] == [
        ("Called back", True),
        ("Internal note", False),
    ]
    assert got["assignee_id"] == rep
    assert got["priority"] == "urgent"

    faults = await api(client, "GET", "/api/v1/cases?type=fault", h, 200)
    assert len(faults["items"]) == 2
    mine = await api(client, "GET", f"/api/v1/cases?assignee={rep}", h, 200)
    assert [c["tracking_number"] for c in mine["items"]] == [number]
    await api(
        client, "POST", f"/api/v1/cases/{made[1]['tracking_number']}/status", h, 200, json={"status": "open"}
    )
    assert len((await api(client, "GET", "/api/v1/cases?status=open", h, 200))["items"]) == 1
    await pool.execute(
        "UPDATE cases SET due_at = now() - interval '1 hour' WHERE tracking_number = $1",
        made[2]["tracking_number"],
    )
    overdue = await api(client, "GET", "/api/v1/cases?overdue=true", h, 200)
    assert [c["tracking_number"] for c in overdue["items"]] == [made[2]["tracking_number"]]
    assert overdue["items"][0]["overdue"] is True

    seen, cursor = [], None
    while True:
        page = await api(
            client, "GET", "/api/v1/cases?limit=2" + (f"&cursor={cursor}" if cursor else ""), h, 200
        )
        seen += [c["tracking_number"] for c in page["items"]]
        if not (cursor := page["next"]):
            break
    assert seen == [c["tracking_number"] for c in reversed(made)]
    await api(client, "GET", "/api/v1/cases?status=lost", h, 422)


async def test_the_queue_filters_by_age(client: TestClient, auth_headers: H) -> None:
    """An agent looks for the cases left waiting longest: opened more than N days ago, in the API and the page,
    also together with the customer's filter."""
    h = auth_headers["service"]
    pid = await person(client, auth_headers["sales"], "age@example.com")
    other = await person(client, auth_headers["sales"], "young@example.com")
    made = [
        (await case(client, h, p, subject=f"Case {i}"))["tracking_number"]
        for i, p in enumerate((pid, pid, other))
    ]
    await client.server.app[POOL].execute(
        "UPDATE cases SET created_at = now() - make_interval(days => $2) WHERE tracking_number = $1",
        made[0],
        10,
    )
    await client.server.app[POOL].execute(
        "UPDATE cases SET created_at = now() - make_interval(days => $2) WHERE tracking_number = $1",
        made[2],
        4,
    )
    week = await api(client, "GET", "/api/v1/cases?older_than=7", h, 200)
    assert [c["tracking_number"] for c in week["items"]] == [made[0]]
    three = await api(client, "GET", "/api/v1/cases?older_than=3", h, 200)
    assert [c["tracking_number"] for c in three["items"]] == [made[2], made[0]]
    theirs = await api(client, "GET", f"/api/v1/cases?older_than=3&person_id={pid}", h, 200)
    assert [c["tracking_number"] for c in theirs["items"]] == [made[0]]
    for bad in ("soon", "-1", "99999"):
        await api(client, "GET", f"/api/v1/cases?older_than={bad}", h, 422)
    await sign_in(client, "service")
    page = await (await client.get("/app/cases?older_than=7")).text()
    assert f'data-case="{made[0]}"' in page
    assert f'data-case="{made[1]}"' not in page
    assert '<option value="7" selected>older than a week</option>' in page
    bad = await client.get("/app/cases?older_than=%3Cb%3E")
    assert bad.status == 422
    assert "older_than must be a number of days" in await bad.text()


async def test_roles_read_only_and_marketing_cannot_open_or_move_cases(
    client: TestClient, auth_headers: H
) -> None:
    pid = await person(client, auth_headers["sales"], "roles@example.com")
    body = {"person_id": pid, "type": "question", "subject": "s", "description": "d"}
    for role in ("read_only", "marketing"):
        await api(client, "POST", "/api/v1/cases", auth_headers[role], 403, json=body)
    number = (await case(client, auth_headers["sales"], pid))["tracking_number"]
    await api(
        client,
        "POST",
        f"/api/v1/cases/{number}/status",
        auth_headers["read_only"],
        403,
        json={"status": "open"},
    )
    await api(client, "GET", f"/api/v1/cases/{number}", auth_headers["marketing"], 200)
    await api(
        client, "POST", "/api/v1/kb/articles", auth_headers["sales"], 403, json={"title": "t", "body": "b"}
    )
    assert (await client.get("/api/v1/cases")).status == 401


async def test_the_persons_timeline_shows_the_case_and_its_moves(client: TestClient, auth_headers: H) -> None:
    h = auth_headers["service"]
    pid = await person(client, auth_headers["sales"], "timeline@example.com")
    number = (await case(client, h, pid, subject="Broken hinge"))["tracking_number"]
    await api(client, "POST", f"/api/v1/cases/{number}/status", h, 200, json={"status": "open"})
    items = (await api(client, "GET", f"/api/v1/persons/{pid}/timeline", h, 200))["items"]
    cases = [i for i in items if i["kind"] == "case"]
    assert [(c["data"]["event"], c["data"]["to"]) for c in cases] == [("status", "open"), ("created", "new")]
    assert cases[0]["data"]["tracking_number"] == number
    assert cases[0]["data"]["subject"] == "Broken hinge"


async def test_every_service_operation_checks_the_token_and_the_role(
    client: TestClient, auth_headers: H
) -> None:
    """As http/test_openapi.py does for the whole API: no service desk route skips its role check."""
    from leadline_crm import service

    for op in service.operations():
        path = op.path.replace("{number}", "SR-2026-000001").replace(
            "{key}", "01900000-0000-7000-8000-000000000000"
        )
        assert (await client.request(op.method, path, json={})).status == 401, op.path
        outsiders = sorted(set(auth_headers) - op.roles)
        if outsiders:
            resp = await client.request(op.method, path, json={}, headers=auth_headers[outsiders[0]])
            assert resp.status == 403, (op.method, op.path, outsiders[0])
