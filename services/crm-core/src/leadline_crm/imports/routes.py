"""The import API: POST /api/v1/imports runs an import (or a dry run) of a CSV file and answers with its job; GET
/api/v1/imports/{id} is the job (counts as it goes, for a poll from elsewhere); GET …/rejects.csv the rows refused,
with their line and reason.

A file that is not CSV (binary, not UTF-8, no header row) is refused (422) and an oversized one (413) before
anything is written; so is a mapping naming a field or column that does not exist.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from leadline_crm.http.auth import SALES
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import CALLER, POOL
from leadline_crm.http.listing import csv_lines, csv_response
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import uuid_param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import UUID_S
from leadline_crm.imports import csvfile, jobs, kinds, upload
from leadline_crm.people.persons import PHONE_REGION

ID = Param("id", "path", UUID_S, "the import job")
OPTIONS = (
    Param("kind", "query", {"enum": list(kinds.KINDS)}, "people, companies or deals (for a CSV body)"),
    Param("mode", "query", {"enum": list(jobs.MODES)}, "dry_run counts only; commit imports (default dry_run)"),
    Param("on_duplicate", "query", {"enum": list(jobs.ON_DUPLICATE)}, "update or skip a duplicate (default skip)"),
    Param("mapping", "query", {"type": "string"}, 'JSON {"field": "column"}; default: guessed from the header'),
)  # fmt: skip
MULTIPART: dict[str, Any] = {
    "type": "object",
    "description": "file (the CSV), and kind, mode, on_duplicate, mapping as fields; or a text/csv body",
}


def _mapping(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        mapping = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest('mapping: JSON such as {"email": "E-mail"}') from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
        raise BadRequest('mapping: an object of field names to column names, such as {"email": "E-mail"}')
    return {k: v for k, v in mapping.items() if v}


async def post_import(request: web.Request) -> web.Response:
    """POST /api/v1/imports: keep the file as a job and run it (a dry run unless mode=commit); 201 with the job."""
    try:
        sent = await upload.read(request)
    except upload.TooLarge as exc:
        raise web.HTTPRequestEntityTooLarge(
            max_size=csvfile.MAX_BYTES, actual_size=0, text=str(exc)
        ) from None
    if not sent.has_file:
        raise BadRequest("file: send the CSV file")
    try:
        file = csvfile.read(sent.content)
        job = await jobs.create(
            request.app[POOL], sent.fields.get("kind", "people"), file, sent.content, request[CALLER],
            filename=sent.filename, mapping=_mapping(sent.fields.get("mapping")),
            mode=sent.fields.get("mode", "dry_run"), on_duplicate=sent.fields.get("on_duplicate", "skip"),
            queued=True,
        )  # fmt: skip
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    await jobs.run(request.app[POOL], job, request[CALLER], request.app[PHONE_REGION])
    return json_response(await jobs.get(request.app[POOL], job), status=201)


async def get_import(request: web.Request) -> web.Response:
    """GET /api/v1/imports/{id}."""
    job = await jobs.get(request.app[POOL], uuid_param(request))
    if job is None:
        raise web.HTTPNotFound(text="no such import")
    return json_response(job)


async def get_rejects(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/imports/{id}/rejects.csv: line, reason and the row as it was."""
    job = uuid_param(request)
    if await jobs.get(request.app[POOL], job) is None:
        raise web.HTTPNotFound(text="no such import")
    rows = jobs.rejects_csv(request.app[POOL], job)
    return await csv_response(
        request, f"import-{job}-rejects.csv", csv_lines(("line", "reason", "row"), rows)
    )


def operations() -> list[Operation]:
    """The import API."""
    return [
        Operation("POST", "/api/v1/imports", post_import,
                  "Import people, companies or deals from CSV (dry run or commit); 422 when the file is not CSV",
                  SALES, "imports", params=OPTIONS, status=201, errors=(413, 415, 422)),
        Operation("GET", "/api/v1/imports/{id}", get_import, "An import job: status and counts", SALES, "imports",
                  params=(ID,)),
        Operation("GET", "/api/v1/imports/{id}/rejects.csv", get_rejects,
                  "The rows an import refused: line, reason, the row", SALES, "imports", params=(ID,)),
    ]  # fmt: skip
