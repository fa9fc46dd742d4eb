"""Imported leads get owners by the assignment rules a chunk at a time (issue 15): the owners are the ones the rules
give one lead at a time (Germany to Greta, everyone else in turn within the team), the team's turns go on across
chunks, across imports and across a second app instance (a replica, or the app after a restart), every owner is
audited, and a chunk costs the same handful of statements whatever its size (unit below)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_core.imports.test_imports import post, text
from crm_core.sales.test_assignment import users
from leadline_crm.app import create_app
from leadline_crm.http.auth import Caller
from leadline_crm.http.keys import POOL
from leadline_crm.imports import jobs
from leadline_crm.sales import assignment
from leadline_crm.settings import CrmSettings

H = dict[str, dict[str, str]]


async def _team_rules(pool: asyncpg.Pool, reps: dict[str, uuid.UUID]) -> None:
    team = await pool.fetchval("INSERT INTO teams (name) VALUES ('Inbound') RETURNING id")
    for name in ("Ann", "Bob", "Cid"):
        await pool.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team, reps[name])
        await pool.execute("SELECT pg_sleep(0.002)")  # members' turn order is their join time
    await pool.execute(
        "INSERT INTO assignment_rules (name, position, country, user_id) VALUES ('Germany', 1, 'DE', $1)",
        reps["Greta"],
    )
    await pool.execute(
        "INSERT INTO assignment_rules (name, position, team_id) VALUES ('Everyone else', 2, $1)", team
    )


def _people(prefix: str, n: int) -> bytes:
    rows = [["email", "country"]]
    rows += [[f"{prefix}{i}@corp.example", "DE" if i % 5 == 0 else "FR"] for i in range(n)]
    return text(rows)


@pytest.mark.integration
async def test_imported_leads_are_dealt_in_turn_across_chunks_imports_and_app_instances(
    client: TestClient, auth_headers: H, crm_settings: CrmSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sales manager importing a spreadsheet in chunks still sees the team's leads shared out evenly."""
    pool = client.server.app[POOL]
    reps = await users(pool, "Ann", "Bob", "Cid", "Greta")
    await _team_rules(pool, reps)
    monkeypatch.setattr(jobs, "CHUNK", 7)
    admin = auth_headers["admin"]
    first = await post(client, admin, _people("a", 20), mode="commit")
    async with TestClient(TestServer(create_app(crm_settings))) as second:
        other = await post(second, admin, _people("b", 25), mode="commit")
    assert (first["created"], other["created"]) == (20, 25)
    rows = await pool.fetch(
        "SELECT p.emails[1] AS email, u.name FROM persons p JOIN users u ON u.id = p.owner_id ORDER BY p.person_id"
    )
    owners = {r["email"]: r["name"] for r in rows}
    assert len(owners) == 45
    assert {e for e, n in owners.items() if n == "Greta"} == {
        f"{p}{i}@corp.example" for p, n in (("a", 20), ("b", 25)) for i in range(0, n, 5)
    }
    team = Counter(n for n in owners.values() if n != "Greta")
    assert team == {"Ann": 12, "Bob": 12, "Cid": 12}  # 36 leads of the team: 12 each, whatever the chunks
    assert await pool.fetchval("SELECT turn FROM teams") == 36
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'assign' AND changes->>'rule' IN ('Germany', 'Everyone else')"
    )
    assert audited == 45


class _Conn:
    """Records the statements a set-based assignment sends (unit: no database)."""

    def __init__(self, leads: int, teams: list[uuid.UUID], members: list[uuid.UUID]) -> None:
        self.sent: list[str] = []
        self.leads = [
            {"person_id": uuid.UUID(int=i + 1), "country": "FR", "form_key": None} for i in range(leads)
        ]
        self.rules = [{"id": uuid.uuid4(), "name": f"team {i}", "country": None if i else "FR", "form_key": None,
                       "team_id": t, "user_id": None} for i, t in enumerate(teams)]  # fmt: skip
        self.members = [{"team_id": teams[0], "user_id": m} for m in members]

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.sent.append(sql)
        if "FROM assignment_rules" in sql:
            return self.rules
        if "FROM persons p WHERE" in sql:
            return self.leads
        if "FROM team_members" in sql:
            return self.members
        if "UPDATE teams" in sql:
            return [{"id": t, "first": 7} for t in args[0]]
        if "UPDATE persons" in sql:
            return [{"person_id": p, "owner_id": o} for p, o in zip(args[0], args[1], strict=True)]
        return []  # the listened event types: nobody listens

    async def execute(self, sql: str, *args: Any) -> str:
        self.sent.append(sql)
        return "OK"


async def test_a_chunk_of_leads_is_assigned_with_the_same_few_statements_whatever_its_size() -> None:
    team, members = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    small, large = _Conn(3, [team], members), _Conn(5000, [team], members)
    caller = Caller("import", "admin")
    given = await assignment.assign(small, [], caller)  # type: ignore[arg-type]
    await assignment.assign(large, [], caller)  # type: ignore[arg-type]
    assert len(small.sent) == len(large.sent) <= 7
    # turns continue from the team's counter (7): the 8th turn is member 7 % 3 = 1, then 2, then 0
    assert list(given.values()) == [members[1], members[2], members[0]]
