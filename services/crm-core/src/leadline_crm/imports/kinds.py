"""What an import of people, companies or deals takes: the fields, the column names that suggest each one, and
the checks one row must pass before it is staged (the same as manual entry: canonical email and phone from
leadline_shared.identifiers, no free-mail company domain, a known pipeline and stage, a reason to lose a deal).

A row's values become a tuple in the order of its kind's staging table (imports/load.py); a row that fails
a check raises :class:`RowError` with a reason a person can act on, naming the field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from leadline_crm.sales.assignment import free_mail_domains
from leadline_shared.identifiers import canonical_email, canonical_phone
from leadline_shared.ids import new_id

KINDS = ("people", "companies", "deals")
TEXT_MAX = 200
DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


class RowError(ValueError):
    """Why one row cannot be imported."""


@dataclass(frozen=True)
class Field:
    """A field an import can fill: its name, label, and the column names that suggest it."""

    name: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False


@dataclass
class Context:
    """What row checks look up: the phone region, users by email, pipelines and stages by name."""

    region: str
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    default_pipeline: uuid.UUID | None = None
    pipelines: dict[str, uuid.UUID] = field(default_factory=dict)
    stages: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, str]] = field(default_factory=dict)
    first_open: dict[uuid.UUID, tuple[uuid.UUID, str]] = field(default_factory=dict)
    domains: dict[str, str | None] = field(default_factory=dict)


def email_of(raw: str, ctx: Context) -> str | None:
    """:func:`canonical_email`, checking each domain once per import: a plain ASCII address (a dot-atom local part
    within the length limits) is its lower-cased local part and its domain as canonical_email gives it; any other
    shape goes through canonical_email itself. Validating every address in full cost 30-200 µs a row, most of the
    import's time; tests/crm_core/imports/test_kinds.py holds the two to the same answers."""
    text = raw.strip().lower()
    local, at, domain = text.rpartition("@")
    if not (at and text.isascii() and len(local) <= 64 and len(text) <= 254 and LOCAL_PART.match(local)):
        return canonical_email(raw)
    if domain not in ctx.domains:
        checked = canonical_email("a@" + domain)
        ctx.domains[domain] = checked.split("@", 1)[1] if checked else None
    known = ctx.domains[domain]
    return f"{local}@{known}" if known else None


OWNER = Field("owner", "Owner (a user's email)", ("owner", "owner email", "rep", "sales rep", "assigned to"))
FIELDS: dict[str, tuple[Field, ...]] = {
    "people": (
        Field("email", "Email", ("email", "e-mail", "email address", "mail", "work email")),
        Field("phone", "Phone", ("phone", "telephone", "mobile", "phone number", "tel", "cell")),
        Field("first_name", "First name", ("first name", "firstname", "given name", "forename")),
        Field("last_name", "Last name", ("last name", "lastname", "surname", "family name")),
        Field("company", "Company", ("company", "company name", "organization", "organisation", "account")),
        Field("title", "Job title", ("title", "job title", "position", "role")),
        Field("country", "Country", ("country", "country code")),
        Field("region", "Region", ("region", "state", "province")),
        Field("city", "City", ("city", "town")),
        Field("street", "Street", ("street", "address", "street address")),
        Field("postal_code", "Postal code", ("postal code", "postcode", "zip", "zip code")),
        Field("industry", "Industry", ("industry", "sector")),
        Field("company_size", "Company size", ("company size", "employees", "size")),
        OWNER,
    ),
    "companies": (
        Field("name", "Name", ("name", "company", "company name", "organization", "account name"), True),
        Field("domain", "Domain or website", ("domain", "website", "web site", "url", "web")),
        Field("industry", "Industry", ("industry", "sector")),
        Field("size", "Size", ("size", "employees", "company size")),
        Field("country", "Country", ("country", "country code")),
        OWNER,
    ),
    "deals": (
        Field("title", "Title", ("title", "deal", "deal name", "name", "subject"), True),
        Field("amount", "Amount", ("amount", "value", "deal value")),
        Field("currency", "Currency", ("currency",)),
        Field("pipeline", "Pipeline", ("pipeline",)),
        Field("stage", "Stage", ("stage", "deal stage")),
        Field("expected_close_on", "Expected close (YYYY-MM-DD)", ("close date", "expected close",
                                                                   "expected close date", "closing date")),
        Field("person_email", "Person's email", ("email", "person email", "contact email", "person")),
        Field("company", "Company (domain or name)", ("company", "company domain", "organization", "account")),
        Field("reason", "Reason (to lose)", ("reason", "lost reason", "close reason")),
        OWNER,
    ),
}  # fmt: skip


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def suggest(kind: str, header: list[str]) -> dict[str, str]:
    """The column each field is read from, guessed from the header's names (each column used once)."""
    by_key = {_key(h): h for h in header}
    out: dict[str, str] = {}
    for f in FIELDS[kind]:
        for alias in (f.name, *f.aliases):
            column = by_key.get(_key(alias))
            if column is not None and column not in out.values():
                out[f.name] = column
                break
    return out


def check_mapping(kind: str, header: list[str], mapping: Mapping[str, Any]) -> dict[str, int]:
    """The column index of each mapped field; ValueError naming an unknown field or column, or a missing one."""
    names = {f.name for f in FIELDS[kind]}
    out: dict[str, int] = {}
    for name, column in mapping.items():
        if column in (None, ""):
            continue
        if name not in names:
            raise ValueError(f"mapping: {kind} have no field {name!r} (fields: {', '.join(sorted(names))})")
        if not isinstance(column, str) or column not in header:
            raise ValueError(f"mapping/{name}: the file has no column {column!r}")
        out[name] = header.index(column)
    missing = [f.name for f in FIELDS[kind] if f.required and f.name not in out]
    if missing:
        raise ValueError(f"mapping: choose the column of {', '.join(missing)}")
    if kind == "people" and not {"email", "phone"} & set(out):
        raise ValueError(
            "mapping: choose the column of email or phone (a person is someone who can be reached)"
        )
    return out


def _text(values: dict[str, str], name: str) -> str | None:
    value = values.get(name, "").strip()
    if not value:
        return None
    if "\x00" in value:
        raise RowError(f"{name}: contains a NUL character")
    if len(value) > TEXT_MAX:
        raise RowError(f"{name}: longer than {TEXT_MAX} characters")
    return value


def _owner(values: dict[str, str], ctx: Context) -> uuid.UUID | None:
    raw = _text(values, "owner")
    if raw is None:
        return None
    owner = ctx.users.get((canonical_email(raw) or raw).lower())
    if owner is None:
        raise RowError(f"owner: no active user with the email {raw!r}")
    return owner


def person(values: dict[str, str], ctx: Context) -> tuple[Any, ...]:
    """(person_id, email, phone, first_name, …, owner_id) of a person row."""
    email_raw, phone_raw = _text(values, "email"), _text(values, "phone")
    email = email_of(email_raw, ctx) if email_raw else None
    if email_raw and email is None:
        raise RowError("email: not a valid email address")
    phone = canonical_phone(phone_raw, ctx.region) if phone_raw else None
    if phone_raw and phone is None:
        raise RowError(f"phone: not a valid phone number (without +country code it is read as {ctx.region})")
    if email is None and phone is None:
        raise RowError("no email or phone: a person is someone who can be reached")
    texts = tuple(_text(values, n) for n in PERSON_TEXTS)
    return (uuid.UUID(new_id()), email, phone, *texts, _owner(values, ctx))


PERSON_TEXTS = ("first_name", "last_name", "company", "title", "country", "region", "city", "street",
                "postal_code", "industry", "company_size")  # fmt: skip


def domain_of(raw: str | None) -> str | None:
    """A company's domain from a domain or a website address (https://www.acme.com/about is acme.com)."""
    if raw is None:
        return None
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", raw.strip().lower()).split("/")[0].split(":")[0]
    host = host.removeprefix("www.")
    if not DOMAIN.match(host) or len(host) > 253:
        raise RowError(f"domain: {raw[:80]!r} is not a domain such as acme.com")
    if host in free_mail_domains():
        raise RowError(f"domain: {host} is a free-mail domain; people there are not one company")
    return host


def company(values: dict[str, str], ctx: Context) -> tuple[Any, ...]:
    """(id, name, domain, industry, size, country, owner_id) of a company row."""
    name = _text(values, "name")
    if name is None:
        raise RowError("name: empty")
    return (
        uuid.uuid4(), name, domain_of(_text(values, "domain")), _text(values, "industry"), _text(values, "size"),
        _text(values, "country"), _owner(values, ctx),
    )  # fmt: skip


def amount_of(raw: str | None) -> Decimal:
    """An amount as written in a spreadsheet: 12000, 12,000.50, 12.000,50 or 1 200; at least 0."""
    if raw is None:
        return Decimal(0)
    text = raw.replace(" ", "").replace("\u00a0", "")
    for symbol in "€$£":
        text = text.replace(symbol, "")
    if "," in text and "." in text:
        text = (
            text.replace(",", "")
            if text.rfind(".") > text.rfind(",")
            else text.replace(".", "").replace(",", ".")
        )
    elif "," in text:
        text = text.replace(",", ".") if re.search(r",\d{1,2}$", text) else text.replace(",", "")
    try:
        value = Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise RowError(f"amount: {raw[:40]!r} is not a number") from None
    if value < 0 or value >= Decimal("1e11"):
        raise RowError("amount: must be between 0 and 100,000,000,000")
    return value


def _stage(values: dict[str, str], ctx: Context) -> tuple[uuid.UUID, uuid.UUID, str]:
    pipeline_name = _text(values, "pipeline")
    pipeline = ctx.pipelines.get(pipeline_name.lower()) if pipeline_name else ctx.default_pipeline
    if pipeline is None:
        raise RowError(
            f"pipeline: no pipeline named {pipeline_name!r}" if pipeline_name else "pipeline: none"
        )
    stage_name = _text(values, "stage")
    found = ctx.stages.get((pipeline, stage_name.lower())) if stage_name else ctx.first_open.get(pipeline)
    if found is None:
        raise RowError(
            f"stage: no stage named {stage_name!r} in this pipeline" if stage_name else "stage: none"
        )
    return pipeline, *found


def deal(values: dict[str, str], ctx: Context) -> tuple[Any, ...]:
    """(id, title, amount, currency, pipeline_id, stage_id, status, close_reason, expected_close_on, owner_id,
    person_email, company_domain, company_name) of a deal row."""
    title = _text(values, "title")
    if title is None:
        raise RowError("title: empty")
    currency = (_text(values, "currency") or "EUR").upper()
    if not CURRENCY.match(currency):
        raise RowError(f"currency: {currency[:20]!r} is not a three-letter code such as EUR")
    pipeline, stage, status = _stage(values, ctx)
    reason = _text(values, "reason")
    if status == "lost" and not reason:
        raise RowError("reason: say why the deal was lost")
    close_raw = _text(values, "expected_close_on")
    try:
        close_on = date.fromisoformat(close_raw) if close_raw else None
    except ValueError:
        raise RowError("expected_close_on: a date as YYYY-MM-DD") from None
    email_raw = _text(values, "person_email")
    email = email_of(email_raw, ctx) if email_raw else None
    if email_raw and email is None:
        raise RowError("person_email: not a valid email address")
    company_raw = _text(values, "company")
    domain = name = None
    if company_raw:
        try:
            domain = domain_of(company_raw) if "." in company_raw and " " not in company_raw else None
        except RowError:
            domain = None
        name = None if domain else company_raw
    if email is None and company_raw is None:
        raise RowError("give the person's email or the company: a deal is with someone")
    return (
        uuid.uuid4(), title, amount_of(_text(values, "amount")), currency, pipeline, stage, status,
        reason if status != "open" else None, close_on, _owner(values, ctx), email, domain, name,
    )  # fmt: skip


CHECKS: dict[str, Callable[[dict[str, str], Context], tuple[Any, ...]]] = {
    "people": person,
    "companies": company,
    "deals": deal,
}


def dedup_keys(kind: str, record: tuple[Any, ...]) -> list[str]:
    """The keys under which two rows of one file are the same record (a later repeat is refused)."""
    if kind == "people":
        return [
            k for k in (f"e:{record[1]}" if record[1] else "", f"p:{record[2]}" if record[2] else "") if k
        ]
    if kind == "companies":
        return [f"d:{record[2]}" if record[2] else f"n:{record[1].lower()}"]
    return [f"{record[1].lower()}|{record[4]}|{record[10]}|{record[11]}|{(record[12] or '').lower()}"]
