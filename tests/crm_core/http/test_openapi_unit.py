"""Operation's body validators: compiled once per process and schema, shared by every app built in it."""

from __future__ import annotations

from aiohttp import web

from leadline_crm.http.openapi import Operation

BODY = {
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string", "format": "email"}},
}


async def _handler(request: web.Request) -> web.StreamResponse:
    return web.Response()


def _op(body: dict[str, object]) -> Operation:
    return Operation("POST", "/api/v1/x", _handler, "x", frozenset({"admin"}), "x", body=body)


def test_equal_schemas_share_one_compiled_validator_and_it_still_validates() -> None:
    first, second = (
        _op(BODY),
        _op({"properties": BODY["properties"], "required": ["email"], "type": "object"}),
    )
    assert first.validator is second.validator  # same schema, keys in another order: compiled once
    assert first.validator.is_valid({"email": "ann@example.com"})
    assert not first.validator.is_valid({"email": "not an address"})
    assert not first.validator.is_valid({})
    other = _op({**BODY, "required": []})
    assert other.validator is not first.validator
    assert other.validator.is_valid({})
