"""CSV import through the API (issue 15): an admin moving from spreadsheets brings in people, companies and deals.

Malformed rows are reported with their line and reason and the rest imported; a file that is not CSV is refused
before anything is written; a dry run writes nothing; a duplicate (manual entry's check: canonical email or
phone) is updated or skipped; importing the same file twice creates nothing new; imported people reach the
identity graph as a rep's leads do.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from leadline_shared import kafka
from leadline_shared.events import RawEvent
from support import read_topic

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


def people_csv(n: int, *, name: str = "Ann", delimiter: str = ",") -> list[list[str]]:
    rows = [["E-mail", "First Name", "Surname", "Phone", "Company"]]
    rows += [[f"p{i}@corp{i % 7}.example", f"{name}{i}", f"Lee{i}", "", "Corp"] for i in range(n)]
    return rows


def text(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


async def post(
    client: TestClient, headers: dict[str, str], body: bytes, status: int = 201, **options: str
) -> Any:
    form = FormData()
    form.add_field("file", body, filename="contacts.csv", content_type="text/csv")
    for key, value in options.items():
        form.add_field(key, value)
    resp = await client.post("/api/v1/imports", data=form, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_2000_people_import_with_malformed_rows_reported_by_line_and_the_rest_imported(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """A spreadsheet with a few bad rows: those are listed with line and reason, the 2,000 good ones are leads."""
    rows = people_csv(2000)
    rows.insert(11, ["not-an-email", "Bad", "Row", "", ""])  # line 12
    rows.insert(21, ["x@y.example", "Too", "Few"])  # line 22: 3 fields of 5
    rows.insert(31, [rows[5][0], "Repeat", "Of line 6", "", ""])  # line 32 repeats line 6's email
    rows.insert(41, ["", "No", "Contact", "", ""])  # line 42
    admin = auth_headers["admin"]
    job = await post(client, admin, text(rows), mode="commit")
    assert (job["status"], job["created"], job["rejected"], job["processed"]) == ("done", 2000, 4, 2004)
    assert job["mapping"] == {"email": "E-mail", "first_name": "First Name", "last_name": "Surname",
                              "phone": "Phone", "company": "Company"}  # fmt: skip

    resp = await client.get(f"/api/v1/imports/{job['id']}/rejects.csv", headers=admin)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    report = list(csv.reader(io.StringIO(await resp.text())))
    assert report[0] == ["line", "reason", "row"]
    assert [(r[0], r[1]) for r in report[1:]] == [
        ("12", "email: not a valid email address"),
        ("22", "expected 5 fields, found 3"),
        ("32", "repeats line 6"),
        ("42", "no email or phone: a person is someone who can be reached"),
    ]
    assert report[1][2] == "not-an-email,Bad,Row,,"
    n, leads = await crm_conn.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE stage = 'lead' AND source = 'import') FROM persons"
    )
    assert n == leads == 2000
    person = await crm_conn.fetchrow("SELECT * FROM persons WHERE emails = ARRAY['p3@corp3.example']")
    assert (person["first_name"], person["last_name"], person["company"]) == ("Ann3", "Lee3", "Corp")
    assert (
        await crm_conn.fetchval(
            "SELECT count(*) FROM stage_transitions WHERE to_stage = 'lead' AND reason = 'imported'"
        )
        == 2000
    )
    audited = await crm_conn.fetch(
        "SELECT action, entity_type, count(*) AS n FROM audit_log GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert [(a["action"], a["entity_type"], a["n"]) for a in audited] == [
        ("create", "persons", 2000), ("import", "imports", 1)]  # fmt: skip


async def test_imported_people_reach_the_identity_graph_like_a_reps_leads(
    client: TestClient,
    auth_headers: H,
    crm_conn: asyncpg.Connection,
    kafka_bootstrap: str,
    topics: kafka.Topics,
) -> None:
    """Without the identify event, the person's next web form would make a second person with the same email."""
    body = text([["email", "phone"], ["Mo@Example.com", "+44 20 7946 0958"], ["", "+1 415 555 2671"]])
    await post(client, auth_headers["sales"], body, mode="commit")
    ids = {r["phones"][0]: str(r["person_id"]) for r in await crm_conn.fetch("SELECT * FROM persons")}
    events = [(k, RawEvent.from_json(v)) for k, v, _ in await read_topic(kafka_bootstrap, topics.raw, 2)]
    got = sorted((k.decode(), e.type, e.source, sorted(e.ids.items())) for k, e in events)
    uk, us = ids["+442079460958"], ids["+14155552671"]
    assert got == sorted([
        (f"crm_contact_id:{uk}", "identify", "api",
         sorted({"crm_contact_id": uk, "email": "mo@example.com", "phone": "+442079460958"}.items())),
        (f"crm_contact_id:{us}", "identify", "api", sorted({"crm_contact_id": us, "phone": "+14155552671"}.items())),
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary file"),
        ("email,name\r\nzoë@example.com,Zoë\r\n".encode("latin-1"), "not UTF-8"),
        (b"ann@example.com,Ann\r\nbob@example.com,Bob\r\n", "looks like data"),
        (b"", "empty"),
        (b"email,,name\r\na@example.com,x,y\r\n", "name every column"),
    ],
)
async def test_a_file_that_is_not_csv_is_refused_before_anything_is_written(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection, body: bytes, reason: str
) -> None:
    """A spreadsheet, a legacy-encoded export or a headerless file: a clear 422, and no job, no person."""
    problem = await post(client, auth_headers["admin"], body, status=422, mode="commit")
    assert reason in problem["detail"]
    assert (
        await crm_conn.fetchval("SELECT (SELECT count(*) FROM import_jobs) + (SELECT count(*) FROM persons)")
        == 0
    )


async def test_bad_options_and_mappings_are_refused(client: TestClient, auth_headers: H) -> None:
    """A mapping naming a column the file lacks, an unknown mode, a wrong media type: 4xx with the reason."""
    admin = auth_headers["admin"]
    body = text(people_csv(2))
    assert "no column 'Mail'" in (await post(client, admin, body, 422, mapping='{"email": "Mail"}'))["detail"]
    assert "mode" in (await post(client, admin, body, 422, mode="now"))["detail"]
    assert (
        "email or phone"
        in (await post(client, admin, body, 422, mapping='{"first_name": "First Name"}'))["detail"]
    )
    resp = await client.post(
        "/api/v1/imports", data=b"{}", headers=admin | {"Content-Type": "application/json"}
    )
    assert resp.status == 415
    assert (await client.post("/api/v1/imports", data=body, headers=auth_headers["marketing"])).status == 403


async def test_a_dry_run_counts_what_would_happen_and_writes_nothing(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """The admin sees create/update/skip/reject counts first; no person, company or audit entry appears."""
    admin = auth_headers["admin"]
    await post(client, admin, text(people_csv(5)), mode="commit")
    before = await crm_conn.fetchval("SELECT count(*) FROM audit_log")
    rows = people_csv(8, name="Changed")
    rows.append(["broken", "", "", "", ""])
    job = await post(client, admin, text(rows, ";"), on_duplicate="update")  # semicolons, sniffed
    assert (job["mode"], job["created"], job["updated"], job["skipped"], job["rejected"]) == (
        "dry_run",
        3,
        5,
        0,
        1,
    )
    assert await crm_conn.fetchval("SELECT count(*) FROM persons") == 5
    assert await crm_conn.fetchval("SELECT count(*) FROM persons WHERE first_name LIKE 'Changed%'") == 0
    assert await crm_conn.fetchval("SELECT count(*) FROM audit_log") == before
    assert await crm_conn.fetchval("SELECT count(*) FROM import_rejects WHERE job_id = $1", job["id"]) == 1


async def test_duplicates_are_skipped_or_updated_and_the_same_file_twice_creates_nothing_new(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """Manual entry's duplicate check (canonical email or phone): skip leaves the person, update fills in."""
    admin = auth_headers["admin"]
    rep = await crm_conn.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'")
    lead = await client.post(
        "/api/v1/leads", json={"email": "Kim@Acme.example", "first_name": "Kim"}, headers=admin
    )
    assert lead.status == 201
    by_phone = await client.post("/api/v1/leads", json={"phone": "+1 415 555 2671"}, headers=admin)
    body = text([["email", "first_name", "phone", "owner"], ["kim@acme.example", "Kimberly", "", ""],
                 ["new@acme.example", "New", "", "rep@example.com"],
                 ["other@acme.example", "Phoned", "(415) 555-2671", ""]])  # fmt: skip
    first = await post(client, admin, body, mode="commit")
    assert (first["created"], first["skipped"], first["updated"]) == (1, 2, 0)
    assert (
        await crm_conn.fetchval("SELECT first_name FROM persons WHERE emails = ARRAY['kim@acme.example']")
        == "Kim"
    )
    again = await post(client, admin, body, mode="commit")
    assert (again["created"], again["skipped"]) == (0, 3)
    assert await crm_conn.fetchval("SELECT count(*) FROM persons") == 3
    assert (
        await crm_conn.fetchval("SELECT owner_id FROM persons WHERE emails = ARRAY['new@acme.example']")
        == rep
    )

    updated = await post(client, admin, body, mode="commit", on_duplicate="update")
    assert (updated["created"], updated["updated"]) == (0, 3)
    assert (
        await crm_conn.fetchval("SELECT first_name FROM persons WHERE emails = ARRAY['kim@acme.example']")
        == "Kimberly"
    )
    phoned = await crm_conn.fetchrow(
        "SELECT * FROM persons WHERE person_id = $1", (await by_phone.json())["id"]
    )
    assert (phoned["first_name"], phoned["emails"]) == ("Phoned", ["other@acme.example"])
    assert await crm_conn.fetchval("SELECT count(*) FROM persons") == 3


async def test_companies_then_deals_are_imported_and_linked(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """Companies take in their domain's people; deals find their person by email and company by domain or name;
    an unknown stage, a lost deal without a reason and a free-mail domain are refused with the line."""
    admin = auth_headers["admin"]
    await post(client, admin, text([["email"], ["ada@acme.example"], ["bo@gmail.com"]]), mode="commit")
    companies = text([["Company name", "Website", "Industry"], ["Acme", "https://www.acme.example/about", "Tools"],
                      ["Globex", "", "Energy"], ["Mail", "gmail.com", ""]])  # fmt: skip
    job = await post(client, admin, companies, mode="commit", kind="companies")
    assert (job["created"], job["rejected"]) == (2, 1)
    acme = await crm_conn.fetchrow("SELECT * FROM companies WHERE domain = 'acme.example'")
    assert acme["industry"] == "Tools"
    assert (
        await crm_conn.fetchval("SELECT company_id FROM persons WHERE emails = ARRAY['ada@acme.example']")
        == acme["id"]
    )

    deals = text([
        ["Deal name", "Value", "Stage", "Email", "Company", "Close date", "Lost reason"],
        ["Acme rollout", "12,000.50", "Proposal", "ada@acme.example", "acme.example", "2026-12-24", ""],
        ["Globex pilot", "3000", "Lost", "", "Globex", "", "budget"],
        ["Globex lost", "1", "Lost", "", "Globex", "", ""],
        ["Odd stage", "1", "Dreaming", "", "Globex", "", ""],
        ["Nobody", "1", "", "who@nowhere.example", "", "", ""],
    ])  # fmt: skip
    job = await post(client, admin, deals, mode="commit", kind="deals")
    assert (job["created"], job["rejected"]) == (2, 3)
    resp = await client.get(f"/api/v1/imports/{job['id']}/rejects.csv", headers=admin)
    reasons = [r[:2] for r in csv.reader(io.StringIO(await resp.text()))][1:]
    assert reasons == [["4", "reason: say why the deal was lost"],
                       ["5", "stage: no stage named 'Dreaming' in this pipeline"],
                       ["6", "person_email: no person with this email"]]  # fmt: skip
    rollout = await crm_conn.fetchrow(
        "SELECT d.*, s.name AS stage FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE title = 'Acme rollout'"
    )
    assert (str(rollout["amount"]), rollout["stage"], rollout["company_id"]) == (
        "12000.50",
        "Proposal",
        acme["id"],
    )
    lost = await crm_conn.fetchrow("SELECT * FROM deals WHERE title = 'Globex pilot'")
    assert (lost["status"], lost["close_reason"], lost["closed_at"] is not None) == ("lost", "budget", True)
    assert await crm_conn.fetchval("SELECT count(*) FROM deal_stage_history WHERE reason = 'imported'") == 2
    again = await post(client, admin, deals, mode="commit", kind="deals")
    assert (again["created"], again["skipped"]) == (0, 2)
