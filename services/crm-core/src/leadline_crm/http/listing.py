"""CSV downloads shared by every list page (people, deals) and the import's rejects report: cells a spreadsheet
will not run as formulas, rows streamed from a server-side cursor in 64 KB pieces, the attachment response, and
the list's download handler (its filters as the page reads them; bad ones a 422 before anything is sent).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from multidict import MultiMapping

from leadline_crm.http.errors import BadRequest

CHUNK_BYTES = 64 * 1024
Query = TypeVar("Query")
Page = tuple[list[asyncpg.Record], bool]


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or a tab or CR) is prefixed with '; a
    list is joined with ;."""
    if value is None:
        return ""
    text = ";".join(map(str, value)) if isinstance(value, list) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def csv_lines(header: Sequence[str], rows: AsyncIterable[Iterable[object]]) -> AsyncIterator[bytes]:
    """``header`` and then ``rows`` as CSV, made safe with :func:`csv_cell`, in pieces of about 64 KB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    async for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        if buffer.tell() > CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def query_csv(
    pool: asyncpg.Pool,
    sql: str,
    args: Sequence[Any],
    columns: Sequence[str],
    shape: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict,
) -> AsyncIterator[bytes]:
    """Every row of ``sql`` (no LIMIT: the whole list) as CSV with ``columns``, read through a server-side cursor;
    ``shape`` may format a row's values first."""

    async def rows() -> AsyncIterator[list[object]]:
        async with pool.acquire() as conn, conn.transaction():
            async for row in conn.cursor(sql, *args, prefetch=1000):
                values = shape(row)
                yield [values.get(c) for c in columns]

    async for piece in csv_lines(columns, rows()):
        yield piece


async def csv_response(
    request: web.Request, filename: str, pieces: AsyncIterable[bytes]
) -> web.StreamResponse:
    """Stream ``pieces`` as a CSV attachment named ``filename`` (never cached: lists hold personal data)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    async for piece in pieces:
        await response.write(piece)
    await response.write_eof()
    return response


async def list_csv(
    request: web.Request, filename: str, export: Callable[[MultiMapping[str]], AsyncIterable[bytes]]
) -> web.StreamResponse:
    """GET /app/<list>.csv: the list the page shows, every page of it; ``export`` reads the filters from the query
    (a BadRequest is a 422 before anything is sent)."""
    try:
        pieces = export(request.query)
    except BadRequest as exc:
        raise web.HTTPUnprocessableEntity(reason=str(exc)) from None
    return await csv_response(request, filename, pieces)


async def filtered_page(
    params: MultiMapping[str],
    parse: Callable[[MultiMapping[str]], Query],
    default: Callable[[], Query],
    fetch: Callable[[Query], Awaitable[Page]],
) -> tuple[Query, list[asyncpg.Record], bool, str | None]:
    """A list page's filters read from the URL and its page of rows, and whether more follow; bad filters give the
    unfiltered form back with no rows and the reason (the page then answers 422, showing it) instead of an error."""
    try:
        query = parse(params)
        rows, more = await fetch(query)
    except BadRequest as exc:
        return default(), [], False, str(exc)
    return query, rows, more, None
