"""Loading checked rows set-based: each chunk of rows is COPYed into a temporary staging table, matched against what
is already there in one statement, and written with a few INSERT … SELECT / UPDATE … FROM statements, so 100,000
rows cost a few dozen round trips, not 100,000.

The duplicate check is manual entry's: a person is the one holding the row's canonical email or phone (the
oldest such person, people/queries.py ``DUPLICATE``); a company the one with the row's domain, or without a
domain in the row, the same name (case-insensitive); a deal the one with the same title, person, company and
pipeline. A duplicate is updated (fields the row fills overwrite, emails and phones are added) or skipped. Two
rows of one chunk that match one existing record: the later is refused, naming the earlier.

New people get what a rep-typed lead gets (people/persons.py ``enter_lead``): stage ``lead`` with its transition,
their email domain's company and an owner by the assignment rules, an audit entry, and an ``identify`` raw event
for the identity graph through the outbox (one multi-row insert per chunk), and the domain events automation
listens to (:func:`lead_events`: one multi-row insert per chunk, of the types an enabled rule or webhook wants).
An email or phone added to an existing person is announced the same way unless another person holds it
(persons.py ``unshared``).

A dry run does the same in a transaction it rolls back, so its counts are the real ones and nothing is written.
Each chunk of a real run commits on its own with the job's counts and rejects (imports/jobs.py), so the job's
progress is true as it goes; a run that fails or stops halfway has imported exactly the rows its counts say.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from leadline_crm import outbox
from leadline_crm.automation import events as domain_events
from leadline_crm.http.auth import Caller
from leadline_crm.imports import kinds
from leadline_crm.people.persons import rep_identify
from leadline_crm.sales import assignment

Record = tuple[Any, ...]


@dataclass
class Outcome:
    """What one chunk did (or, in a dry run, would do), and the rows the database refused with the reason."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)
    new_ids: list[uuid.UUID] = field(default_factory=list)


PEOPLE_COLUMNS = ("line", "person_id", "email", "phone", *kinds.PERSON_TEXTS, "owner_id")
COMPANY_COLUMNS = ("line", "id", "name", "domain", "industry", "size", "country", "owner_id")
DEAL_COLUMNS = ("line", "id", "title", "amount", "currency", "pipeline_id", "stage_id", "status", "close_reason",
                "expected_close_on", "owner_id", "person_email", "company_domain", "company_name")  # fmt: skip

STAGING = {
    "people": f"""CREATE TEMP TABLE import_stage (line integer PRIMARY KEY, person_id uuid, email text, phone text,
        {", ".join(f"{t} text" for t in kinds.PERSON_TEXTS)}, owner_id uuid, existing uuid) ON COMMIT DROP""",
    "companies": """CREATE TEMP TABLE import_stage (line integer PRIMARY KEY, id uuid, name text, domain text,
        industry text, size text, country text, owner_id uuid, existing uuid) ON COMMIT DROP""",
    "deals": """CREATE TEMP TABLE import_stage (line integer PRIMARY KEY, id uuid, title text, amount numeric(14, 2),
        currency text, pipeline_id uuid, stage_id uuid, status text, close_reason text, expected_close_on date,
        owner_id uuid, person_email text, company_domain text, company_name text, person_id uuid, company_id uuid,
        existing uuid) ON COMMIT DROP""",
}
COLUMNS = {"people": PEOPLE_COLUMNS, "companies": COMPANY_COLUMNS, "deals": DEAL_COLUMNS}

# The persons holding any of the chunk's emails ($1) or phones ($2), found in one bitmap scan of the GIN indexes
# (``&&``, with sequential scans switched off for the statement: the planner estimates an overlap with thousands of
# values to match everyone), then paired with the rows by equality (hash joins). A correlated ``@>`` per row, or
# one GIN probe per value, searched GIN's pending list of freshly inserted persons once per value: seconds per
# chunk. The oldest holder wins, as in manual entry's check.
HOLDERS = """
WITH c AS MATERIALIZED (SELECT person_id, emails, phones, created_at FROM persons
                         WHERE emails && $1::text[] OR phones && $2::text[]),
     e AS MATERIALIZED (SELECT c.person_id, c.created_at, v FROM c, unnest(c.emails) AS v),
     ph AS MATERIALIZED (SELECT c.person_id, c.created_at, v FROM c, unnest(c.phones) AS v)
"""
# GIN keeps freshly inserted keys in a pending list that every search reads against each of its keys: after a
# few chunks of new persons, matching the next chunk took seconds. Each chunk first moves the lists into the
# indexes (what autovacuum would do later).
CLEAN_PENDING = "SELECT gin_clean_pending_list('persons_emails'::regclass) + gin_clean_pending_list('persons_phones'::regclass)"
INDEX_ONLY = "SET LOCAL enable_seqscan = off"
SEQ_AGAIN = "SET LOCAL enable_seqscan = on"
MATCH = {
    "people": HOLDERS  # noqa: S608 (constant text)
    + """
UPDATE import_stage i SET existing = m.person_id
  FROM (SELECT DISTINCT ON (line) line, person_id FROM (
            SELECT s.line, e.person_id, e.created_at FROM import_stage s JOIN e ON e.v = s.email
            UNION ALL
            SELECT s.line, ph.person_id, ph.created_at FROM import_stage s JOIN ph ON ph.v = s.phone) AS x
         ORDER BY line, created_at) AS m
 WHERE m.line = i.line""",
    "companies": """
UPDATE import_stage i SET existing = coalesce(
    (SELECT c.id FROM companies c WHERE i.domain IS NOT NULL AND c.domain = i.domain),
    (SELECT c.id FROM companies c WHERE i.domain IS NULL AND lower(c.name) = lower(i.name)
      ORDER BY c.created_at LIMIT 1))""",
    # The deals of the chunk's persons, and the person-less deals of its companies, read once through their
    # indexes, then paired with the rows by a hash join on pipeline and title. A correlated lookup per row chose a
    # scan of every deal per row whenever the statistics had not yet seen the deals of the chunks before (14 s per
    # chunk against 50,000 fresh deals).
    "deals": """
WITH cand AS MATERIALIZED (
    SELECT d.id, d.person_id, d.company_id, d.pipeline_id, lower(d.title) AS t, d.created_at FROM deals d
     WHERE d.person_id = ANY(ARRAY(SELECT DISTINCT person_id FROM import_stage WHERE person_id IS NOT NULL))
    UNION ALL
    SELECT d.id, d.person_id, d.company_id, d.pipeline_id, lower(d.title), d.created_at FROM deals d
     WHERE d.person_id IS NULL
       AND d.company_id = ANY(ARRAY(SELECT DISTINCT company_id FROM import_stage
                                     WHERE person_id IS NULL AND company_id IS NOT NULL)))
UPDATE import_stage i SET existing = m.id
  FROM (SELECT DISTINCT ON (s.line) s.line, c.id FROM import_stage s JOIN cand c
            ON c.pipeline_id = s.pipeline_id AND c.t = lower(s.title)
           AND ((s.person_id IS NOT NULL AND c.person_id = s.person_id
                 AND c.company_id IS NOT DISTINCT FROM s.company_id)
             OR (s.person_id IS NULL AND c.person_id IS NULL AND c.company_id = s.company_id))
         ORDER BY s.line, c.created_at) AS m
 WHERE m.line = i.line""",
}

# The deal's person by email and company by domain or name, before matching; rows naming one that is not there
# are refused.
DEAL_LINKS = (
    HOLDERS  # noqa: S608 (constant text)
    + """
UPDATE import_stage i SET person_id = m.person_id
  FROM (SELECT DISTINCT ON (s.line) s.line, e.person_id FROM import_stage s JOIN e ON e.v = s.person_email
         ORDER BY s.line, e.created_at) AS m
 WHERE m.line = i.line"""
)
DEAL_COMPANIES = """
UPDATE import_stage i SET company_id = coalesce(
    (SELECT c.id FROM companies c WHERE i.company_domain IS NOT NULL AND c.domain = i.company_domain),
    (SELECT c.id FROM companies c WHERE i.company_name IS NOT NULL AND lower(c.name) = lower(i.company_name)
      ORDER BY c.created_at LIMIT 1))
 WHERE i.company_domain IS NOT NULL OR i.company_name IS NOT NULL"""
DEAL_UNLINKED = """
DELETE FROM import_stage
 WHERE (person_email IS NOT NULL AND person_id IS NULL)
    OR ((company_domain IS NOT NULL OR company_name IS NOT NULL) AND company_id IS NULL)
RETURNING line, CASE WHEN person_email IS NOT NULL AND person_id IS NULL
                     THEN 'person_email: no person with this email'
                     ELSE 'company: no company with this domain or name (import the companies first)' END"""

REPEATS = """
DELETE FROM import_stage i USING (
    SELECT line, min(line) OVER (PARTITION BY existing) AS first FROM import_stage WHERE existing IS NOT NULL) d
 WHERE i.line = d.line AND d.line <> d.first
RETURNING i.line, d.first"""

COUNT_NEW = "SELECT count(*) FILTER (WHERE existing IS NULL), count(*) FILTER (WHERE existing IS NOT NULL) FROM import_stage"

AUDIT_NEW = """
INSERT INTO audit_log (actor, actor_user_id, via, action, entity_type, entity_id, changes)
SELECT $1, $2, $3, $4, $5, {id}::text, jsonb_strip_nulls({values} || jsonb_build_object('import_id', $6::text, 'line', line))
  FROM import_stage WHERE {where}"""

INSERT = {
    "people": """
INSERT INTO persons (person_id, first_seen, last_seen, first_name, last_name, emails, phones, company, country, region,
                     industry, company_size, source, attributes, identified, stage, stage_at, score_at, title, street,
                     city, postal_code, owner_id)
SELECT person_id, $1, $1, first_name, last_name, CASE WHEN email IS NULL THEN '{}' ELSE ARRAY[email] END,
       CASE WHEN phone IS NULL THEN '{}' ELSE ARRAY[phone] END, company, country, region, industry, company_size,
       'import', '{}', true, 'lead', $1, $1, title, street, city, postal_code, owner_id
  FROM import_stage WHERE existing IS NULL ORDER BY line""",
    "companies": """
INSERT INTO companies (id, name, domain, industry, size, country, owner_id, created_at, updated_at)
SELECT id, name, domain, industry, size, country, owner_id, $1, $1 FROM import_stage WHERE existing IS NULL ORDER BY line""",
    "deals": """
INSERT INTO deals (id, title, person_id, company_id, amount, currency, pipeline_id, stage_id, expected_close_on, owner_id,
                   status, close_reason, closed_at, stage_at, created_at, updated_at)
SELECT id, title, person_id, company_id, amount, currency, pipeline_id, stage_id, expected_close_on, owner_id, status,
       close_reason, CASE WHEN status = 'open' THEN NULL ELSE $1::timestamptz END, $1, $1, $1
  FROM import_stage WHERE existing IS NULL ORDER BY line""",
}

# The new persons without an owner in the row, as the assignment rules read a lead (an imported person has made
# no form submission yet).
NEW_UNOWNED = """
SELECT person_id, country, NULL::text AS form_key FROM import_stage WHERE existing IS NULL AND owner_id IS NULL"""
STAGE_OWNERS = """
UPDATE import_stage i SET owner_id = v.owner_id FROM unnest($1::uuid[], $2::uuid[]) AS v(person_id, owner_id)
 WHERE i.person_id = v.person_id"""

NEW_LEAD_TRANSITIONS = """
INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, cause_user, reason)
SELECT person_id, 'anonymous', 'lead', $1, $2, 'imported' FROM import_stage WHERE existing IS NULL"""

NEW_DEAL_HISTORY = """
INSERT INTO deal_stage_history (deal_id, from_stage_id, to_stage_id, from_stage, to_stage, at, actor, reason)
SELECT i.id, NULL, i.stage_id, NULL, s.name, $1, $2, 'imported'
  FROM import_stage i JOIN pipeline_stages s ON s.id = i.stage_id WHERE i.existing IS NULL"""

# The emails and phones an update adds to a person that no other person holds: announced to the identity graph.
ANNOUNCE_ADDED = (
    HOLDERS  # noqa: S608 (constant text)
    + """
SELECT i.existing AS person_id,
       CASE WHEN i.email IS NOT NULL AND NOT p.emails @> ARRAY[i.email]
             AND NOT EXISTS (SELECT 1 FROM e WHERE e.v = i.email AND e.person_id <> p.person_id)
            THEN i.email END AS email,
       CASE WHEN i.phone IS NOT NULL AND NOT p.phones @> ARRAY[i.phone]
             AND NOT EXISTS (SELECT 1 FROM ph WHERE ph.v = i.phone AND ph.person_id <> p.person_id)
            THEN i.phone END AS phone
  FROM import_stage i JOIN persons p ON p.person_id = i.existing
 WHERE p.erased_at IS NULL"""
)

UPDATE = {
    "people": f"""
UPDATE persons p SET
    {", ".join(f"{t} = coalesce(i.{t}, p.{t})" for t in kinds.PERSON_TEXTS)},
    owner_id = coalesce(i.owner_id, p.owner_id),
    emails = CASE WHEN i.email IS NULL OR p.emails @> ARRAY[i.email] THEN p.emails
                  ELSE ARRAY(SELECT unnest(p.emails || i.email) ORDER BY 1) END,
    phones = CASE WHEN i.phone IS NULL OR p.phones @> ARRAY[i.phone] THEN p.phones
                  ELSE ARRAY(SELECT unnest(p.phones || i.phone) ORDER BY 1) END,
    updated_at = now()
  FROM import_stage i WHERE p.person_id = i.existing AND p.erased_at IS NULL""",  # noqa: S608 (fixed names)
    "companies": """
UPDATE companies c SET name = i.name, industry = coalesce(i.industry, c.industry), size = coalesce(i.size, c.size),
       country = coalesce(i.country, c.country), owner_id = coalesce(i.owner_id, c.owner_id), updated_at = now()
  FROM import_stage i WHERE c.id = i.existing""",
    "deals": """
UPDATE deals d SET amount = i.amount, currency = i.currency, expected_close_on = coalesce(i.expected_close_on,
       d.expected_close_on), owner_id = coalesce(i.owner_id, d.owner_id), stage_id = i.stage_id, status = i.status,
       close_reason = i.close_reason,
       closed_at = CASE WHEN i.status = 'open' THEN NULL ELSE coalesce(d.closed_at, $1::timestamptz) END,
       stage_at = CASE WHEN d.stage_id = i.stage_id THEN d.stage_at ELSE $1::timestamptz END, updated_at = now()
  FROM import_stage i WHERE d.id = i.existing""",
}

# The moves an update makes, kept in the history; returned as :func:`deal_events` reads them.
MOVED_DEAL_HISTORY = """
WITH moved AS MATERIALIZED (
    SELECT d.id, d.person_id, d.stage_id AS from_id, i.stage_id, f.name AS from_stage, t.name AS stage, t.kind,
           i.amount, i.currency
      FROM import_stage i JOIN deals d ON d.id = i.existing
      JOIN pipeline_stages f ON f.id = d.stage_id JOIN pipeline_stages t ON t.id = i.stage_id
     WHERE d.stage_id <> i.stage_id),
     kept AS (INSERT INTO deal_stage_history (deal_id, from_stage_id, to_stage_id, from_stage, to_stage, at, actor,
                                              reason)
              SELECT id, from_id, stage_id, from_stage, stage, $1, $2, 'imported' FROM moved)
SELECT id, person_id, stage_id, from_stage, stage, kind, amount, currency FROM moved"""

# The new deals of the chunk, as :func:`deal_events` reads them (a new deal "moves" from no stage into its own).
NEW_DEAL_MOVES = """
SELECT i.id, i.person_id, i.stage_id, NULL AS from_stage, s.name AS stage, s.kind, i.amount, i.currency
  FROM import_stage i JOIN pipeline_stages s ON s.id = i.stage_id WHERE i.existing IS NULL"""

AUDIT_VALUES = {
    "people": ("person_id", "persons", "jsonb_build_object('email', email, 'phone', phone, 'first_name', first_name,"
               " 'last_name', last_name, 'company', company, 'owner_id', owner_id)"),
    "companies": ("id", "companies", "jsonb_build_object('name', name, 'domain', domain, 'owner_id', owner_id)"),
    "deals": ("id", "deals", "jsonb_build_object('title', title, 'amount', amount::text, 'currency', currency,"
              " 'stage_id', stage_id, 'owner_id', owner_id)"),
}  # fmt: skip

# Persons take in the companies this import made by their email's domain (companies' LINK_BY_DOMAIN, for many
# companies in one pass over the persons with an email).
LINK_DOMAINS = """
UPDATE persons p SET company_id = c.id, company_linked = 'domain', updated_at = now()
  FROM companies c
 WHERE c.id = ANY($1::uuid[]) AND c.domain IS NOT NULL AND p.emails <> '{}'
   AND c.domain = ANY(ARRAY(SELECT split_part(e, '@', 2) FROM unnest(p.emails) AS e))
   AND p.company_linked IS DISTINCT FROM 'hand' AND p.company_id IS DISTINCT FROM c.id"""


def lead_events(created: Sequence[Mapping[str, Any]]) -> list[domain_events.NewEvent]:
    """What a rep-entered lead announces (people/persons.py ``enter_lead``), for each person a chunk created:
    ``person.created``, ``person.stage_changed`` to ``lead``, and ``lead.assigned`` when it has an owner (the
    row's, or the one the assignment rules gave before the insert). Written with one multi-row insert per chunk, only the
    types somebody listens to (an import nobody listens to costs one small read per chunk); the keys
    are the new person's, so importing the same file again with ``on_duplicate=skip`` announces nothing."""
    found: list[domain_events.NewEvent] = []
    for r in created:
        person = r["person_id"]
        found += [
            domain_events.NewEvent("person.created", f"person:{person}", person),
            domain_events.NewEvent("person.stage_changed", f"imported:{person}:lead", person, None,
                                   {"from": "anonymous", "to": "lead"}),
        ]  # fmt: skip
        if r["owner_id"] is not None:
            found.append(domain_events.NewEvent("lead.assigned", f"assign:{person}:imported", person, None,
                                                {"owner_id": str(r["owner_id"])}))  # fmt: skip
    return found


def deal_events(moves: Sequence[Mapping[str, Any]], cause: str) -> list[domain_events.NewEvent]:
    """What a deal moved through the API announces (automation/events.py ``deal_moved``), for each deal a chunk
    created (``cause`` "imported") or moved (``cause`` "import:<job>"): ``deal.stage_changed``, and ``deal.won``
    into a won stage. The keys name the deal, its stage and the cause, so importing the same file again with
    ``on_duplicate=skip`` announces nothing (no deal is new), and a deal is announced as created once."""
    found: list[domain_events.NewEvent] = []
    for m in moves:
        key = f"deal:{m['id']}:stage:{m['stage_id']}:{cause}"
        data = {"deal_id": str(m["id"]), "stage": m["stage"], "from": m["from_stage"], "kind": m["kind"],
                "amount": str(m["amount"]), "currency": m["currency"]}  # fmt: skip
        found.append(domain_events.NewEvent("deal.stage_changed", key, m["person_id"], str(m["id"]), data))
        if m["kind"] == "won":
            found.append(domain_events.NewEvent("deal.won", key, m["person_id"], str(m["id"]), data))
    return found


async def stage(conn: asyncpg.Connection, kind: str, records: Sequence[tuple[int, Record]]) -> None:
    """The chunk in this transaction's temporary staging table."""
    await conn.execute(STAGING[kind])
    await conn.copy_records_to_table(
        "import_stage", records=[(line, *rec) for line, rec in records], columns=list(COLUMNS[kind])
    )
    await conn.execute("ANALYZE import_stage")


def contacts(kind: str, records: Sequence[tuple[int, Record]]) -> tuple[list[str], list[str]]:
    """The chunk's emails and phones (a deal's person's email), to find their holders with."""
    if kind == "people":
        return [r[1] for _, r in records if r[1]], [r[2] for _, r in records if r[2]]
    if kind == "deals":
        return [r[10] for _, r in records if r[10]], []
    return [], []


async def match(
    conn: asyncpg.Connection, kind: str, keys: tuple[list[str], list[str]]
) -> list[tuple[int, str]]:
    """Find each row's existing record; the rows the database refuses, with the reason."""
    rejects: list[tuple[int, str]] = []
    if kind in ("people", "deals"):
        await conn.fetchval(CLEAN_PENDING)
    if kind == "deals":
        await conn.execute(INDEX_ONLY)
        await conn.execute(DEAL_LINKS, *keys)
        await conn.execute(SEQ_AGAIN)
        await conn.execute(DEAL_COMPANIES)
        rejects += [(r[0], r[1]) for r in await conn.fetch(DEAL_UNLINKED)]
    if kind == "people":
        await conn.execute(INDEX_ONLY)
        await conn.execute(MATCH[kind], *keys)
        await conn.execute(SEQ_AGAIN)
    else:
        await conn.execute(MATCH[kind])
    repeats = await conn.fetch(REPEATS)
    rejects += [(r["line"], f"the same {kind[:-1] if kind != 'people' else 'person'} as line {r['first']}")
                for r in repeats]  # fmt: skip
    return rejects


async def apply(
    conn: asyncpg.Connection,
    kind: str,
    on_duplicate: str,
    caller: Caller,
    job: uuid.UUID,
    keys: tuple[list[str], list[str]],
) -> Outcome:
    """Write the staged chunk: new records created, duplicates updated or skipped."""
    now = datetime.now(UTC)
    new, dup = await conn.fetchrow(COUNT_NEW)
    out = Outcome(created=new, skipped=dup if on_duplicate == "skip" else 0)
    id_col, entity, values = AUDIT_VALUES[kind]
    audit_args = (caller.actor, caller.user_id, caller.via)
    if new:
        given = await _rule_owners(conn) if kind == "people" else []
        await conn.execute(INSERT[kind], now)
        await conn.execute(
            AUDIT_NEW.format(id=id_col, values=values, where="existing IS NULL"), *audit_args, "create", entity,
            str(job),
        )  # fmt: skip
        await assignment.record(conn, given, caller)
        await _after_create(conn, kind, caller, now, out)
    if dup and on_duplicate == "update":
        if kind == "people":
            await conn.execute(INDEX_ONLY)
            announced = await conn.fetch(ANNOUNCE_ADDED, *keys)
            await conn.execute(SEQ_AGAIN)
            await outbox.write(conn, [rep_identify(r["person_id"], r["email"], r["phone"], "contact_imported")
                                      for r in announced if r["email"] or r["phone"]])  # fmt: skip
        if kind == "deals":
            moved = await conn.fetch(MOVED_DEAL_HISTORY, now, caller.label)
            await domain_events.emit_listened(conn, deal_events(moved, f"import:{job}"))
        status = await conn.execute(UPDATE[kind], *((now,) if kind == "deals" else ()))
        out.updated = int(status.split()[-1])
        out.skipped = dup - out.updated  # erased persons are left alone
        await conn.execute(
            AUDIT_NEW.format(id="existing", values=values, where="existing IS NOT NULL"), *audit_args, "update",
            entity, str(job),
        )  # fmt: skip
    return out


async def _rule_owners(conn: asyncpg.Connection) -> list[assignment.Given]:
    """The owners the assignment rules give the chunk's new persons without one, written into the staging table so
    the persons are inserted with them (set after the insert, they cost a second write of every new person)."""
    given = await assignment.choose(conn, await conn.fetch(NEW_UNOWNED))
    if given:
        await conn.execute(STAGE_OWNERS, [p for p, _, _ in given], [o for _, o, _ in given])
    return given


async def _after_create(
    conn: asyncpg.Connection, kind: str, caller: Caller, now: datetime, out: Outcome
) -> None:
    if kind == "people":
        await conn.execute(NEW_LEAD_TRANSITIONS, now, caller.label)
        created = await conn.fetch(
            "SELECT person_id, email, phone, owner_id FROM import_stage WHERE existing IS NULL"
        )
        out.new_ids = [r["person_id"] for r in created]
        await domain_events.emit_listened(conn, lead_events(created))
        await assignment.new_leads(conn, out.new_ids, caller)
        await outbox.write(conn, [rep_identify(r["person_id"], r["email"], r["phone"], "lead_imported")
                                  for r in created])  # fmt: skip
    elif kind == "deals":
        await conn.execute(NEW_DEAL_HISTORY, now, caller.label)
        await domain_events.emit_listened(conn, deal_events(await conn.fetch(NEW_DEAL_MOVES), "imported"))
    else:
        out.new_ids = [
            r["id"] for r in await conn.fetch("SELECT id FROM import_stage WHERE existing IS NULL")
        ]


Recorder = Callable[[asyncpg.Connection, Outcome], Awaitable[None]]
"""Writes a chunk's outcome (the job's counts and rejects) on the chunk's connection."""


async def chunk(
    pool: asyncpg.Pool,
    kind: str,
    records: Sequence[tuple[int, Record]],
    *,
    commit: bool,
    on_duplicate: str,
    caller: Caller,
    job: uuid.UUID,
    record: Recorder,
) -> Outcome:
    """Stage, match and write one chunk in one transaction, ``record`` its outcome in that transaction, and commit;
    a dry run rolls the chunk back, keeps only the counts and records them after."""
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await stage(conn, kind, records)
            keys = contacts(kind, records)
            rejects = await match(conn, kind, keys)
            out = await apply(conn, kind, on_duplicate, caller, job, keys)
            out.rejects = rejects
            if commit:
                await record(conn, out)
        except BaseException:
            await tr.rollback()
            raise
        if commit:
            await tr.commit()
        else:
            await tr.rollback()
            out.new_ids = []
            async with conn.transaction():
                await record(conn, out)
    return out


async def link_companies(pool: asyncpg.Pool, companies: list[uuid.UUID]) -> None:
    """After a company import: persons take in the new companies of their email's domain (one pass)."""
    if companies:
        await pool.execute(LINK_DOMAINS, companies)
