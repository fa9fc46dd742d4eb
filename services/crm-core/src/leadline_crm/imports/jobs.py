"""Import jobs: the row in PostgreSQL that keeps an upload, its mapping and options between the steps, and the
counts as a run goes, so any replica can answer a progress poll; and the run itself.

A run reads the kept file again, checks each row (imports/kinds.py), refuses repeats within the file (a later
row with an email, phone, domain or deal already on an earlier line), and hands chunks of :data:`CHUNK` rows to
imports/load.py; after each chunk the job's counts and its rejected rows (line, reason, the raw line) are
written. Only a job that is ``queued`` starts (taken with one UPDATE), so a page reloaded or two replicas polling
never run one job twice. A real run is audited (action ``import``, with the counts) and drops the kept file.

A run is done by the request that started it, so a crm-core that stops mid-run (a deploy's restart, a crash)
would leave its job ``running`` for ever. The runner holds a PostgreSQL advisory lock named after the job on a
connection of its own for the whole run; PostgreSQL lets go of it when that process or its connection dies. A
``running`` job whose lock anyone can take has lost its worker: whoever reads it next (the job's page, its
progress, the list of imports, the API, queueing it again) marks it ``failed`` with the reason, and it can be run
again (with ``skip``, the rows the dead run committed are skipped). Each chunk commits with the job's counts, so
the reason says exactly how many rows were done. A lock rather than a heartbeat: no lease to
tune against the slowest chunk, and no wait after a quick restart.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.imports import csvfile, kinds, load
from leadline_crm.imports.csvfile import Bad, CsvFile

log = logging.getLogger(__name__)

CHUNK = 5000
MODES = ("dry_run", "commit")
ON_DUPLICATE = ("update", "skip")
PREVIEW_ROWS = 10

CREATE = """
INSERT INTO import_jobs (kind, mode, on_duplicate, status, filename, delimiter, header, mapping, content, total,
                         created_by, actor)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, $12) RETURNING id"""
JOB = """
SELECT id, kind, mode, on_duplicate, status, filename, delimiter, header, mapping::text AS mapping, total, processed,
       created, updated, skipped, rejected, error, created_by, actor, created_at, started_at, finished_at,
       content IS NOT NULL AS has_file
  FROM import_jobs WHERE id = $1"""
TAKE = """
UPDATE import_jobs SET status = 'running', started_at = now(), finished_at = NULL, processed = 0, created = 0,
       updated = 0, skipped = 0, rejected = 0, error = NULL
 WHERE id = $1 AND status = 'queued' AND content IS NOT NULL
RETURNING kind, mode, on_duplicate, mapping::text AS mapping, content"""
PROGRESS = """
UPDATE import_jobs SET processed = $2, created = $3, updated = $4, skipped = $5, rejected = $6, total = greatest(total, $2)
 WHERE id = $1"""
REJECTS = "SELECT line, reason, raw FROM import_rejects WHERE job_id = $1 ORDER BY line"

# The run's lock (two int4 keys: this feature's, and the job's), held by the runner's own connection.
LOCK = "SELECT pg_advisory_lock(hashtext('leadline.import'), hashtext($1::uuid::text))"
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('leadline.import'), hashtext($1::uuid::text))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext('leadline.import'), hashtext($1::uuid::text))"
RUNNING = "SELECT id FROM import_jobs WHERE status = 'running'"
ORPHANED = """
UPDATE import_jobs SET status = 'failed', finished_at = now(),
       error = CASE WHEN mode = 'dry_run'
                    THEN 'crm-core stopped while this dry run was going (a restart or a crash); nothing was written. '
                         'Run it again.'
                    ELSE 'crm-core stopped while this import was running (a restart or a crash): the first '
                         || processed || ' rows were done (' || created || ' created, ' || updated || ' updated, '
                         || skipped || ' skipped, ' || rejected || ' rejected), the rest not. Run it again; with '
                         '"skip", the rows already imported are skipped.' END
 WHERE id = $1 AND status = 'running'"""


@dataclass
class Counts:
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0


def options(mode: str, on_duplicate: str) -> None:
    """ValueError unless ``mode`` and ``on_duplicate`` are ones an import takes."""
    if mode not in MODES:
        raise ValueError(f"mode: one of {', '.join(MODES)}")
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate: one of {', '.join(ON_DUPLICATE)}")


async def create(
    pool: asyncpg.Pool,
    kind: str,
    file: CsvFile,
    content: bytes,
    caller: Caller,
    *,
    filename: str = "",
    mapping: Mapping[str, str] | None = None,
    mode: str = "dry_run",
    on_duplicate: str = "skip",
    queued: bool = False,
) -> uuid.UUID:
    """Keep an upload as a job (``queued`` to run at once); ValueError for a bad mapping or option."""
    if kind not in kinds.KINDS:
        raise ValueError(f"kind: one of {', '.join(kinds.KINDS)}")
    options(mode, on_duplicate)
    chosen = dict(mapping) if mapping is not None else kinds.suggest(kind, file.header)
    if queued:
        kinds.check_mapping(kind, file.header, chosen)
    job: uuid.UUID = await pool.fetchval(
        CREATE, kind, mode, on_duplicate, "queued" if queued else "uploaded", filename[:200], file.delimiter,
        file.header, orjson.dumps(chosen).decode(), content, max(file.text.count("\n") - 1, 0), caller.user_id,
        caller.actor,
    )  # fmt: skip
    return job


async def queue(
    pool: asyncpg.Pool, job: uuid.UUID, mapping: Mapping[str, str], mode: str, on_duplicate: str
) -> None:
    """Set the mapping and options of a kept upload and queue it; ValueError for a bad one, LookupError when the
    job cannot run (gone, running, or its file dropped after a real run)."""
    options(mode, on_duplicate)
    await reap(pool, job)
    row = await pool.fetchrow(JOB, job)
    if row is None or not row["has_file"] or row["status"] == "running":
        raise LookupError("this import cannot run again; upload the file again")
    kinds.check_mapping(row["kind"], list(row["header"]), mapping)
    await pool.execute(
        "UPDATE import_jobs SET mapping = $2::text::jsonb, mode = $3, on_duplicate = $4, status = 'queued'"
        " WHERE id = $1",
        job, orjson.dumps(dict(mapping)).decode(), mode, on_duplicate,
    )  # fmt: skip


async def reap(pool: asyncpg.Pool, job: uuid.UUID) -> bool:
    """Mark ``job`` failed when it is ``running`` but its runner is gone (nobody holds its lock); True if so."""
    async with pool.acquire() as conn:
        if not await conn.fetchval(TRY_LOCK, job):
            return False  # its runner is alive
        try:
            return bool(await conn.execute(ORPHANED, job) == "UPDATE 1")
        finally:
            await conn.fetchval(UNLOCK, job)


async def reap_all(pool: asyncpg.Pool) -> None:
    """:func:`reap` every ``running`` job (for the list of imports)."""
    for row in await pool.fetch(RUNNING):
        await reap(pool, row["id"])


async def get(pool: asyncpg.Pool, job: uuid.UUID) -> dict[str, Any] | None:
    """The job as the API shows it (without the file); a job whose runner died is shown failed (:func:`reap`)."""
    row = await pool.fetchrow(JOB, job)
    if row is not None and row["status"] == "running" and await reap(pool, job):
        row = await pool.fetchrow(JOB, job)
    if row is None:
        return None
    out = dict(row) | {"mapping": orjson.loads(row["mapping"])}
    out["header"] = list(row["header"])
    return out


async def context(pool: asyncpg.Pool, kind: str, region: str) -> kinds.Context:
    """What the row checks look up, read once per run."""
    ctx = kinds.Context(region)
    users = await pool.fetch("SELECT id, email FROM users WHERE active")
    ctx.users = {str(u["email"]).lower(): u["id"] for u in users}
    if kind == "deals":
        for p in await pool.fetch("SELECT id, name, is_default FROM pipelines"):
            ctx.pipelines[p["name"].lower()] = p["id"]
            if p["is_default"]:
                ctx.default_pipeline = p["id"]
        stages = await pool.fetch("SELECT pipeline_id, id, name, kind FROM pipeline_stages ORDER BY position")
        for s in stages:
            ctx.stages[(s["pipeline_id"], s["name"].lower())] = (s["id"], s["kind"])
            if s["kind"] == "open":
                ctx.first_open.setdefault(s["pipeline_id"], (s["id"], s["kind"]))
    return ctx


async def run(pool: asyncpg.Pool, job: uuid.UUID, caller: Caller, region: str) -> bool:
    """Run a queued job to its end, holding its lock; False when it was not queued (another request runs or ran
    it)."""
    async with pool.acquire() as held:
        await held.fetchval(LOCK, job)
        try:
            taken = await held.fetchrow(TAKE, job)
            if taken is None:
                return False
            await _run(pool, job, taken, caller, region)
        finally:
            await held.fetchval(UNLOCK, job)
    return True


async def _run(
    pool: asyncpg.Pool, job: uuid.UUID, taken: asyncpg.Record, caller: Caller, region: str
) -> None:
    await pool.execute("DELETE FROM import_rejects WHERE job_id = $1", job)
    try:
        counts = await _load(pool, job, taken, caller, region)
    except Exception as exc:
        log.exception("import %s failed", job)
        await pool.execute(
            "UPDATE import_jobs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1",
            job, f"the import stopped: {type(exc).__name__}; the rows counted as processed were imported",
        )  # fmt: skip
        raise
    commit = taken["mode"] == "commit"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE import_jobs SET status = 'done', finished_at = now(), total = $2,"
            " content = CASE WHEN $3 THEN NULL ELSE content END WHERE id = $1",
            job, counts.processed, commit,
        )  # fmt: skip
        if commit:
            await audit.record(
                conn, caller, "import", "imports", job,
                {"kind": taken["kind"], "on_duplicate": taken["on_duplicate"], "created": counts.created,
                 "updated": counts.updated, "skipped": counts.skipped, "rejected": counts.rejected},
            )  # fmt: skip


async def _load(
    pool: asyncpg.Pool, job: uuid.UUID, taken: asyncpg.Record, caller: Caller, region: str
) -> Counts:
    kind, commit, on_duplicate = taken["kind"], taken["mode"] == "commit", taken["on_duplicate"]
    file = csvfile.read(taken["content"])
    index = kinds.check_mapping(kind, file.header, orjson.loads(taken["mapping"]))
    ctx = await context(pool, kind, region)
    check = kinds.CHECKS[kind]
    counts = Counts()
    seen: dict[str, int] = {}
    batch: list[tuple[int, load.Record]] = []
    raws: dict[int, csvfile.Row] = {}
    rejects: list[tuple[int, str, str]] = []
    companies: list[uuid.UUID] = []
    for item in csvfile.rows(file):
        counts.processed += 1
        if isinstance(item, Bad):
            rejects.append((item.line, item.reason, item.raw))
            continue
        try:
            record = check({name: item.values[i] for name, i in index.items()}, ctx)
        except kinds.RowError as exc:
            rejects.append((item.line, str(exc), csvfile.raw_of(file, item)))
            continue
        keys = kinds.dedup_keys(kind, record)
        earlier = next((seen[k] for k in keys if k in seen), None)
        if earlier is not None:
            rejects.append((item.line, f"repeats line {earlier}", csvfile.raw_of(file, item)))
            continue
        seen.update(dict.fromkeys(keys, item.line))
        batch.append((item.line, record))
        raws[item.line] = item
        if len(batch) >= CHUNK:
            await _flush(
                pool, job, kind, batch, raws, rejects, counts, commit, on_duplicate, caller, companies, file
            )
            batch, raws, rejects = [], {}, []
    await _flush(pool, job, kind, batch, raws, rejects, counts, commit, on_duplicate, caller, companies, file)
    if commit and kind == "companies":
        await load.link_companies(pool, companies)
    return counts


async def _flush(
    pool: asyncpg.Pool, job: uuid.UUID, kind: str, batch: list[tuple[int, load.Record]],
    raws: dict[int, csvfile.Row], rejects: list[tuple[int, str, str]], counts: Counts, commit: bool,
    on_duplicate: str, caller: Caller, companies: list[uuid.UUID], file: CsvFile,
) -> None:  # fmt: skip
    """Load one chunk, and record its rejects and the job's counts in the chunk's own transaction (a real run), so
    the counts a stopped run leaves say exactly what was imported."""

    async def record(conn: asyncpg.Connection, out: load.Outcome | None) -> None:
        refused = rejects
        if out is not None:
            counts.created += out.created
            counts.updated += out.updated
            counts.skipped += out.skipped
            refused = rejects + [(line, why, csvfile.raw_of(file, raws[line])) for line, why in out.rejects]
            if kind == "companies":
                companies.extend(out.new_ids)
        counts.rejected += len(refused)
        if refused:
            await conn.copy_records_to_table(
                "import_rejects",
                records=[(job, *r) for r in refused],
                columns=["job_id", "line", "reason", "raw"],
            )
        await conn.execute(
            PROGRESS, job, counts.processed, counts.created, counts.updated, counts.skipped, counts.rejected
        )

    if batch:
        await load.chunk(
            pool, kind, batch, commit=commit, on_duplicate=on_duplicate, caller=caller, job=job, record=record
        )
        return
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, None)


async def rejects_csv(pool: asyncpg.Pool, job: uuid.UUID) -> AsyncIterator[tuple[object, ...]]:
    """The job's rejected rows (line, reason, the row as it was), in line order."""
    async with pool.acquire() as conn, conn.transaction():
        async for row in conn.cursor(REJECTS, job, prefetch=1000):
            yield (row["line"], row["reason"], row["raw"])


def preview(kind: str, file: CsvFile, mapping: Mapping[str, str]) -> list[dict[str, Any]]:
    """The first rows as mapped: each field's value, or the reason the row would be refused."""
    index = {name: file.header.index(col) for name, col in mapping.items() if col in file.header}
    out: list[dict[str, Any]] = []
    for item in csvfile.rows(file):
        if len(out) >= PREVIEW_ROWS:
            break
        if isinstance(item, Bad):
            out.append({"line": item.line, "values": {}, "error": item.reason})
            continue
        values = {f.name: item.values[index[f.name]] if f.name in index else "" for f in kinds.FIELDS[kind]}
        out.append({"line": item.line, "values": values, "error": None})
    return out
