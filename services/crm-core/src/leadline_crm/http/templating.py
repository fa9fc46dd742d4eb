"""Server-rendered pages: one Jinja2 environment with autoescaping on, made from an explicit list of domain packages.

Every captured value (names, form fields, URLs) reaches HTML only through a template, and autoescaping is not
optional here, so a visitor's ``<script>`` shows as text. Each domain keeps its templates in its own
``templates/<domain>/`` folder; the shared layout and macros live in http/templates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import jinja2
from aiohttp import web

from leadline_crm.http import session

TEMPLATES = web.AppKey("crm_templates", jinja2.Environment)

#: Sent with every page under /app: no inline script or style, nothing from another origin, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def when(value: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Dates as reps read them (UTC, minutes); dates without time as ISO days."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(fmt)
    return value.isoformat()


def money(value: Decimal | float | int | None, currency: str | None = None) -> str:
    """Prices with two decimals and thousands separators."""
    if value is None:
        return ""
    text = f"{Decimal(value):,.2f}"
    return f"{text} {currency}" if currency else text


def environment(packages: Iterable[str]) -> jinja2.Environment:
    """The one template environment: http's layout first, then each domain's templates."""
    loader = jinja2.ChoiceLoader([jinja2.PackageLoader(p, "templates") for p in packages])
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["when"] = when
    env.filters["money"] = money
    return env


def render(
    request: web.Request, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> web.Response:
    """Render ``name`` with the request's caller and CSRF token available to the layout."""
    template = request.app[TEMPLATES].get_template(name)
    layout: dict[str, Any] = {"message": None, "notice": None, "extra_nav": []}
    text = template.render(
        layout | context,
        caller=request.get(session.CALLER),
        csrf=session.csrf_token(request),
        request=request,
    )
    return web.Response(
        text=text,
        content_type="text/html",
        status=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every response under /app carries the CSP and the anti-sniffing and anti-framing headers."""
    response: web.StreamResponse = await handler(request)
    if request.path.startswith("/app"):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
