"""POST /api/v1/links: signed email links, minted with the same key ring the collector verifies with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from leadline_crm.http.auth import MARKETING
from leadline_crm.http.keys import BODY
from leadline_crm.http.openapi import Operation
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import ABS_URL, SLUG
from leadline_shared.signing import KeyRing

KEYRING = web.AppKey("link_keyring", KeyRing)
COLLECTOR_URL = web.AppKey("collector_public_url", str)  # LEADLINE_COLLECTOR_PUBLIC_URL

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


LINK_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["token", "click_url", "open_url", "expires_at", "target"],
    "properties": {
        "token": {"type": "string"},
        "click_url": {"type": "string", "description": "the tracked link to put in the email"},
        "open_url": {"type": "string", "description": "the open pixel (an <img> src) for the same email"},
        "expires_at": {"type": "string", "format": "date-time"},
        **{k: v for k, v in LINK_BODY["properties"].items() if k != "ttl_days"},
    },
}


def mint(ring: KeyRing, collector_url: str, payload: dict[str, Any], ttl_seconds: int) -> dict[str, Any]:
    """A signed token for ``payload`` (target, campaign_id, send_id, recipient_token) with its click and open
    URLs and expiry: what the API answers, and each row of the web app's link builder."""
    token = ring.sign(payload, ttl_seconds=ttl_seconds)
    expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    return {"token": token, **link_urls(collector_url, token), "expires_at": expires}


async def mint_link(request: web.Request) -> web.Response:
    """A token for the collector's link endpoint (it redirects to ``target`` and records the click), with the
    click and open URLs made from it."""
    ring = request.app[KEYRING]
    if not ring:
        raise web.HTTPServiceUnavailable(text="no link signing key is configured (LEADLINE_LINK_KEYS)")
    body = request[BODY]
    payload: dict[str, Any] = {
        k: body[k] for k in ("target", "campaign_id", "send_id", "recipient_token") if k in body
    }
    minted = mint(ring, request.app[COLLECTOR_URL], payload, int(body.get("ttl_days", 90)) * 86400)
    return json_response({**minted, **payload}, status=201)


def link_urls(base: str, token: str) -> dict[str, str]:
    """The collector's click and open-pixel URLs for ``token`` (its routes ``/c/{token}`` and
    ``/o/{token}.gif``, under the public URL and any path prefix it holds), ready to put in an email; the open
    pixel accepts the click token, so one token serves both."""
    root = base.rstrip("/")
    return {"click_url": f"{root}/c/{token}", "open_url": f"{root}/o/{token}.gif"}


def operations() -> list[Operation]:
    """POST /api/v1/links."""
    return [
        Operation(
            "POST",
            "/api/v1/links",
            mint_link,
            "Mint a signed email link (verified by the collector): its token and ready click and open-pixel URLs",
            MARKETING,
            "links",
            body=LINK_BODY,
            status=201,
            response=LINK_RESPONSE,
            errors=(503,),
        )
    ]
