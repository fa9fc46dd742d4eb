"""``GET /demo``: a page for `make up` users to try everything: the snippet, the lead form, tracked links."""

from __future__ import annotations

from aiohttp import web

from leadline_collector.demo import render_demo
from leadline_collector.pixel import Handler
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_shared.signing import KeyRing

DEMO_TTL = 30 * 24 * 3600


def demo_links(prefix: str, keys: KeyRing, base_url: str) -> list[tuple[str, str]]:
    """A signed email link (when keys are configured) and the demo affiliate's ad link."""
    found: list[tuple[str, str]] = []
    if keys:
        token = keys.sign(
            {
                "target": f"{base_url}{prefix}/demo?from=email",
                "campaign_id": "demo-campaign",
                "send_id": "demo-send",
                "recipient_token": "demo-recipient",
            },
            ttl_seconds=DEMO_TTL,
        )
        found.append(("Tracked email link (signed)", f"{prefix}/c/{token}"))
    found.append(("Affiliate ad aff1 / ad1", f"{prefix}/a/aff1/ad1?sub=demo-page"))
    return found


def make_demo_handler(keys: KeyRing, sites: SiteConfigStore) -> Handler:
    """The demo page route; the prefix it was reached under is kept in its links."""

    async def demo(request: web.Request) -> web.StreamResponse:
        suffix = "/demo"
        prefix = request.path[: -len(suffix)] if request.path.endswith(suffix) else ""
        base = f"{request.scheme}://{request.host}"
        html = render_demo(prefix, demo_links(prefix, keys, base), thanks=request.query.get("thanks") == "1")
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    return demo
