"""Route metadata kept in code, and what is made from it: the aiohttp routes, request-body validation, the
OpenAPI 3 document (/api/openapi.json) and a plain HTML reference page (/api/docs).

Every API operation is declared once with :class:`Operation`: its method, path, roles, parameters and body
schema. Each domain hands its operations over from a function; the app puts them on one :class:`Registry`
(nothing is registered by importing a module). The same JSON Schema validates the request body (with jsonschema-rs) and appears in the document, so the
document cannot drift from what the server accepts.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import orjson
from aiohttp import web

from leadline_crm.http.responses import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


@functools.lru_cache(maxsize=512)
def compiled(schema: bytes) -> Any:
    """The jsonschema-rs validator of a body schema (its JSON text, keys sorted), compiled once per process.

    Why: compiling is slow and large (the app's 62 body schemas took 0.6 s and tens of MB), and every app built
    in one process compiled them again: the tests build an app per test. A validator holds no state between
    calls, so apps may share it."""
    return jsonschema_rs.validator_for(orjson.loads(schema), validate_formats=True)


@dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    where: str  # "path" or "query"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False

    def doc(self) -> dict[str, Any]:
        """The OpenAPI parameter object."""
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }


@dataclass
class Operation:
    """One API operation: what it does, who may call it, what it takes and answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    roles: frozenset[str]
    tag: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    status: int = 200
    response: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    validator: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.body is not None:
            self.validator = compiled(orjson.dumps(self.body, option=orjson.OPT_SORT_KEYS))

    @property
    def operation_id(self) -> str:
        """A stable id made of the method and the path."""
        parts = [p.strip("{}") for p in self.path.removeprefix("/api/v1/").split("/")]
        return self.method.lower() + "_" + "_".join(parts).replace("-", "_")

    def doc(self) -> dict[str, Any]:
        """The OpenAPI operation object."""
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": "success"}
        if self.status != 204:
            ok["content"] = {"application/json": {"schema": self.response or {"type": "object"}}}
        responses[str(self.status)] = ok
        codes = {401, 403, *self.errors}
        if self.body is not None or any(p.where == "query" for p in self.params):
            codes.add(422)
        if any(p.where == "path" for p in self.params):
            codes.add(404)
        for code in sorted(codes):
            responses[str(code)] = {
                "description": {
                    401: "no or unknown token",
                    403: "role not allowed",
                    404: "not found",
                    409: "conflict",
                    422: "invalid input",
                }.get(code, "error"),
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        op: dict[str, Any] = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "description": f"Roles: {', '.join(sorted(self.roles))}.",
            "tags": [self.tag],
            "parameters": [p.doc() for p in self.params],
            "responses": responses,
        }
        if self.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": self.body}}}
        return op


@dataclass
class Registry:
    """All operations of the API, in the order the app lists them."""

    operations: list[Operation] = field(default_factory=list)

    def install(self, app: web.Application, wrap: Callable[[Operation], Handler]) -> None:
        """Add every operation to the router, each handler wrapped (auth, role, body validation)."""
        for op in self.operations:
            app.router.add_route(op.method, op.path, wrap(op))

    def document(self, title: str, version: str) -> dict[str, Any]:
        """The OpenAPI 3.1 document (its schemas are JSON Schema 2020-12, as the validator reads them)."""
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = op.doc()
        return {
            "openapi": "3.1.0",
            "info": {
                "title": title,
                "version": version,
                "description": "Leadline crm-core: leads, prospects and customers. Lists answer "
                '{"items": [...], "next": cursor or null}; errors are RFC 9457 problem documents.',
            },
            "servers": [{"url": "/"}],
            "security": [{"bearer": []}],
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {"Problem": PROBLEM_SCHEMA},
            },
            "paths": paths,
        }

    def docs_page(self, title: str) -> str:
        """A self-contained HTML reference (no external assets): one section per tag, one row per operation."""
        out = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title><style>",
            "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#222}",
            "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem;"
            "text-align:left;vertical-align:top}code{background:#f4f4f4;padding:0 .2rem}",
            ".m{font-weight:bold;font-family:monospace}details{margin:.2rem 0}pre{background:#f8f8f8;"
            "padding:.5rem;overflow:auto;font-size:.85rem}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            "<p>Authenticate with <code>Authorization: Bearer &lt;token&gt;</code> (create one with "
            '<code>leadline token --role admin</code>). Lists answer <code>{"items": [...], "next": cursor}</code>; '
            "pass <code>cursor</code> back for the next page. Errors are "
            "<code>application/problem+json</code>. Machine-readable: <a href='/api/openapi.json'>openapi.json</a>.</p>",
        ]
        tags: dict[str, list[Operation]] = {}
        for op in self.operations:
            tags.setdefault(op.tag, []).append(op)
        for tag, ops in tags.items():
            out.append(f"<h2 id='{html.escape(tag)}'>{html.escape(tag)}</h2><table>")
            out.append("<tr><th>operation</th><th>what it does</th><th>roles</th></tr>")
            for op in ops:
                detail = ""
                if op.params:
                    detail += "<br>parameters: " + ", ".join(
                        f"<code>{html.escape(p.name)}</code> ({p.where})" for p in op.params
                    )
                if op.body is not None:
                    schema = orjson.dumps(op.body, option=orjson.OPT_INDENT_2).decode()
                    detail += (
                        f"<details><summary>request body</summary><pre>{html.escape(schema)}</pre></details>"
                    )
                out.append(
                    f"<tr><td><span class='m'>{op.method}</span> <code>{html.escape(op.path)}</code></td>"
                    f"<td>{html.escape(op.summary)}{detail}</td><td>{html.escape(', '.join(sorted(op.roles)))}</td></tr>"
                )
            out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out)


def routes(api: Registry, title: str) -> list[web.RouteDef]:
    """The OpenAPI document and the docs page of ``api``."""

    async def openapi_json(request: web.Request) -> web.Response:
        """The OpenAPI 3 document, generated from the declared operations."""
        return json_response(api.document(title, "1"))

    async def docs(request: web.Request) -> web.Response:
        """A readable list of the operations (no external assets)."""
        return web.Response(text=api.docs_page(title), content_type="text/html")

    return [web.get("/api/openapi.json", openapi_json), web.get("/api/docs", docs)]
