"""Answers for people and for programs: a readable HTML page for browsers, problem+json for API callers."""

from __future__ import annotations

import html

from aiohttp import web

from leadline_shared.http import problem

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}} .box{{border-left:4px solid #c33;padding:.5rem 1rem;background:#fdf3f3}}
a{{color:#0a58ca}}</style></head>
<body><h1>{title}</h1><div class="box">{message}</div>{extra}</body></html>"""


def wants_json(request: web.Request) -> bool:
    """The caller is a program (fetch, SDK) rather than a browser navigating: JSON in or JSON asked for."""
    if request.content_type == "application/json":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def html_page(
    status: int,
    title: str,
    message: str,
    *,
    back: str | None = None,
    items: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A small, self-contained page explaining what went wrong and how to go on."""
    extra = ""
    if items:
        extra += "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
    if back:
        extra += f'<p><a href="{html.escape(back, quote=True)}">Go back and try again</a></p>'
    body = _PAGE.format(title=html.escape(title), message=html.escape(message), extra=extra)
    return web.Response(status=status, text=body, content_type="text/html", headers=headers)


def error(
    request: web.Request,
    status: int,
    title: str,
    detail: str,
    *,
    back: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The error in the form the caller can read."""
    if wants_json(request):
        extra = {"errors": errors} if errors else {}
        resp = problem(status, title, detail, **extra)
        if headers:
            resp.headers.update(headers)
        return resp
    items = [f"{field}: {msg}" for field, msg in (errors or {}).items()]
    return html_page(status, title, detail, back=back, items=items, headers=headers)
