"""The import pages under /app/import: upload a file, map its columns (suggested from the header) with a preview of
the first rows as mapped, a dry run's counts, the run with a progress bar, and the report with the rejected rows
to download.

The upload is posted with htmx (which sends the CSRF header, so the session guard does not read the body and the
file is streamed here under the import's own size cap, not the app's 1 MB); without JavaScript the plain form
still works for files up to 1 MB. The run is started by the progress page itself (``hx-trigger="load"``; a
button without JavaScript), and the bar polls the job's row every second (no inline script: the CSP forbids it).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web
from markupsafe import escape
from multidict import MultiDictProxy

from leadline_crm.http.auth import SALES, Caller
from leadline_crm.http.keys import POOL
from leadline_crm.http.listing import csv_lines, csv_response
from leadline_crm.http.pages import may, signed_in
from leadline_crm.http.session import CSRF_HEADER
from leadline_crm.http.templating import render
from leadline_crm.imports import csvfile, jobs, kinds, upload
from leadline_crm.people.persons import PHONE_REGION

RECENT = "SELECT id, kind, mode, status, filename, processed, created, updated, skipped, rejected, created_at" \
         " FROM import_jobs ORDER BY created_at DESC LIMIT 20"  # fmt: skip
REJECTS_SHOWN = 50
KIND_OPTIONS = [("people", "People (leads)"), ("companies", "Companies"), ("deals", "Deals")]


async def _importer(request: web.Request) -> Caller:
    caller = await signed_in(request)
    if not may(caller, SALES):
        raise web.HTTPForbidden(reason="Your role may not import")
    return caller


def _job_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such import") from None


def _htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def start_page(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/import: the upload form and the recent imports."""
    await _importer(request)
    await jobs.reap_all(request.app[POOL])
    recent = await request.app[POOL].fetch(RECENT)
    return render(request, "imports/start.html", status=status, title="Import from CSV", message=message,
                  kinds=KIND_OPTIONS, recent=recent, max_mb=csvfile.MAX_BYTES // (1024 * 1024))  # fmt: skip


async def _sent(request: web.Request) -> upload.Upload:
    """The upload: streamed when htmx sent the CSRF header, else the form the session guard already read."""
    if request.headers.get(CSRF_HEADER):
        return await upload.read_multipart(request)
    form = await request.post()
    sent = upload.Upload(fields={k: str(v) for k, v in form.items() if isinstance(v, str)})
    file = form.get("file")
    if isinstance(file, web.FileField):
        sent.content, sent.filename, sent.has_file = file.file.read(), file.filename, True
    return sent


async def upload_file(request: web.Request) -> web.Response:
    """POST /app/import: keep the file as a job and show its mapping; the reason when it is not a CSV file."""
    caller = await _importer(request)
    try:
        sent = await _sent(request)
        if not sent.has_file or not sent.content:
            raise csvfile.NotCsv("choose a CSV file to upload")
        file = csvfile.read(sent.content)
        job = await jobs.create(request.app[POOL], sent.fields.get("kind", "people"), file, sent.content, caller,
                                filename=sent.filename)  # fmt: skip
    except (ValueError, upload.TooLarge) as exc:
        if _htmx(request):  # htmx swaps only 2xx answers: the reason goes into the form's alert box
            return web.Response(text=_alert(str(exc)), content_type="text/html")
        return await start_page(
            request, message=str(exc), status=413 if isinstance(exc, upload.TooLarge) else 422
        )
    target = f"/app/import/{job}"
    if _htmx(request):
        return web.Response(status=200, headers={"HX-Redirect": target})
    raise web.HTTPSeeOther(target)


def _alert(text: str) -> str:
    return f'<div class="error" role="alert">{escape(text)}</div>'


async def job_page(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/import/{id}: the mapping and preview, the progress, or the report, as far as the job has come."""
    await _importer(request)
    pool = request.app[POOL]
    job = await jobs.get(pool, _job_id(request))
    if job is None:
        raise web.HTTPNotFound(reason="No such import")
    view: dict[str, Any] = {"job": job, "fields": kinds.FIELDS[job["kind"]], "message": message}
    if job["has_file"] and job["status"] in ("uploaded", "done", "failed"):
        content = await pool.fetchval("SELECT content FROM import_jobs WHERE id = $1", job["id"])
        view["preview"] = jobs.preview(job["kind"], csvfile.read(content), job["mapping"])
    if job["status"] in ("done", "failed"):
        view["rejects"] = await pool.fetch(
            "SELECT line, reason, raw FROM import_rejects WHERE job_id = $1 ORDER BY line LIMIT $2",
            job["id"], REJECTS_SHOWN,
        )  # fmt: skip
    title = f"Import of {job['kind']}" + (f": {job['filename']}" if job["filename"] else "")
    return render(request, "imports/job.html", status=status, title=title, **view)


def _mapping_of(form: MultiDictProxy[Any], kind: str) -> dict[str, str]:
    return {
        f.name: str(form.get(f"map_{f.name}", "")) for f in kinds.FIELDS[kind] if form.get(f"map_{f.name}")
    }


async def start_run(request: web.Request) -> web.Response:
    """POST /app/import/{id}/start: the mapping and options chosen; queue a dry run or the import."""
    await _importer(request)
    pool = request.app[POOL]
    job = _job_id(request)
    row = await jobs.get(pool, job)
    if row is None:
        raise web.HTTPNotFound(reason="No such import")
    form = await request.post()
    mapping = _mapping_of(form, row["kind"])
    try:
        await jobs.queue(
            pool, job, mapping, str(form.get("mode", "dry_run")), str(form.get("on_duplicate", "skip"))
        )
    except (ValueError, LookupError) as exc:
        await pool.execute("UPDATE import_jobs SET mapping = $2::text::jsonb WHERE id = $1 AND status <> 'running'",
                           job, orjson.dumps(mapping).decode())  # fmt: skip
        return await job_page(request, message=str(exc), status=422)
    raise web.HTTPSeeOther(f"/app/import/{job}")


async def work(request: web.Request) -> web.Response:
    """POST /app/import/{id}/work: run the queued job (the progress page posts this once it has loaded)."""
    caller = await _importer(request)
    job = _job_id(request)
    await jobs.run(request.app[POOL], job, caller, request.app[PHONE_REGION])
    if _htmx(request):
        return web.Response(status=200, headers={"HX-Redirect": f"/app/import/{job}"})
    raise web.HTTPSeeOther(f"/app/import/{job}")


async def progress(request: web.Request) -> web.Response:
    """GET /app/import/{id}/progress: the bar, polled every second; once finished, the page is reloaded."""
    await _importer(request)
    job = await jobs.get(request.app[POOL], _job_id(request))
    if job is None:
        raise web.HTTPNotFound(reason="No such import")
    if job["status"] in ("done", "failed"):
        return web.Response(status=200, headers={"HX-Redirect": f"/app/import/{job['id']}"})
    return render(request, "imports/_progress.html", job=job)


async def rejects(request: web.Request) -> web.StreamResponse:
    """GET /app/import/{id}/rejects.csv."""
    await _importer(request)
    job = _job_id(request)
    rows = jobs.rejects_csv(request.app[POOL], job)
    return await csv_response(
        request, f"import-{job}-rejects.csv", csv_lines(("line", "reason", "row"), rows)
    )


def pages() -> list[web.AbstractRouteDef]:
    """The import pages."""
    return [
        web.get("/app/import", start_page),
        web.post("/app/import", upload_file),
        web.get("/app/import/{id}", job_page),
        web.post("/app/import/{id}/start", start_run),
        web.post("/app/import/{id}/work", work),
        web.get("/app/import/{id}/progress", progress),
        web.get("/app/import/{id}/rejects.csv", rejects),
    ]
