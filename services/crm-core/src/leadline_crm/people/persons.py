"""Persons: search, read, the timeline of everything that happened with them, rep edits and manual lead entry.

What a rep types in about who someone is must reach the identity graph, or the person's next web form would
make a second person with the same email. So entering a lead, and adding an email or phone to a person, also
owes the enricher an ``identify`` event (source ``api``) carrying the email and phone with
``crm_contact_id`` = the person's id, written to the outbox in the same transaction (:func:`rep_identify`).
The enricher then gives a person new to the graph this very id, or merges it into the person who already holds
the email or phone (crm-core's merge handling folds the rep's record into the survivor).

Except when the rep meant two persons: a lead created with ``force`` after the 409 (two people sharing an info@
mailbox or a switchboard number), or a PATCH giving a person an email or phone another person already has.
An email or phone another person in crm-core holds is then left out of the event (:func:`unshared`), which
still carries the ``crm_contact_id`` and the values nobody else holds; the graph keeps the rep's person apart,
the shared value stays with its first owner, and later forms with it land on that owner. crm-core's own row
keeps the value, so the rep still finds both persons by it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm import outbox
from leadline_crm.automation import events as domain_events
from leadline_crm.http import audit
from leadline_crm.http.auth import REPS, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.schemas import NAME
from leadline_crm.people import queries
from leadline_crm.sales import assignment
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.identifiers import DEFAULT_PHONE_REGION, canonical_email, canonical_phone
from leadline_shared.ids import new_id

PHONE_REGION = web.AppKey("phone_region", str)  # LEADLINE_PHONE_REGION, for phones typed without +country
WRITERS = REPS
LEAD_WRITERS = frozenset({"admin", "sales", "marketing"})
SHORT = {"type": "string", "maxLength": 100}
PERSON_FIELDS: dict[str, Any] = {
    "first_name": NAME,
    "last_name": NAME,
    "company": NAME,
    "country": SHORT,
    "region": SHORT,
    "age_band": {"type": "string", "maxLength": 20},
    "gender": {"type": "string", "maxLength": 50},
    "industry": SHORT,
    "company_size": {"type": "string", "maxLength": 50},
    "title": NAME,
    "street": NAME,
    "city": SHORT,
    "postal_code": {"type": "string", "maxLength": 20},
    "owner_id": {"type": "string", "format": "uuid", "description": "the user (rep) who works this person"},
    "next_step": {"type": "string", "maxLength": 500, "description": "what the owner does next"},
    "next_step_on": {"type": "string", "format": "date", "description": "when (YYYY-MM-DD); past is overdue"},
}
ATTRIBUTES = {"type": "object", "maxProperties": 100, "description": "custom fields, as defined by an admin"}
Q_MAX = 200  # characters of free-text search


def normalize_email(value: str) -> str:
    """The canonical address every service uses (leadline_shared.identifiers); 422 when it is not one."""
    canonical = canonical_email(value)
    if canonical is None:
        raise BadRequest("email: not a valid email address")
    return canonical


def normalize_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164, as every service stores phones (national numbers read in LEADLINE_PHONE_REGION); 422 otherwise."""
    canonical = canonical_phone(value, region)
    if canonical is None:
        raise BadRequest(
            f"phone: not a valid phone number (without +country code it is read as a {region} number)"
        )
    return canonical


def rep_identify(
    person: uuid.UUID, email: str | None, phone: str | None, action: str, kind: str = "identify"
) -> outbox.Message:
    """The raw ``identify`` event telling the identity graph that ``person`` holds this email and/or phone; with
    ``kind`` "unlink", that it no longer does (a rep removed or corrected it).

    No cookie: the rep is not the person. Keyed by the CRM id rather than by the email (``RawEvent.key``), so
    every event about one CRM person lands on one partition and the enricher sees them in the order written.
    """
    ids = {"crm_contact_id": str(person)}
    if email:
        ids["email"] = email
    if phone:
        ids["phone"] = phone
    now = utc_now_iso()
    event = RawEvent(
        event_id=new_id(),
        type=kind,
        source="api",
        received_at=now,
        sent_at=now,
        occurred_at=now,
        ids=ids,
        properties={"action": action},
    )
    return "raw", f"crm_contact_id:{person}".encode(), event.to_json()


async def unshared(
    conn: asyncpg.Connection, person: uuid.UUID, emails: list[str], phones: list[str]
) -> tuple[list[str], list[str]]:
    """The emails and phones no other person holds: the ones ``person`` may claim in the identity graph.

    Announcing a shared value would make the enricher merge ``person`` into its owner, undoing the rep's choice
    to keep them apart (see the module's docstring).
    """
    if not emails and not phones:
        return emails, phones
    row = await conn.fetchrow(queries.HELD_BY_OTHERS, person, emails, phones)
    return [e for e in emails if e not in row["emails"]], [p for p in phones if p not in row["phones"]]


def _contact_events(
    person: uuid.UUID, emails: list[str], phones: list[str], kind: str = "identify"
) -> list[outbox.Message]:
    """One identify (or unlink) event per email or phone, pairing them up (an event carries one of each at most)."""
    return [
        rep_identify(
            person,
            emails[i] if i < len(emails) else None,
            phones[i] if i < len(phones) else None,
            "contact_removed" if kind == "unlink" else "contact_changed",
            kind,
        )
        for i in range(max(len(emails), len(phones)))
    ]


def no_nul(doc: Any) -> None:
    if isinstance(doc, str) and "\x00" in doc:
        raise BadRequest("text must not contain NUL characters")
    if isinstance(doc, dict):
        for k, v in doc.items():
            no_nul(k)
            no_nul(v)
    if isinstance(doc, list):
        for v in doc:
            no_nul(v)


async def check_attributes(
    conn: asyncpg.Connection, attributes: dict[str, Any], *, require_all: bool = True
) -> None:
    """422 unless every attribute is defined by an admin, has the defined type, and (``require_all``) required
    ones are set. Lead entry does not require them: a lead is never lost for a missing custom field; the person
    page then shows which required fields are still empty."""
    defs = {r["name"]: r for r in await conn.fetch(queries.FIELD_DEFINITIONS)}
    for name, value in attributes.items():
        d = defs.get(name)
        if d is None:
            raise BadRequest(f"attributes/{name}: no custom field with this name (define it first)")
        kind = d["type"]
        ok = {
            "text": isinstance(value, str) and len(value) <= 2000,
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "date": isinstance(value, str) and _is_date(value),
            "choice": isinstance(value, str) and value in d["choices"],
        }[kind]
        if not ok:
            expected = f"one of {d['choices']}" if kind == "choice" else f"a {kind}"
            raise BadRequest(f"attributes/{name}: expected {expected}")
    missing = [n for n, d in defs.items() if d["required"] and n not in attributes]
    if missing and require_all:
        raise BadRequest(f"attributes: required custom field(s) missing: {', '.join(sorted(missing))}")


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def person_cursor(person: uuid.UUID) -> str:
    """Where the next page of persons starts (after this person, newest first)."""
    return base64.urlsafe_b64encode(str(person).encode()).decode().rstrip("=")


def read_person_cursor(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None


def search_pattern(text: str | None) -> str | None:
    """The ILIKE pattern finding ``text`` anywhere; 422 when it is longer than :data:`Q_MAX` characters (a
    6,000-character pattern cost seconds of database time per request) or holds a NUL."""
    if not text:
        return None
    if len(text) > Q_MAX:
        raise BadRequest(f"q: at most {Q_MAX} characters")
    no_nul(text)
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def find_persons(
    pool: asyncpg.Pool,
    filters: tuple[str | None, str | None, str | None, str | None],
    after: uuid.UUID | None,
    limit: int,
    include_anonymous: bool = False,
) -> list[asyncpg.Record]:
    """Up to ``limit`` persons matching ``filters`` (email, phone, stage, ILIKE pattern), newest first.

    Known people only, unless ``include_anonymous`` or the stage asked for is ``anonymous``: nearly every person
    is a cookie that never said who it is, and a list of those hides the leads a rep is looking for.
    """
    everyone = include_anonymous or filters[2] == "anonymous"
    sql = queries.PERSONS_PAGE if everyone else queries.KNOWN_PERSONS_PAGE
    rows: list[asyncpg.Record] = await pool.fetch(sql, *filters, after, limit)
    return rows


async def _audit_change(
    conn: asyncpg.Connection,
    caller: Caller,
    person: uuid.UUID,
    old: asyncpg.Record,
    sets: dict[str, Any],
    body: dict[str, Any],
) -> None:
    """The audit entry of a rep's change: each changed field with its old and new value, a stage move's reason."""
    new = dict(sets)
    if "attributes" in new:
        new["attributes"] = orjson.loads(new["attributes"])
    if "stage" in body:
        new["stage"] = body["stage"]
    changes: dict[str, Any] = audit.diff(old, new, new)
    if "stage" in changes:
        changes["reason"] = body["reason"]
    if changes:
        await audit.record(conn, caller, "update", "persons", person, changes)


async def change_person(
    pool: asyncpg.Pool,
    person: uuid.UUID,
    body: dict[str, Any],
    caller: Caller,
    region: str = DEFAULT_PHONE_REGION,
) -> asyncpg.Record:
    """Apply a validated PATCH body (API and web app); the person's new state.

    An email or phone the person did not have before is also owed to the identity graph (:func:`rep_identify`),
    unless another person holds it (:func:`unshared`): it is stored, not announced. One the PATCH takes away (a
    typo corrected) is announced as ``unlink``, so the graph stops putting that value's events on this person.
    """
    no_nul(body)
    now = datetime.now(UTC)
    if "stage" in body and not body.get("reason"):
        raise BadRequest("reason: a stage move needs a reason")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT * FROM persons WHERE person_id = $1 FOR UPDATE",
            person,
        )
        if row is None:
            raise web.HTTPNotFound(text="no such person")
        if row["erased_at"] is not None and set(body) - {"stage", "reason"}:
            raise Conflict("this person's personal data was erased; only the stage can change")
        sets: dict[str, Any] = {k: v for k, v in body.items() if k in PERSON_FIELDS}
        if sets.get("next_step_on") is not None:
            sets["next_step_on"] = date.fromisoformat(sets["next_step_on"])
        if sets.get("owner_id") is not None:
            sets["owner_id"] = uuid.UUID(sets["owner_id"])
        if "attributes" in body:
            merged = {**row["attributes"], **body["attributes"]}
            merged = {k: v for k, v in merged.items() if v is not None}
            await check_attributes(conn, merged)
            sets["attributes"] = orjson.dumps(merged).decode()
        if "emails" in body:
            sets["emails"] = sorted({normalize_email(e) for e in body["emails"]})
        if "phones" in body:
            sets["phones"] = sorted({normalize_phone(p, region) for p in body["phones"]})
        added_emails = [e for e in sets.get("emails", ()) if e not in row["emails"]]
        added_phones = [p for p in sets.get("phones", ()) if p not in row["phones"]]
        removed_emails = [e for e in row["emails"] if "emails" in sets and e not in sets["emails"]]
        removed_phones = [p for p in row["phones"] if "phones" in sets and p not in sets["phones"]]
        added_emails, added_phones = await unshared(conn, person, added_emails, added_phones)
        await outbox.write(conn, _contact_events(person, removed_emails, removed_phones, "unlink"))
        await outbox.write(conn, _contact_events(person, added_emails, added_phones))
        if sets:
            assignments = ", ".join(
                f"{k} = ${i}" + ("::text::jsonb" if k == "attributes" else "") for i, k in enumerate(sets, 2)
            )
            await conn.execute(
                f"UPDATE persons SET {assignments}, updated_at = now() WHERE person_id = $1",  # noqa: S608
                person,
                *sets.values(),
            )
        if "stage" in body and body["stage"] != row["stage"]:
            await conn.execute(
                "UPDATE persons SET stage = $2, stage_at = $3 WHERE person_id = $1",
                person,
                body["stage"],
                now,
            )
            await conn.execute(
                queries.LOG_TRANSITION, person, row["stage"], body["stage"], now, caller.label, body["reason"]
            )
            await domain_events.stage_changes(
                conn, [(person, row["stage"], body["stage"], f"api:{now.isoformat()}")]
            )
        await _audit_change(conn, caller, person, row, sets, body)
        out: asyncpg.Record = await conn.fetchrow(queries.PERSON, person)
    return out


async def enter_lead(
    pool: asyncpg.Pool, body: dict[str, Any], caller: Caller, region: str = DEFAULT_PHONE_REGION
) -> asyncpg.Record:
    """Create a lead from a validated body (API and web app); Conflict names a person with that email/phone.

    The identity graph hears of the lead through the outbox, in the same transaction (:func:`rep_identify`); a
    forced duplicate's email or phone that another person holds is left out of that event (:func:`unshared`).
    """
    no_nul(body)
    email = normalize_email(body["email"]) if body.get("email") else None
    phone = normalize_phone(body["phone"], region) if body.get("phone") else None
    if email is None and phone is None:
        raise BadRequest("give an email or a phone: a lead is someone who can be reached")
    now = datetime.now(UTC)
    person = uuid.UUID(new_id())
    async with pool.acquire() as conn, conn.transaction():
        announced: tuple[str | None, str | None] = (email, phone)
        if body.get("force"):
            emails, phones = await unshared(conn, person, [email] if email else [], [phone] if phone else [])
            announced = (emails[0] if emails else None, phones[0] if phones else None)
        else:
            existing = await conn.fetchval(queries.DUPLICATE, email, phone)
            if existing is not None:
                raise Conflict(
                    f"a person with this {'email' if email else 'phone'} exists: {existing}",
                    existing_person_id=str(existing),
                )
        attributes = body.get("attributes") or {}
        await check_attributes(conn, attributes, require_all=False)
        await conn.execute(
            queries.INSERT_LEAD,
            person,
            now,
            *(body.get(k) for k in ("first_name", "last_name")),
            [email] if email else [],
            [phone] if phone else [],
            *(
                body.get(k)
                for k in ("company", "country", "region", "age_band", "gender", "industry", "company_size")
            ),
            body.get("source") or "api",
            orjson.dumps(attributes).decode(),
            *(body.get(k) for k in ("title", "street", "city", "postal_code")),
            body.get("owner_id")
            or (str(caller.user_id) if caller.user_id and caller.role == "sales" else None),
            *(body.get(k) for k in ("next_step", "next_step_on")),
        )
        await conn.execute(
            queries.LOG_TRANSITION, person, "anonymous", "lead", now, caller.label, "entered by a rep"
        )
        await domain_events.emit(conn, [domain_events.NewEvent("person.created", f"person:{person}", person)])
        await domain_events.stage_changes(conn, [(person, "anonymous", "lead", "entered")])
        await assignment.new_leads(conn, [person], caller)
        entered = {k: body.get(k) for k in PERSON_FIELDS} | {
            "email": email,
            "phone": phone,
            "source": body.get("source") or "api",
            "attributes": attributes or None,
            "force": body.get("force") or None,
        }
        await audit.record(conn, caller, "create", "persons", person, audit.values(entered, entered))
        await outbox.write(conn, [rep_identify(person, *announced, "lead_entered")])
        row: asyncpg.Record = await conn.fetchrow(queries.PERSON, person)
    return row
