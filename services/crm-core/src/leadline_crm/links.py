"""POST /api/v1/links: signed email links, minted with the same key ring the collector verifies with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from leadline_crm.api import API, BODY, json_response
from leadline_crm.catalog import ABS_URL, MARKETING, SLUG
from leadline_crm.openapi import Operation
from leadline_shared.signing import KeyRing

KEYRING = web.AppKey("link_keyring", KeyRing)

LINK_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["target"],
    "properties": {
        "target": ABS_URL,
        "campaign_id": SLUG,
        "send_id": SLUG,
        "recipient_token": SLUG,
        "ttl_days": {"type": "integer", "minimum": 1, "maximum": 3650, "default": 90},
    },
}


async def mint_link(request: web.Request) -> web.Response:
    """A token for the collector's link endpoint: it redirects to ``target`` and records the click."""
    ring = request.app[KEYRING]
    if not ring:
        raise web.HTTPServiceUnavailable(text="no link signing key is configured (LEADLINE_LINK_KEYS)")
    body = request[BODY]
    ttl = int(body.get("ttl_days", 90)) * 86400
    payload: dict[str, Any] = {
        k: body[k] for k in ("target", "campaign_id", "send_id", "recipient_token") if k in body
    }
    token = ring.sign(payload, ttl_seconds=ttl)
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    return json_response({"token": token, "expires_at": expires, **payload}, status=201)


API.add(
    Operation(
        "POST",
        "/api/v1/links",
        mint_link,
        "Mint a signed email link (verified by the collector)",
        MARKETING,
        "links",
        body=LINK_BODY,
        status=201,
        errors=(503,),
    )
)
