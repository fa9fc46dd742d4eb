"""Cases from the outside (issue 14): support forms whose submissions open cases, the thank-you page that shows
the tracking number, and the customer's status page.

Why the thank-you page waits: the collector answers a visitor as soon as the submission is durable, long before
crm-core sees it (collector → raw topic → enricher → enriched topic → ingestion), and the tracking number is a
per-year sequence only crm-core can hand out. So crm-core hosts the support form's page (``/support/forms/{key}``,
posting to the collector): it puts a fresh random reference in a hidden ``support_ref`` field and in a cookie
(HttpOnly, SameSite=Lax, path /support). Ingestion opens the case with that reference (:func:`open_cases`, called
from ingest/touches.py), and the thank-you page ``/support/thanks`` (the form's thank-you URL) finds the case by
the cookie's reference, polling with htmx until ingestion has got there (about a second). A form posted by a
program gets the event id in the collector's JSON answer: ``/support/submissions/{event_id}`` shows the same.
Both lookups need a value only the submitter has (128 random bits, or the event id's 80), so numbers cannot be
collected by guessing.

The status page ``/support/status`` asks for the tracking number and the email: a case is shown only when both
fit, and a wrong email, an unknown number and an erased person get the same answer, so the page never tells
whether an email or a number exists. It shows the status and the customer-visible comments, never internal ones.
The lookup changes nothing; its form still carries a double-submit token (cookie and field), so another site
cannot post it in a visitor's name, and the email travels in the body, never in a URL that proxies would log.
Lookups are limited per client address (an IPv6 client's /64) and per tracking number (:data:`PER_ADDRESS`,
:data:`PER_NUMBER` a minute, in memory, so per replica: service/attempts.py): past either, a 429 page with
``Retry-After``, before anything is looked up. A number's attempts count whether or not it exists, so the limit
tells nothing either.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv6Address, ip_address, ip_network
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import asyncpg
from aiohttp import web

from leadline_crm.catalog.links import COLLECTOR_URL
from leadline_crm.http.keys import POOL
from leadline_crm.http.templating import render
from leadline_crm.service import cases, queries
from leadline_crm.service.attempts import Attempts
from leadline_shared.identifiers import canonical_email

if TYPE_CHECKING:
    from leadline_crm.ingest.touch import Touch

REF_FIELD = "support_ref"  # catalog.routes.SUPPORT_REF: the collector keeps it for support forms
REF_COOKIE = "ll_support_ref"
TOKEN_COOKIE = "ll_support_token"  # noqa: S105 (a cookie name)
COOKIE_AGE = 24 * 3600
SUBJECT_LENGTH = 120
#: Fields that say who the customer is (on the person already) or steer the case, not part of its description.
NOT_DESCRIBED = frozenset({"email", "phone", "name", "first_name", "last_name", "type", "subject", "message",
                           "description", "comments", REF_FIELD, "consent_marketing", "consent_analytics"})  # fmt: skip
TEXT_FIELDS = ("message", "description", "comments")
STATUS_WORDS = {"new": "received", "open": "being worked on", "waiting": "waiting for your answer",
                "resolved": "resolved", "closed": "closed"}  # fmt: skip
NO_MATCH = "We found no case with this tracking number and email. Check both and try again."
#: Status lookups a minute per client address, and per tracking number (whoever asks).
PER_ADDRESS, PER_NUMBER = 10, 5


@dataclass(frozen=True)
class StatusLimits:
    """The status page's attempts, one set per app (made by :func:`pages`)."""

    per_address: Attempts
    per_number: Attempts


# --- from ingestion ---


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _field(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def submission(t: Touch, default_type: str) -> cases.Submission:
    """The case a support form's event asks for: the type the visitor chose (else the form's), the subject typed
    (else the message's first line), the message with the form's other fields as the description."""
    fields = _dict(_dict(t.doc.get("form")).get("fields"))
    kind = _field(fields, "type").lower()
    text = next((v for name in TEXT_FIELDS if (v := _field(fields, name))), "")
    subject = _field(fields, "subject") or (text.splitlines()[0] if text else "") or "Support request"
    others = [f"{name}: {_field(fields, name)}" for name in sorted(fields)
              if name not in NOT_DESCRIBED and _field(fields, name)]  # fmt: skip
    ref = _field(fields, REF_FIELD)
    return cases.Submission(
        event_id=t.event_id,
        person_id=uuid.UUID(t.person_id),
        type=kind if kind in cases.TYPES else default_type,
        subject=subject[:SUBJECT_LENGTH],
        description="\n\n".join(p for p in (text, "\n".join(others)) if p) or "(no message)",
        form_ref=ref[:100] if ref else None,
    )


async def open_cases(conn: asyncpg.Connection, touches: Iterable[Touch]) -> list[str]:
    """Open a case for each new submission of a support form among ``touches`` (ingestion's new events, in its
    transaction); a bot's submission opens none. Idempotent by event id: a replayed submission opens nothing."""
    posts = [t for t in touches if t.type == "form_submit" and not t.automated]
    keys = {key for t in posts if isinstance(key := _dict(t.doc.get("form")).get("key"), str)}
    if not keys:
        return []
    support = {r["key"]: r["case_type"] for r in await conn.fetch(queries.SUPPORT_FORMS, list(keys))}
    opened = []
    for t in posts:
        key = _dict(t.doc.get("form")).get("key")
        if key in support and (number := await cases.open_from_form(conn, submission(t, support[key]))):
            opened.append(number)
    return opened


# --- the public pages ---


def _headers(form_action: str = "'self'", referrer: str = "same-origin") -> dict[str, str]:
    """The workspace's CSP (the support form may post to the collector too); never cached, never framed. The form
    page sends its origin with the post (``strict-origin``): the collector resolves a relative thank-you URL against
    it, and with ``same-origin`` the browser would send ``Origin: null``."""
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"font-src 'self'; object-src 'none'; base-uri 'none'; form-action {form_action}; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": referrer,
        "Cache-Control": "no-store",
    }


def _cookie(response: web.Response, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(name, value, max_age=COOKIE_AGE, path="/support", httponly=True, samesite="Lax",
                        secure=request.secure)  # fmt: skip


#: How the support page asks for the fields it knows: (input type, autocomplete, label); others are text inputs.
INPUTS = {
    "email": ("email", "email", "Email"),
    "phone": ("tel", "tel", "Phone"),
    "name": ("text", "name", "Name"),
    "first_name": ("text", "given-name", "First name"),
    "last_name": ("text", "family-name", "Last name"),
    "subject": ("text", "off", "Subject"),
    "type": ("select", "off", "What is it about?"),
    "message": ("textarea", "off", "Message"),
    "description": ("textarea", "off", "Description"),
    "comments": ("textarea", "off", "Comments"),
    "consent_marketing": ("checkbox", "", "Yes, send me news and offers"),
    "consent_analytics": ("checkbox", "", "I agree to analytics cookies"),
}


def _not_found(request: web.Request, title: str, detail: str) -> web.Response:
    return render(request, "service/support_message.html", status=404, headers=_headers(), title=title,
                  detail=detail)  # fmt: skip


async def form_page(request: web.Request) -> web.Response:
    """GET /support/forms/{key}: a support form, posting to the collector, with a fresh reference for the
    thank-you page (hidden field and cookie)."""
    row = await request.app[POOL].fetchrow(
        "SELECT key, name, fields, required FROM forms WHERE key = $1 AND support", request.match_info["key"]
    )
    if row is None:
        return _not_found(request, "Form not found", "There is no support form at this address.")
    fields = []
    for name in row["fields"]:
        if name == REF_FIELD:
            continue
        kind, autocomplete, label = INPUTS.get(name, ("text", "off", name.replace("_", " ").capitalize()))
        fields.append({"name": name, "kind": kind, "autocomplete": autocomplete, "label": label,
                       "required": name in row["required"]})  # fmt: skip
    collector = request.app[COLLECTOR_URL].rstrip("/")
    parts = urlsplit(collector)
    ref = secrets.token_urlsafe(16)
    response = render(
        request, "service/support_form.html", headers=_headers(f"'self' {parts.scheme}://{parts.netloc}", "strict-origin"),
        title=row["name"] or "Contact support", action=f"{collector}/f/{quote(row['key'], safe='')}",
        fields=fields, ref=ref, types=cases.TYPES,
    )  # fmt: skip
    _cookie(response, request, REF_COOKIE, ref)
    return response


async def _thanks(request: web.Request, number: str | None, poll: str) -> web.Response:
    name = "support_thanks_card" if request.headers.get("HX-Request") == "true" else "support_thanks"
    return render(request, f"service/{name}.html", headers=_headers(), title="Thank you", number=number,
                  poll=None if number else poll)  # fmt: skip


async def thanks(request: web.Request) -> web.Response:
    """GET /support/thanks: the tracking number of the visitor's submission (found by their cookie), or a note
    that it is on its way, polled until it is there."""
    ref = request.cookies.get(REF_COOKIE, "")
    if not ref or len(ref) > 100:
        return render(request, "service/support_message.html", headers=_headers(), title="Thank you",
                      detail="We have your request. Its tracking number is in the confirmation we send you.")  # fmt: skip
    number = await request.app[POOL].fetchval(queries.NUMBER_BY_REF, ref)
    return await _thanks(request, number, "/support/thanks")


async def submission_page(request: web.Request) -> web.Response:
    """GET /support/submissions/{event_id}: the same for a form posted by a program (the collector's JSON answer
    names the event id)."""
    event_id = request.match_info["event_id"]
    if len(event_id) > 200:
        return _not_found(request, "Not found", "There is no submission at this address.")
    number = await request.app[POOL].fetchval(queries.NUMBER_BY_EVENT, event_id)
    return await _thanks(request, number, f"/support/submissions/{quote(event_id, safe='')}")


async def status_form(request: web.Request, message: str | None = None, status: int = 200,
                      typed: Mapping[str, str] | None = None) -> web.Response:  # fmt: skip
    """GET /support/status: the form asking for the tracking number and the email."""
    token = request.cookies.get(TOKEN_COOKIE, "")
    fresh = not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token)
    token = secrets.token_urlsafe(24) if fresh else token
    response = render(request, "service/support_status.html", status=status, headers=_headers(),
                      title="Your case", message=message, typed=dict(typed or {}), token=token, case=None)  # fmt: skip
    if fresh:
        _cookie(response, request, TOKEN_COOKIE, token)
    return response


def client_key(remote: str | None) -> str:
    """Whom the per-address limit counts: the IPv4 address, or the IPv6 address's /64 (one subscriber's network,
    whose 2^64 addresses would otherwise each get their own tries)."""
    try:
        address = ip_address(remote or "")
    except ValueError:
        return remote or ""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is None:
        return str(ip_network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped if isinstance(address, IPv6Address) else address)


async def _too_many(request: web.Request, wait: float, typed: Mapping[str, str]) -> web.Response:
    seconds = max(1, math.ceil(wait))
    response = await status_form(
        request, f"Too many tries in a minute. Please wait {seconds} seconds and try again.", 429, typed
    )
    response.headers["Retry-After"] = str(seconds)
    return response


async def status_lookup(request: web.Request, limits: StatusLimits) -> web.Response:
    """POST /support/status: the case's status and public comments when the number and the email fit."""
    form = await request.post()
    number = str(form.get("tracking_number", "")).strip().upper()
    raw_email = str(form.get("email", ""))
    typed = {"tracking_number": number[:40], "email": raw_email[:320]}
    if wait := limits.per_address.take(client_key(request.remote)):
        return await _too_many(request, wait, typed)
    token, sent = request.cookies.get(TOKEN_COOKIE, ""), str(form.get("_token", ""))
    if not token or not hmac.compare_digest(token.encode(), sent.encode()):
        return await status_form(request, "The form has expired; please send it again.", 403)
    if not re.fullmatch(cases.TRACKING_PATTERN, number) or len(number) > 20:
        return await status_form(request, "A tracking number looks like SR-2026-000123.", 422, typed)
    if wait := limits.per_number.take(number):
        return await _too_many(request, wait, typed)
    email = canonical_email(raw_email[:320])
    if email is None:
        return await status_form(request, "Please enter the email address you wrote to us from.", 422, typed)
    pool = request.app[POOL]
    case = await pool.fetchrow(queries.PUBLIC_CASE, number, email)
    if case is None:
        return await status_form(request, NO_MATCH, 404, typed)
    comments = await cases.comments(pool, case["id"], public_only=True)
    return render(request, "service/support_status.html", headers=_headers(), title=f"Case {number}",
                  message=None, typed=typed, token=token, case=case, comments=comments,
                  status_word=STATUS_WORDS[case["status"]])  # fmt: skip


def pages() -> list[web.AbstractRouteDef]:
    """The public support pages (no sign-in); the status lookup's limits live as long as the app that calls this."""
    limits = StatusLimits(Attempts(PER_ADDRESS), Attempts(PER_NUMBER))
    return [
        web.get("/support/forms/{key}", form_page),
        web.get("/support/thanks", thanks),
        web.get("/support/submissions/{event_id}", submission_page),
        web.get("/support/status", status_form),
        web.post("/support/status", partial(status_lookup, limits=limits)),
    ]
