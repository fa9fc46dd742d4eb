"""People at companies: linking a person to a company by hand (API and web app), audited."""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web

from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.sales import queries


async def set_company(
    pool: asyncpg.Pool, person: uuid.UUID, company: uuid.UUID | None, caller: Caller
) -> None:
    """Link (or with None unlink) a person's company by hand, audited; 404 for an unknown person or company."""
    async with pool.acquire() as conn, conn.transaction():
        if company is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)", company
        ):
            raise web.HTTPNotFound(text="no such company")
        old = await conn.fetchval("SELECT company_id FROM persons WHERE person_id = $1 FOR UPDATE", person)
        if await conn.fetchval(queries.LINK_BY_HAND, person, company) is None:
            raise web.HTTPNotFound(text="no such person")
        changes = audit.diff({"company_id": old}, {"company_id": company}, ("company_id",))
        if changes:
            await audit.record(conn, caller, "update", "persons", person, changes)
