"""The settings pages under /app/settings, for admins and marketers: forms with their embed code and the snippet
tag, write keys, campaigns, affiliates and ads with their tracking URLs, email sends, score rules and the scoring
settings, custom field definitions, and the email-link builder (a CSV of recipients in, a CSV of signed links
out).

Every record is written through the REST API's own functions (the CRUD engine of http/crud.py, the scoring
settings of admin/routes.py, the link minting of catalog/links.py), checked against the API's JSON Schemas, with
the API's roles: admins and marketers see the settings, each record type's writers change it (score rules,
scoring and custom fields: admins), everyone else gets a 403 page. Score rules and custom fields belong to the
admin domain; their settings pages live here with the rest, reaching admin/ only through its ``RESOURCES``,
``SCORING_BODY`` and ``change_scoring``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import asyncpg
import jinja2
from aiohttp import web

from leadline_crm import queries as core_queries
from leadline_crm.admin import routes as admin
from leadline_crm.catalog import recipients
from leadline_crm.catalog.editing import Input, Invalid, body_of, check, refusals, typed, values_of
from leadline_crm.catalog.links import COLLECTOR_URL, KEYRING, LINK_BODY
from leadline_crm.catalog.routes import RESOURCES
from leadline_crm.http import crud
from leadline_crm.http.auth import ADMIN, MARKETING, Caller
from leadline_crm.http.crud import Resource, Row
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.session import CALLER as SESSION_CALLER
from leadline_crm.http.templating import TEMPLATES, render
from leadline_shared.events import EVENT_TYPES

LIST_LIMIT = 500
Cells = Callable[[Row, str], list[dict[str, Any]]]


def _res(path: str) -> Resource:
    return next(r for r in (*RESOURCES, *admin.RESOURCES) if r.path == path)


def _text(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return {"text": "" if value is None else str(value), "code": False}


def _code(value: str) -> dict[str, Any]:
    return {"text": value, "code": True}


def tracking_url(collector: str, affiliate_id: str, ad_id: str) -> str:
    """The collector's ad-click URL (``GET /a/{affiliate}/{ad}``): it records the click and redirects to the
    ad's landing URL; an affiliate may add ``?sub=…`` for its own placement."""
    return f"{collector.rstrip('/')}/a/{quote(affiliate_id, safe='')}/{quote(ad_id, safe='')}"


def snippet_tag(collector: str) -> str:
    """The snippet's tag for every page of the site (the collector's ``GET /s.js``)."""
    return f'<script async src="{collector.rstrip("/")}/s.js"></script>'


#: How the embed code asks for the fields it knows: (input type, autocomplete, label); others are text inputs.
KNOWN_FIELDS = {
    "email": ("email", "email", "Email"),
    "phone": ("tel", "tel", "Phone"),
    "first_name": ("text", "given-name", "First name"),
    "last_name": ("text", "family-name", "Last name"),
    "name": ("text", "name", "Name"),
    "company": ("text", "organization", "Company"),
    "message": ("textarea", "", "Message"),
    "comments": ("textarea", "", "Comments"),
    "consent_marketing": ("checkbox", "", "Yes, send me news and offers"),
    "consent_analytics": ("checkbox", "", "I agree to analytics cookies"),
}


def embed_code(env: jinja2.Environment, collector: str, form: Row) -> str:
    """The copy-paste HTML of a form (catalog/embed_code.html): it posts to the collector's ``POST /f/{key}``
    and works without JavaScript (the collector answers with a 303 to the thank-you page); the snippet, when on
    the page too, leaves posts to the collector to the collector."""
    fields = []
    for name in form["fields"]:
        kind, autocomplete, label = KNOWN_FIELDS.get(name, ("text", "", name.replace("_", " ").capitalize()))
        fields.append({"name": name, "kind": kind, "autocomplete": autocomplete, "label": label,
                       "required": name in form["required"]})  # fmt: skip
    action = f"{collector.rstrip('/')}/f/{quote(form['key'], safe='')}"
    return env.get_template("catalog/embed_code.html").render(action=action, fields=fields).strip()


def _form_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    return [_text(row["key"]), _text(row["name"]), _text(row["fields"]), _text(row["thank_you_url"])]


def _source_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    return [_code(row["write_key"]), _text(row["name"])]


def _campaign_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    return [_text(row["name"]), _text(row["channel"]), _text(row["starts_on"]), _text(row["ends_on"])]


def _affiliate_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    return [_text(row["affiliate_id"]), _text(row["name"]), _text(row["contact_email"])]


def _ad_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    url = tracking_url(collector, row["affiliate_id"], row["ad_id"])
    return [_text(row["affiliate_id"]), _text(row["ad_id"]), _text(row["name"]), _code(url)]


def _send_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    return [
        _text(row["subject"]),
        _text(row["campaign_name"]),
        _text(row["sent_at"].strftime("%Y-%m-%d %H:%M")),
    ]


def _rule_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    points = f"{row['points']:g}"
    return [_text(row["name"]), _text(row["event_type"]), _text(row["url_contains"]), _text(points),
            _text("yes" if row["active"] else "no")]  # fmt: skip


def _field_cells(row: Row, collector: str) -> list[dict[str, Any]]:
    return [_text(row["name"]), _text(row["label"]), _text(row["type"]), _text(row["choices"]),
            _text("yes" if row["required"] else "no")]  # fmt: skip


@dataclass(frozen=True)
class Section:
    """One kind of settings record: its pages at /app/settings/{slug}, the API resource behind them, the inputs
    of its form and the columns of its list."""

    slug: str
    title: str
    blurb: str
    resource: Resource
    inputs: tuple[Input, ...]
    headings: tuple[str, ...]
    cells: Cells
    label_of: str  # the column naming a record in headings and links
    list_sql: str = ""  # the list's query (limit $1); else the table in the API's order
    scope: str = "true"  # which rows of the table are this section's (counted on the index)
    defaults: Callable[[], dict[str, Any]] = dict  # what a new record's form starts with
    extras: Callable[[web.Request, Row], dict[str, Any]] | None = None  # more for a record's page

    def labels(self) -> dict[str, str]:
        return {i.name: i.label for i in self.inputs}


def _form_defaults() -> dict[str, Any]:
    return {
        "fields": "email\nfirst_name\nlast_name\ncompany",
        "required": "email",
        "thank_you_url": "/thanks",
    }


def _form_extras(request: web.Request, row: Row) -> dict[str, Any]:
    collector = request.app[COLLECTOR_URL]
    return {"embed": embed_code(request.app[TEMPLATES], collector, row), "snippet": snippet_tag(collector)}


def _new_write_key() -> dict[str, Any]:
    """A random write key (letters and digits only, as SDKs' settings screens expect)."""
    return {"write_key": "wk_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")}


def _source_extras(request: web.Request, row: Row) -> dict[str, Any]:
    return {"segment_host": request.app[COLLECTOR_URL].rstrip("/") + "/v1"}


def _ad_extras(request: web.Request, row: Row) -> dict[str, Any]:
    return {"tracking": tracking_url(request.app[COLLECTOR_URL], row["affiliate_id"], row["ad_id"])}


def _enum(path: str, column: str) -> tuple[tuple[str, str], ...]:
    """A select's options: the values the API's schema allows for ``column``."""
    found = next(c for c in _res(path).columns if c.name == column)
    return tuple((v, v) for v in found.schema["enum"])


CHANNELS = _enum("campaigns", "channel")
FIELD_TYPES = _enum("field_definitions", "type")

SECTIONS = (
    Section(
        "forms", "Forms", "Lead forms for your sites: each has an embed code that posts to the collector.",
        _res("forms"),
        (
            Input("key", "Key", help="used in the form's address; cannot change later", attrs={"maxlength": "100"}),
            Input("name", "Name", attrs={"maxlength": "500"}),
            Input("fields", "Fields", "lines", help="one field name per line: email, phone, first_name, last_name, "
                  "name, company, message, consent_marketing (a checkbox) or your own"),
            Input("required", "Required fields", "lines", help="one per line; a post missing one is refused"),
            Input("allowed_origins", "Allowed sites", "lines",
                  help="one per line, e.g. https://www.example.com; empty: any site may post"),
            Input("thank_you_url", "Thank-you page", "url", help="where visitors land after posting (https://… or "
                  "a path on the posting site)"),
            Input("support", "Support form", "checkbox", help="each submission opens a case; publish it through "
                  "its page /support/{key}, whose thank-you page /support/thanks shows the tracking number"),
            Input("case_type", "Case type", "select", options=_enum("forms", "case_type"),
                  help="for a support form without a 'type' field"),
        ),
        ("Key", "Name", "Fields", "Thank-you page"), _form_cells, "key",
        defaults=_form_defaults, extras=_form_extras,
    ),
    Section(
        "write-keys", "Write keys", "Segment (or RudderStack) sources: the SDK sends to the collector with a "
        "write key.", _res("sources"),
        (
            Input("write_key", "Write key", help="the SDK's key; cannot change later"),
            Input("name", "Name", attrs={"maxlength": "500"}),
            Input("settings", "Settings", "json", help="optional JSON object"),
        ),
        ("Write key", "Name"), _source_cells, "write_key", defaults=_new_write_key, extras=_source_extras,
    ),
    Section(
        "campaigns", "Campaigns", "Marketing campaigns that ads, email sends and links belong to.", _res("campaigns"),
        (
            Input("name", "Name", attrs={"maxlength": "200"}),
            Input("channel", "Channel", "select", options=CHANNELS),
            Input("landing_url", "Landing page", "url"),
            Input("starts_on", "Starts on", "date"),
            Input("ends_on", "Ends on", "date"),
        ),
        ("Name", "Channel", "Starts", "Ends"), _campaign_cells, "name",
    ),
    Section(
        "affiliates", "Affiliates", "Partners whose ads link to your sites.", _res("affiliates"),
        (
            Input("affiliate_id", "Affiliate id", help="used in tracking URLs; cannot change later"),
            Input("name", "Name", attrs={"maxlength": "200"}),
            Input("landing_url", "Landing page", "url"),
            Input("contact_email", "Contact email", "email"),
        ),
        ("Affiliate id", "Name", "Contact"), _affiliate_cells, "name",
    ),
    Section(
        "ads", "Ads", "Affiliates' ads: give the affiliate the tracking URL; it records the click and opens the "
        "landing page.", _res("ads"),
        (
            Input("affiliate_id", "Affiliate", "select", choices="affiliates"),
            Input("ad_id", "Ad id", help="used in the tracking URL"),
            Input("name", "Name", attrs={"maxlength": "500"}),
            Input("landing_url", "Landing page", "url", help="the only place the tracking URL leads to"),
            Input("campaign_id", "Campaign", "select", choices="campaigns"),
            Input("creative", "Creative", "json", help='optional JSON object, e.g. {"size": "300x250"}'),
        ),
        ("Affiliate", "Ad id", "Name", "Tracking URL"), _ad_cells, "ad_id", extras=_ad_extras,
    ),
    Section(
        "email-sends", "Email sends", "Mailings, for the link builder and the reports.", _res("email_sends"),
        (
            Input("subject", "Subject", attrs={"maxlength": "500"}),
            Input("campaign_id", "Campaign", "select", choices="campaigns"),
        ),
        ("Subject", "Campaign", "Sent"), _send_cells, "subject",
        "SELECT s.*, c.name AS campaign_name FROM email_sends s LEFT JOIN campaigns c ON c.id = s.campaign_id"
        " WHERE s.person_id IS NULL ORDER BY s.sent_at DESC LIMIT $1",
        scope="person_id IS NULL",  # a send to one person is recorded by the API, not set up here
    ),
    Section(
        "score-rules", "Score rules", "Points a person's score gains (or loses) per event; scores fade with the "
        "half-life below.", _res("score_rules"),
        (
            Input("name", "Name", attrs={"maxlength": "200"}),
            Input("event_type", "Event", "select", options=tuple((t, t) for t in sorted(EVENT_TYPES))),
            Input("url_contains", "Only when the URL contains", attrs={"maxlength": "500"}),
            Input("points", "Points", "number", attrs={"step": "any", "min": "-1000", "max": "1000"}),
            Input("active", "Active", "checkbox"),
        ),
        ("Name", "Event", "URL contains", "Points", "Active"), _rule_cells, "name",
        defaults=lambda: {"active": True},
    ),
    Section(
        "custom-fields", "Custom fields", "Extra facts kept on each person; the person page shows an input for each.",
        _res("field_definitions"),
        (
            Input("name", "Name", help="lower-case letters, digits and _; cannot change later"),
            Input("label", "Label", attrs={"maxlength": "200"}),
            Input("type", "Type", "select", options=FIELD_TYPES),
            Input("choices", "Choices", "lines", help="for the choice type: one per line"),
            Input("required", "Required", "checkbox"),
        ),
        ("Name", "Label", "Type", "Choices", "Required"), _field_cells, "label",
    ),
)  # fmt: skip

SCORING_INPUTS = (
    Input("half_life_days", "Score half-life (days)", "number", attrs={"step": "any", "min": "0"}),
    Input("prospect_threshold", "Prospect at a score of", "number", attrs={"step": "any", "min": "0"}),
    Input(
        "repeat_visit_days",
        "Prospect after visits on this many days",
        "number",
        attrs={"step": "1", "min": "1"},
    ),
)
LINK_INPUTS = (
    Input("target", "Destination URL", "url", help="where the link leads (https://…)"),
    Input("campaign_id", "Campaign", "select", choices="campaigns"),
    Input("send_id", "Email send", "select", choices="email_sends"),
    Input("subject", "…or a new email send with this subject", attrs={"maxlength": "500"}),
    Input("ttl_days", "Links work for (days)", "number", attrs={"min": "1", "max": "3650", "step": "1"}),
)


def settings_nav(caller: Caller | None = None) -> list[tuple[str, str]]:
    """The settings pages' own navigation; the webhooks page only for an admin ``caller`` (marketers share the
    rest, and may not open that page)."""
    admin_only = [("/app/settings/webhooks", "Webhooks")] if caller is not None and may(caller, ADMIN) else []
    return [("/app/settings", "Overview"), *((f"/app/settings/{s.slug}", s.title) for s in SECTIONS),
            ("/app/settings/links", "Email links"), *admin_only]  # fmt: skip


async def _caller(request: web.Request) -> Caller | web.Response:
    """The signed-in admin or marketer, or the 403 page for anyone else."""
    caller = await signed_in(request)
    return caller if may(caller, MARKETING) else forbidden(request)


async def _choices(pool: asyncpg.Pool, inputs: Sequence[Input]) -> dict[str, list[tuple[str, str]]]:
    """The options of the inputs that choose a record (campaign, affiliate, email send)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for inp in inputs:
        if inp.choices == "campaigns":
            rows = await pool.fetch("SELECT id::text AS v, name AS t FROM campaigns ORDER BY name LIMIT 1000")
            out[inp.name] = [("", "(none)"), *((r["v"], r["t"]) for r in rows)]
        elif inp.choices == "affiliates":
            rows = await pool.fetch(
                "SELECT affiliate_id AS v, affiliate_id || ' · ' || name AS t FROM affiliates ORDER BY 1 LIMIT 1000"
            )
            out[inp.name] = [("", "(choose)"), *((r["v"], r["t"]) for r in rows)]
        elif inp.choices == "email_sends":
            rows = await pool.fetch(
                "SELECT id::text AS v, coalesce(nullif(subject, ''), '(no subject)') || ' · '"
                " || to_char(sent_at, 'YYYY-MM-DD') AS t FROM email_sends WHERE person_id IS NULL"
                " ORDER BY sent_at DESC LIMIT 200"
            )
            out[inp.name] = [("", "(none)"), *((r["v"], r["t"]) for r in rows)]
        elif inp.options:
            out[inp.name] = list(inp.options)
    return out


async def index(request: web.Request) -> web.Response:
    """GET /app/settings: what can be set up, with how many of each there are."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    pool = request.app[POOL]
    cards = []
    for s in SECTIONS:
        count = await pool.fetchval(f"SELECT count(*) FROM {s.resource.table} WHERE {s.scope}")  # noqa: S608
        cards.append({"href": f"/app/settings/{s.slug}", "title": s.title, "blurb": s.blurb, "count": count})
    return render(
        request, "catalog/index.html", title="Settings", settings_nav=settings_nav(request.get(SESSION_CALLER)), cards=cards, collector=request.app[COLLECTOR_URL],
        snippet=snippet_tag(request.app[COLLECTOR_URL]),
    )  # fmt: skip


async def list_page(section: Section, request: web.Request) -> web.Response:
    """GET /app/settings/{section}: the records, newest last as the API lists them."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    return await _list(request, section, caller)


async def _list(
    request: web.Request,
    section: Section,
    caller: Caller,
    scoring: dict[str, Any] | None = None,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    pool = request.app[POOL]
    res = section.resource
    sql = section.list_sql or f"SELECT * FROM {res.table} ORDER BY created_at, {res.key}::text LIMIT $1"  # noqa: S608
    rows = await pool.fetch(sql, LIST_LIMIT + 1)
    more = len(rows) > LIST_LIMIT
    rows = rows[:LIST_LIMIT]
    collector = request.app[COLLECTOR_URL]
    items = [{"key": str(r[res.key]), "label": str(r[section.label_of] or r[res.key]),
              "cells": section.cells(r, collector)} for r in rows]  # fmt: skip
    extra: dict[str, Any] = {}
    if section.slug == "score-rules":
        if scoring is None:
            stored = await pool.fetchrow(core_queries.SCORING)
            scoring = values_of(dict(stored), SCORING_INPUTS)
        extra = {"scoring_inputs": SCORING_INPUTS, "scoring": scoring, "can_score": may(caller, ADMIN)}
    problems = problems or {}
    return render(
        request, "catalog/list.html", status=status, title=section.title, settings_nav=settings_nav(request.get(SESSION_CALLER)), section=section, items=items,
        can_write=may(caller, res.write_roles), problems=problems, message=problems.get(""),
        notice=f"Showing the first {LIST_LIMIT}; the API lists them all." if more else None,
        **extra,
    )  # fmt: skip


async def _edit_page(
    request: web.Request,
    section: Section,
    caller: Caller,
    values: dict[str, Any],
    row: Row | None = None,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
    notice: str | None = None,
) -> web.Response:
    res = section.resource
    key = str(row[res.key]) if row is not None else None
    extra = section.extras(request, row) if row is not None and section.extras is not None else {}
    problems = problems or {}
    message = problems.get("") or ("Please check the fields marked below." if problems else None)
    title = (
        f"{section.title}: {row[section.label_of] or key}" if row is not None else f"New · {section.title}"
    )
    return render(
        request, "catalog/edit.html", status=status, title=title, settings_nav=settings_nav(request.get(SESSION_CALLER)), section=section, key=key, values=values,
        options=await _choices(request.app[POOL], section.inputs), problems=problems, message=message,
        notice=notice, can_write=may(caller, res.write_roles), creating=row is None, **extra,
    )  # fmt: skip


async def new_page(section: Section, request: web.Request) -> web.Response:
    """GET /app/settings/{section}/new."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    if not may(caller, section.resource.write_roles):
        return forbidden(request)
    return await _edit_page(request, section, caller, section.defaults())


async def create(section: Section, request: web.Request) -> web.Response:
    """POST /app/settings/{section}: create through the API's function; 422 with the problems, keeping the input."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    res = section.resource
    if not may(caller, res.write_roles):
        return forbidden(request)
    form = await request.post()
    try:
        body = body_of(res, section.inputs, form, creating=True)
        check(res.body_schema(creating=True), body)
        with refusals(res, section.labels(), body):
            row = await crud.insert(request.app[POOL], res, body, caller)
    except Invalid as exc:
        return await _edit_page(
            request, section, caller, typed(form, section.inputs), None, exc.problems, 422
        )
    raise web.HTTPSeeOther(f"/app/settings/{section.slug}/{quote(str(row[res.key]), safe='')}?saved=1")


async def _record(request: web.Request, section: Section) -> Row:
    res = section.resource
    row = await crud.fetch(request.app[POOL], res, res.key_value(request))
    if row is None:
        raise web.HTTPNotFound(reason=f"No such {res.title}")
    return row


async def edit_page(section: Section, request: web.Request) -> web.Response:
    """GET /app/settings/{section}/{key}: the record's form (read-only for those who may not change it)."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    row = await _record(request, section)
    notice = "Saved." if request.query.get("saved") else None
    return await _edit_page(request, section, caller, values_of(row, section.inputs), row, notice=notice)


async def update(section: Section, request: web.Request) -> web.Response:
    """POST /app/settings/{section}/{key}: change through the API's function (only what the API lets change)."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    res = section.resource
    if not may(caller, res.write_roles):
        return forbidden(request)
    row = await _record(request, section)
    form = await request.post()
    try:
        body = body_of(res, section.inputs, form, creating=False)
        check(res.body_schema(creating=False), body)
        with refusals(res, section.labels(), body):
            await crud.update(request.app[POOL], res, row[res.key], body, caller)
    except Invalid as exc:
        stored = values_of(row, section.inputs)
        shown = typed(form, section.inputs) | {k: stored[k] for k in res.immutable if k in stored}
        return await _edit_page(request, section, caller, shown, row, exc.problems, 422)
    raise web.HTTPSeeOther(f"/app/settings/{section.slug}/{quote(str(row[res.key]), safe='')}?saved=1")


async def delete(section: Section, request: web.Request) -> web.Response:
    """POST /app/settings/{section}/{key}/delete (the form asks first)."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    res = section.resource
    if not may(caller, res.write_roles):
        return forbidden(request)
    row = await _record(request, section)
    try:
        with refusals(res, section.labels(), {}):
            await crud.delete(request.app[POOL], res, row[res.key], caller)
    except Invalid as exc:
        return await _edit_page(
            request, section, caller, values_of(row, section.inputs), row, exc.problems, 409
        )
    raise web.HTTPSeeOther(f"/app/settings/{section.slug}")


SCORE_RULES = next(s for s in SECTIONS if s.slug == "score-rules")


async def change_scoring(request: web.Request) -> web.Response:
    """POST /app/settings/scoring: the half-life and what makes a prospect (admins)."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    if not may(caller, ADMIN):
        return forbidden(request)
    form = await request.post()
    try:
        body = _numbers(form, SCORING_INPUTS)
        check(admin.SCORING_BODY, body)
        await admin.change_scoring(request.app[POOL], body, caller)
    except Invalid as exc:
        return await _list(request, SCORE_RULES, caller, typed(form, SCORING_INPUTS), exc.problems, 422)
    raise web.HTTPSeeOther("/app/settings/score-rules")


def _numbers(form: Mapping[str, Any], inputs: Sequence[Input]) -> dict[str, Any]:
    """The filled number inputs as numbers (whole ones as integers)."""
    body: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for inp in inputs:
        raw = str(form.get(inp.name, "")).strip()
        if not raw:
            continue
        try:
            body[inp.name] = int(raw) if raw.lstrip("+-").isdigit() else float(raw)
        except ValueError:
            problems[inp.name] = "enter a number"
    if problems:
        raise Invalid(problems)
    return body


async def _links_page(
    request: web.Request,
    values: dict[str, Any],
    problems: Mapping[str, str] | None = None,
    rows: Sequence[tuple[int, str]] = (),
    status: int = 200,
) -> web.Response:
    problems = problems or {}
    message = problems.get("") or ("Please check the fields marked below." if problems else None)
    return render(
        request, "catalog/links.html", status=status, title="Email-link builder", settings_nav=settings_nav(request.get(SESSION_CALLER)), inputs=LINK_INPUTS,
        values=values, options=await _choices(request.app[POOL], LINK_INPUTS), problems=problems,
        message=message, bad_rows=rows, max_kb=recipients.MAX_BYTES // 1024, max_rows=recipients.MAX_ROWS,
        signing=bool(request.app[KEYRING]),
    )  # fmt: skip


async def links_form(request: web.Request) -> web.Response:
    """GET /app/settings/links: the email-link builder."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    return await _links_page(request, {"ttl_days": "90"})


async def build_links(request: web.Request) -> web.StreamResponse:
    """POST /app/settings/links (multipart): the recipients CSV and the link's settings in; a CSV of signed click
    and open URLs per recipient out. Rows that cannot be used are reported (422) and nothing is downloaded, so
    a marketer fixes the file instead of mailing a partial list unawares."""
    caller = await _caller(request)
    if isinstance(caller, web.Response):
        return caller
    ring = request.app[KEYRING]
    if not ring:
        raise web.HTTPServiceUnavailable(reason="No link signing key is configured (LEADLINE_LINK_KEYS)")
    form = await request.post()
    values = typed(form, LINK_INPUTS)
    upload = form.get("recipients")
    try:
        problems: dict[str, str] = {}
        link: dict[str, Any] = {"target": values["target"].strip()}
        ttl = _numbers(form, LINK_INPUTS[-1:]).get("ttl_days", 90)
        for name in ("campaign_id", "send_id"):
            if values[name]:
                link[name] = values[name]
        check(LINK_BODY, {**link, "ttl_days": ttl})
        if not isinstance(upload, web.FileField):
            problems["recipients"] = "choose a CSV file of recipients"
        else:
            try:
                found = recipients.read_recipients(upload.file.read(recipients.MAX_BYTES + 1))
            except recipients.Unreadable as exc:
                problems["recipients"] = str(exc)
            else:
                if found.problems:
                    count = len(found.problems)
                    message = f"{count} row{'s' if count > 1 else ''} of the file cannot be used; fix and upload again."
                    return await _links_page(request, values, {"": message}, found.problems, 422)
                if not found.good:
                    problems["recipients"] = "the file lists no recipients"
        if problems:
            raise Invalid(problems)
        if values["subject"].strip() and not link.get("send_id"):
            send_body = {"subject": values["subject"].strip()[:500]}
            if "campaign_id" in link:
                send_body["campaign_id"] = link["campaign_id"]
            check(_res("email_sends").body_schema(creating=True), send_body)
            with refusals(_res("email_sends"), {"campaign_id": "Campaign"}, send_body):
                send = await crud.insert(request.app[POOL], _res("email_sends"), send_body, caller)
            link["send_id"] = str(send["id"])
    except Invalid as exc:
        return await _links_page(request, values, exc.problems, status=422)
    text = recipients.links_csv(found.good, ring, request.app[COLLECTOR_URL], link, int(ttl) * 86400)
    name = f"links-{link.get('send_id') or link.get('campaign_id') or 'email'}.csv"
    return web.Response(
        body=text.encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def pages() -> list[web.AbstractRouteDef]:
    """The settings pages (the fixed paths first: they would otherwise read as a record's key)."""
    routes: list[web.AbstractRouteDef] = [
        web.get("/app/settings", index),
        web.get("/app/settings/links", links_form),
        web.post("/app/settings/links", build_links),
        web.post("/app/settings/scoring", change_scoring),
    ]
    for s in SECTIONS:
        base = f"/app/settings/{s.slug}"
        routes += [
            web.get(base, partial(list_page, s)),
            web.get(f"{base}/new", partial(new_page, s)),
            web.post(base, partial(create, s)),
            web.get(f"{base}/{{key}}", partial(edit_page, s)),
            web.post(f"{base}/{{key}}", partial(update, s)),
            web.post(f"{base}/{{key}}/delete", partial(delete, s)),
        ]
    return routes
