"""The deal table of the web workspace and the API's deal list: filters (pipeline, stage, owner, status, text,
close dates), sortable columns, pages, and a CSV export of the same list.

One parsed :class:`DealQuery` makes the SQL of the page, the export and the API, so what a rep downloads is what
they see. Sort keys come from a fixed list, never from the request's text.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlencode

import asyncpg

from leadline_crm.http.errors import BadRequest
from leadline_crm.http.listing import query_csv

PAGE_SIZE = 50
MAX_PAGE = 200
STATUSES = ("open", "won", "lost")
SORTS: dict[str, str] = {
    "created": "d.created_at",
    "close": "d.expected_close_on",
    "amount": "d.amount",
    "title": "lower(d.title)",
    "stage": "s.position",
}
COLUMNS = """d.id, d.title, d.amount, d.currency, d.status, d.expected_close_on, d.close_reason, d.closed_at,
d.created_at, d.pipeline_id, s.name AS stage, s.probability, d.person_id, d.company_id,
(SELECT name FROM users WHERE users.id = d.owner_id) AS owner,
(SELECT coalesce(nullif(concat_ws(' ', first_name, last_name), ''), emails[1]) FROM persons
  WHERE person_id = d.person_id) AS person,
(SELECT name FROM companies WHERE companies.id = d.company_id) AS company"""
EXPORT_COLUMNS = ("id", "title", "amount", "currency", "stage", "probability", "status", "close_reason", "owner",
                  "person", "company", "expected_close_on", "closed_at", "created_at")  # fmt: skip


def _uuid_or_blank(value: str, name: str) -> str:
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{name}: choose one from the list") from None


def _date_or_none(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class DealQuery:
    """What the deal list was asked for; :meth:`params` gives it back as a query string."""

    q: str = ""
    pipeline: str = ""
    stage: str = ""
    owner: str = ""  # a user id, "me" or "none"
    status: str = ""
    close_from: date | None = None
    close_to: date | None = None
    person: str = ""
    company: str = ""
    sort: str = "created"
    desc: bool = True
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> DealQuery:
        """Read the list's query string; BadRequest says which parameter is wrong."""
        sort = query.get("sort", "created")
        if sort not in SORTS:
            raise BadRequest(f"sort: one of {', '.join(SORTS)}")
        status = query.get("status", "")
        if status and status not in STATUSES:
            raise BadRequest(f"status: one of {', '.join(STATUSES)}")
        owner = query.get("owner", "").strip()
        if owner not in ("", "me", "none"):
            owner = _uuid_or_blank(owner, "owner")
        try:
            page = int(query.get("page", "1") or 1)
        except ValueError:
            raise BadRequest("page: a number") from None
        if not 1 <= page <= MAX_PAGE:
            raise BadRequest(f"page: between 1 and {MAX_PAGE}; narrow the list with a filter")
        q = query.get("q", "").replace("\x00", "").strip()
        if len(q) > 200:
            raise BadRequest("q: at most 200 characters")
        return cls(
            q=q,
            pipeline=_uuid_or_blank(query.get("pipeline", "").strip(), "pipeline"),
            stage=_uuid_or_blank(query.get("stage", "").strip(), "stage"),
            owner=owner,
            status=status,
            close_from=_date_or_none(query.get("close_from", "").strip(), "close_from"),
            close_to=_date_or_none(query.get("close_to", "").strip(), "close_to"),
            person=_uuid_or_blank(query.get("person", "").strip(), "person"),
            company=_uuid_or_blank(query.get("company", "").strip(), "company"),
            sort=sort,
            desc=query.get("dir", "desc" if sort in ("created", "amount") else "asc") == "desc",
            page=page,
        )

    def params(self, **changes: object) -> str:
        """This query (with ``changes``) as a query string, leaving out what is at its default."""
        d = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            "q": d.q, "pipeline": d.pipeline, "stage": d.stage, "owner": d.owner, "status": d.status,
            "close_from": d.close_from.isoformat() if d.close_from else "",
            "close_to": d.close_to.isoformat() if d.close_to else "", "person": d.person, "company": d.company,
            "sort": "" if d.sort == "created" else d.sort, "page": "" if d.page == 1 else str(d.page),
            "dir": ("desc" if d.desc else "asc") if d.desc != (d.sort in ("created", "amount")) else "",
        }  # fmt: skip
        return urlencode({k: v for k, v in pairs.items() if v})

    def sql(self, me: uuid.UUID | None, *, limit: int | None, offset: int = 0) -> tuple[str, list[object]]:
        """The SELECT for this query, and its arguments (every value a $n argument)."""
        where: list[str] = []
        args: list[object] = []

        def arg(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.q:
            escaped = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(f"d.title ILIKE {arg('%' + escaped + '%')}")
        for column, value in (("d.pipeline_id", self.pipeline), ("d.stage_id", self.stage),
                              ("d.person_id", self.person), ("d.company_id", self.company)):  # fmt: skip
            if value:
                where.append(f"{column} = {arg(uuid.UUID(value))}")
        if self.status:
            where.append(f"d.status = {arg(self.status)}")
        if self.owner == "none":
            where.append("d.owner_id IS NULL")
        elif self.owner:
            where.append(f"d.owner_id = {arg(me if self.owner == 'me' else uuid.UUID(self.owner))}")
        if self.close_from:
            where.append(f"d.expected_close_on >= {arg(self.close_from)}")
        if self.close_to:
            where.append(f"d.expected_close_on <= {arg(self.close_to)}")
        direction = "DESC" if self.desc else "ASC"
        # Only the close date may be empty: NULLS LAST on the others would keep their indexes from giving the order.
        nulls = " NULLS LAST" if self.sort == "close" else ""
        order = f"{SORTS[self.sort]} {direction}{nulls}, d.id {direction}"
        sql = (
            f"SELECT {COLUMNS} FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id"  # noqa: S608
            f" WHERE {' AND '.join(where) or 'true'} ORDER BY {order}"
        )
        if limit is not None:
            sql += f" LIMIT {arg(limit)} OFFSET {arg(offset)}"
        return sql, args


async def page_of(
    pool: asyncpg.Pool, query: DealQuery, me: uuid.UUID | None, size: int = PAGE_SIZE
) -> tuple[list[asyncpg.Record], bool]:
    """One page of the list, and whether another follows."""
    sql, args = query.sql(me, limit=size + 1, offset=(query.page - 1) * size)
    rows = await pool.fetch(sql, *args)
    return rows[:size], len(rows) > size


def export_csv(pool: asyncpg.Pool, query: DealQuery, me: uuid.UUID | None) -> AsyncIterator[bytes]:
    """The whole list (every page) as CSV (http/listing.py: a server-side cursor, formula-safe cells)."""
    sql, args = query.sql(me, limit=None)
    return query_csv(pool, sql, args, EXPORT_COLUMNS)
