"""``POST /f/{form_key}``: web-form submissions, from a plain HTML form or from fetch.

The answer comes only once the event is durable (Kafka acknowledged it or the spool fsync'd it). A browser
posting a plain form gets a 303 to the form's thank-you page, or a readable page explaining what to fix; a
program gets JSON (or problem+json).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
from aiohttp import web
from multidict import MultiDictProxy

from leadline_collector import normalize, pages
from leadline_collector.context import client_ip, request_context
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.ratelimit import RateLimiter
from leadline_collector.sink import Sink, SinkUnavailable
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.visitor import set_cookie, visitor_id
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import event_id_from
from leadline_shared.siteconfig import FormConfig

log = logging.getLogger(__name__)
HONEYPOTS = ("website", "_hp")
CONSENT_FIELDS = {"consent_marketing": "marketing", "consent_analytics": "analytics"}
MAX_FIELD = 5000


class BadForm(Exception):
    """The submission cannot be accepted: status, title, detail and per-field errors."""

    def __init__(self, status: int, title: str, detail: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or {}


async def read_fields(request: web.Request, limit: int) -> dict[str, Any]:
    """The submitted fields from urlencoded, multipart (no files) or JSON bodies of at most ``limit`` bytes."""
    ctype = request.content_type
    if request.content_length is None and ctype == "multipart/form-data":
        raise BadForm(411, "Length required", "send multipart form data with a Content-Length")
    if request.content_length is not None and request.content_length > limit:
        raise BadForm(413, "Submission too large", f"the form data is larger than {limit // 1024} KB")
    try:
        if ctype == "application/json":
            data = orjson.loads(await request.read())
            if not isinstance(data, dict):
                raise BadForm(400, "Malformed submission", "the JSON body must be an object of fields")
            return {str(k): v for k, v in data.items() if isinstance(v, str | bool | int | float)}
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            post: MultiDictProxy[Any] = await request.post()
            fields: dict[str, Any] = {}
            for key, value in post.items():
                if not isinstance(value, str):
                    raise BadForm(415, "File uploads are not accepted", f"the field {key!r} carries a file")
                fields.setdefault(key, value)
            return fields
    except web.HTTPRequestEntityTooLarge:
        raise BadForm(413, "Submission too large", "the form data is larger than this form accepts") from None
    except (orjson.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise BadForm(
            400, "Malformed submission", f"the body could not be read: {type(exc).__name__}"
        ) from None
    raise BadForm(
        415,
        "Unsupported content type",
        "send application/x-www-form-urlencoded, multipart/form-data or application/json",
    )


def origin_of(request: web.Request) -> str | None:
    """The page's origin from Origin, else Referer (scheme://host[:port])."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin.rstrip("/")
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def clean_fields(
    form: FormConfig, raw: dict[str, Any], default_region: str
) -> tuple[dict[str, str], dict[str, bool]]:
    """The form's own fields, normalised, and the consent flags; raises :class:`BadForm` listing every problem."""
    errors: dict[str, str] = {}
    fields: dict[str, str] = {}
    for name in form.fields:
        value = raw.get(name)
        if value is None or str(value).strip() == "":
            continue
        text = str(value).strip()
        if len(text) > MAX_FIELD:
            errors[name] = f"is longer than {MAX_FIELD} characters"
            continue
        try:
            if name == "email":
                text = normalize.email(text)
            elif name == "phone":
                text = normalize.phone(text, default_region)
        except normalize.InvalidValue as exc:
            errors[name] = str(exc)
            continue
        fields[name] = text
    for name in form.required:
        if name not in fields and name not in errors:
            errors[name] = "is required"
    if errors:
        raise BadForm(422, "Please check the form", "some fields need another look", errors)
    consent = {flag: normalize.truthy(raw.get(name)) for name, flag in CONSENT_FIELDS.items() if name in raw}
    return fields, consent


def thank_you(form: FormConfig, origin: str | None) -> str:
    """Where a plain HTML form lands after a successful post: relative URLs resolved against the page."""
    if origin and not urlsplit(form.thank_you_url).netloc:
        return urljoin(origin + "/", form.thank_you_url)
    return form.thank_you_url


def make_handler(
    sink: Sink,
    store: SiteConfigStore,
    metrics: CollectorMetrics,
    *,
    cookie_domain: str,
    default_region: str,
    per_ip: RateLimiter,
    per_form: RateLimiter,
    body_limit: int,
) -> Any:
    """The form route bound to its collaborators."""

    async def submit(request: web.Request) -> web.StreamResponse:
        key = request.match_info["form_key"]
        form = store.form(key)
        back = request.headers.get("Referer")
        try:
            if form is None:
                raise BadForm(404, "Unknown form", f"no form is registered under the key {key!r}")
            origin = origin_of(request)
            if form.allowed_origins and origin is not None and origin not in form.allowed_origins:
                raise BadForm(403, "Form not allowed here", "this form does not accept posts from this site")
            for limiter, bucket in ((per_ip, f"{client_ip(request)}"), (per_form, key)):
                wait = limiter.allow(bucket)
                if wait:
                    metrics.rejected.labels(endpoint="form", reason="rate_limited").inc()
                    return pages.error(
                        request,
                        429,
                        "Too many submissions",
                        "please wait a moment and retry",
                        back=back,
                        headers={"Retry-After": str(max(1, round(wait)))},
                    )
            raw = await read_fields(request, body_limit)
            if any(str(raw.get(h, "")).strip() for h in HONEYPOTS):
                metrics.rejected.labels(endpoint="form", reason="honeypot").inc()
                return success(request, form, origin, None)
            fields, consent = clean_fields(form, raw, default_region)
        except BadForm as exc:
            metrics.rejected.labels(endpoint="form", reason=str(exc.status)).inc()
            return pages.error(request, exc.status, exc.title, exc.detail, back=back, errors=exc.errors)

        anon_id, _ = visitor_id(request)
        event = form_event(request, form, fields, consent, anon_id)
        try:
            await sink.store(event, durable=True)
        except SinkUnavailable:
            metrics.rejected.labels(endpoint="form", reason="unavailable").inc()
            return pages.error(
                request,
                503,
                "Please try again shortly",
                "we could not save your submission just now; nothing was recorded",
                back=back,
                headers={"Retry-After": "30"},
            )
        metrics.events.inc("form_submit", "form")
        response = success(request, form, origin, event.event_id)
        if anon_id and consent.get("analytics", True):
            set_cookie(response, request, anon_id, cookie_domain)
        return response

    return submit


def form_event(
    request: web.Request,
    form: FormConfig,
    fields: dict[str, str],
    consent: dict[str, bool],
    anon_id: str | None,
) -> RawEvent:
    """The form_submit event: fields, contact identifiers and consent, with the page it came from."""
    context = request_context(request, request.headers.get("Referer"), None)
    if consent:
        context["consent"] = context.get("consent", {}) | consent
    ids: dict[str, str] = {k: fields[k] for k in ("email", "phone") if k in fields}
    return RawEvent(
        event_id=event_id_from(request.headers.get("Idempotency-Key")),
        type="form_submit",
        source="form",
        received_at=utc_now_iso(),
        anon_id=anon_id,
        ids=ids,
        context=context,
        form={"key": form.key, "fields": fields},
    )


def success(request: web.Request, form: FormConfig, origin: str | None, event_id: str | None) -> web.Response:
    """303 to the thank-you page for browsers; JSON for programs."""
    target = thank_you(form, origin)
    if pages.wants_json(request):
        return web.json_response({"ok": True, "event_id": event_id, "redirect": target})
    return web.Response(status=303, headers={"Location": target}, text="See " + target)
