"""``GET /a/{affiliate_id}/{ad_id}``: an affiliate's ad click, redirected only to that ad's landing URL; and
``GET /a/{affiliate_id}/{ad_id}/i.gif``: the impression pixel the affiliate embeds with the ad.

The destination always comes from the ad's configuration, never from the query string, so the route cannot be
used as an open redirect. Attribution parameters are appended so the landing page (and our snippet on it) can
tie the visit to the click.

An impression is a view of our ad on another site, not a visitor of ours: it sets no cookie and carries no
anon_id or other identifier, so the enricher makes nobody of it and crm-core only counts it (architecture.md
§12). An unknown affiliate or ad still gets the GIF (an image must never break the host page) but is counted as
rejected (``reason="unknown_ad"``) and not published: nothing downstream could attribute it. The aiohttp route
and the fast path (:mod:`fastpath`) both build the event with :func:`impression_event`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from leadline_collector import pages
from leadline_collector.context import request_context
from leadline_collector.hits import GIF, GIF_HEADERS
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, store_or_count
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.visitor import HitRequest, set_cookie, visitor_id
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


def impression_event(
    request: HitRequest, store: SiteConfigStore, affiliate_id: str, ad_id: str
) -> RawEvent | None:
    """The ``ad_impression`` of a known ad, without anon_id or identifiers; None for an unknown one."""
    if store.ad(affiliate_id, ad_id) is None:
        return None
    sub_id = (request.query.get("sub") or request.query.get("sub_id") or "")[:200]
    return RawEvent(
        event_id=new_id(),
        type="ad_impression",
        source="affiliate",
        received_at=utc_now_iso(),
        context=request_context(request, None, request.headers.get("referer")),
        affiliate={"affiliate_id": affiliate_id, "ad_id": ad_id, **({"sub_id": sub_id} if sub_id else {})},
    )


def make_impression_handler(sink: Sink, store: SiteConfigStore, metrics: CollectorMetrics) -> Handler:
    """The impression pixel: always the GIF, never a cookie."""

    async def ad_impression(request: web.Request) -> web.StreamResponse:
        event = impression_event(
            request, store, request.match_info["affiliate_id"], request.match_info["ad_id"]
        )
        if event is None:
            metrics.rejected.labels(endpoint="impression", reason="unknown_ad").inc()
        else:
            await store_or_count(sink, metrics, event)
        return web.Response(body=GIF, headers=GIF_HEADERS)

    return ad_impression
