"""The person list of the web workspace: filters (text, stage, source, owner, score, country), sortable columns,
pages, and a CSV export of the same list.

One parsed :class:`PersonQuery` makes the SQL for both the page and the export, so what a rep downloads is what
they see. Sort columns and directions come from fixed lists, never from the request's text. The list is of known
people unless anonymous visitors are asked for (see people/queries.py KNOWN and its partial index).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import asyncpg

from leadline_crm import lifecycle
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.listing import query_csv
from leadline_crm.people import persons, queries

PAGE_SIZE = 50
MAX_PAGE = 200  # deeper than 10,000 rows, a rep should filter; the export has no such limit
DECAYED_SCORE = """score * power(0.5, greatest(extract(epoch FROM (now() - coalesce(score_at, now()))), 0) / 86400.0
                   / (SELECT half_life_days FROM scoring))"""
SORTS: dict[str, str] = {
    "created": "person_id",  # ids are time-ordered (UUIDv7)
    "name": "lower(coalesce(last_name, '') || ' ' || coalesce(first_name, ''))",
    "company": "lower(coalesce(company, ''))",
    "stage": "stage",
    "score": DECAYED_SCORE,
    "last_seen": "last_seen",
    "next_step": "next_step_on",
}
LIST_COLUMNS = f"""{queries.PERSON_COLUMNS},
(SELECT name FROM users WHERE users.id = owner_id) AS owner"""  # noqa: S608
EXPORT_COLUMNS = ("id", "first_name", "last_name", "emails", "phones", "company", "title", "country", "city",
                  "stage", "score", "source", "owner", "next_step", "next_step_on", "first_seen", "last_seen")  # fmt: skip


@dataclass(frozen=True)
class PersonQuery:
    """What the person list was asked for; :meth:`params` gives it back as a query string."""

    q: str = ""
    stage: str = ""
    source: str = ""
    owner: str = ""  # a user id, "me" or "none"
    country: str = ""
    min_score: float | None = None
    everyone: bool = False
    sort: str = "created"
    desc: bool = True
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> PersonQuery:
        """Read the list's query string; BadRequest says which parameter is wrong."""
        stage = query.get("stage", "")
        if stage and stage not in lifecycle.STAGES:
            raise BadRequest("stage: unknown stage")
        sort = query.get("sort", "created")
        if sort not in SORTS:
            raise BadRequest(f"sort: one of {', '.join(SORTS)}")
        owner = query.get("owner", "").strip()
        if owner not in ("", "me", "none"):
            try:
                owner = str(uuid.UUID(owner))
            except ValueError:
                raise BadRequest("owner: choose an owner from the list") from None
        try:
            min_score = float(query["min_score"]) if query.get("min_score", "").strip() else None
            page = int(query.get("page", "1") or 1)
        except ValueError:
            raise BadRequest("min_score and page must be numbers") from None
        if not 1 <= page <= MAX_PAGE:
            raise BadRequest(f"page: between 1 and {MAX_PAGE}; narrow the list with a filter")
        q = query.get("q", "").strip()
        persons.search_pattern(q)  # the same length and NUL rules as the API
        return cls(
            q=q,
            stage=stage,
            source=query.get("source", "").strip()[:100],
            owner=owner,
            country=query.get("country", "").strip()[:100],
            min_score=min_score,
            everyone=query.get("include_anonymous") == "true",
            sort=sort,
            desc=query.get("dir", "desc" if sort in ("created", "score", "last_seen") else "asc") == "desc",
            page=page,
        )

    def params(self, **changes: object) -> str:
        """This query (with ``changes``) as a query string, leaving out what is at its default."""
        q = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            "q": q.q, "stage": q.stage, "source": q.source, "owner": q.owner, "country": q.country,
            "min_score": "" if q.min_score is None else f"{q.min_score:g}",
            "include_anonymous": "true" if q.everyone else "", "sort": "" if q.sort == "created" else q.sort,
            "dir": "asc" if not q.desc else "", "page": "" if q.page == 1 else str(q.page),
        }  # fmt: skip
        if q.sort != "created" and q.desc:
            pairs["dir"] = "desc"
        return urlencode({k: v for k, v in pairs.items() if v})

    def sql(self, me: uuid.UUID | None, *, limit: int | None, offset: int = 0) -> tuple[str, list[object]]:
        """The SELECT for this query, and its arguments."""
        where: list[str] = [] if self.everyone or self.stage == "anonymous" else [queries.KNOWN]
        args: list[object] = []

        def arg(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.q:
            if "@" in self.q:
                where.append(f"emails @> ARRAY[{arg(persons.normalize_email(self.q))}::text]")
            else:
                # Through the trigram index persons_search (migration 0012), of known people only: a visitor
                # has no name, company or email to find.
                p = arg(persons.search_pattern(self.q))
                where.append(f"person_search_text(first_name, last_name, company, emails) ILIKE {p}")
                if queries.KNOWN not in where:
                    where.append(queries.KNOWN)
        if self.stage:
            where.append(f"stage = {arg(self.stage)}")
        if self.source:
            where.append(f"source = {arg(self.source)}")
        if self.country:
            where.append(f"upper(country) = upper({arg(self.country)})")
        if self.owner == "none":
            where.append("owner_id IS NULL")
        elif self.owner:
            owner = me if self.owner == "me" else uuid.UUID(self.owner)
            where.append(f"owner_id = {arg(owner)}")
        if self.min_score is not None:
            where.append(f"{DECAYED_SCORE} >= {arg(self.min_score)}")
        direction = "DESC" if self.desc else "ASC"
        key = "person_id" if self.sort == "created" else SORTS[self.sort]
        # Ids are never NULL, and without "NULLS LAST" the default order is the partial index's, read backwards.
        nulls = "" if self.sort == "created" else " NULLS LAST, person_id DESC"
        # Fixed fragments only; every value is a $n argument.
        conditions = " AND ".join(where) or "true"
        if limit is None:
            sql = f"SELECT {LIST_COLUMNS} FROM persons WHERE {conditions} ORDER BY {key} {direction}{nulls}"  # noqa: S608
            return sql, args
        # A page: first the page's ids in order, from the covering index persons_known_list alone when the filters
        # and the sort use only its columns (an index-only scan of the known people, not a read of their rows
        # scattered over the whole table), then those 50 rows.
        inner = (
            f"SELECT person_id AS pid, {key} AS k FROM persons WHERE {conditions}"  # noqa: S608
            f" ORDER BY k {direction}{nulls} LIMIT {arg(limit)} OFFSET {arg(offset)}"
        )
        sql = f"SELECT {LIST_COLUMNS} FROM persons JOIN ({inner}) AS page ON person_id = page.pid"  # noqa: S608
        sql += f" ORDER BY page.k {direction}{nulls}"
        return sql, args


async def page_of(
    pool: asyncpg.Pool, query: PersonQuery, me: uuid.UUID | None
) -> tuple[list[asyncpg.Record], bool]:
    """One page of the list, and whether another follows."""
    sql, args = query.sql(me, limit=PAGE_SIZE + 1, offset=(query.page - 1) * PAGE_SIZE)
    rows = await pool.fetch(sql, *args)
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _shape(row: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(row) | {"score": f"{row['score']:.1f}"}


def export_csv(pool: asyncpg.Pool, query: PersonQuery, me: uuid.UUID | None) -> AsyncIterator[bytes]:
    """The whole list (every page) as CSV (http/listing.py: a server-side cursor, formula-safe cells)."""
    sql, args = query.sql(me, limit=None)
    return query_csv(pool, sql, args, EXPORT_COLUMNS, _shape)
