"""``GET /a/{affiliate_id}/{ad_id}``: an affiliate's ad click, redirected only to that ad's landing URL.

The destination always comes from the ad's configuration, never from the query string, so the route cannot be
used as an open redirect. Attribution parameters are appended so the landing page (and our snippet on it) can
tie the visit to the click.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from leadline_collector import pages
from leadline_collector.context import request_context
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, store_or_count
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.visitor import set_cookie, visitor_id
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from leadline_shared.siteconfig import AdConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PASS_THROUGH = ("gclid", "fbclid", "msclkid")


def landing_url(ad: AdConfig, event_id: str, sub_id: str | None, request: web.Request) -> str:
    """The configured landing URL with UTM and click parameters added (existing ones are kept)."""
    parts = urlsplit(ad.landing_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("utm_source", ad.affiliate_id)
    query.setdefault("utm_medium", "affiliate")
    query.setdefault("utm_campaign", ad.ad_id)
    if sub_id:
        query.setdefault("utm_content", sub_id)
    for key in PASS_THROUGH:
        if request.query.get(key):
            query.setdefault(key, request.query[key][:200])
    query["ll_click"] = event_id
    return urlunsplit(parts._replace(query=urlencode(query)))


def make_handler(
    sink: Sink, store: SiteConfigStore, metrics: CollectorMetrics, cookie_domain: str
) -> Handler:
    """The affiliate route."""

    async def ad_click(request: web.Request) -> web.StreamResponse:
        affiliate_id, ad_id = request.match_info["affiliate_id"], request.match_info["ad_id"]
        ad = store.ad(affiliate_id, ad_id)
        if ad is None:
            metrics.rejected.labels(endpoint="affiliate", reason="unknown_ad").inc()
            return pages.html_page(404, "Ad not found", "This ad link is not known. Nothing was opened.")
        sub_id = (request.query.get("sub") or request.query.get("sub_id") or "")[:200] or None
        anon_id, _ = visitor_id(request)
        event_id = new_id()
        target = landing_url(ad, event_id, sub_id, request)
        event = RawEvent(
            event_id=event_id,
            type="ad_click",
            source="affiliate",
            received_at=utc_now_iso(),
            anon_id=anon_id,
            context=request_context(request, target, request.headers.get("referer")),
            affiliate={
                "affiliate_id": affiliate_id,
                "ad_id": ad_id,
                **({"sub_id": sub_id} if sub_id else {}),
            },
        )
        await store_or_count(sink, metrics, event)
        response = web.Response(status=302, headers={"Location": target, "Cache-Control": "no-store"})
        if anon_id:
            set_cookie(response, request, anon_id, cookie_domain)
        return response

    return ad_click
