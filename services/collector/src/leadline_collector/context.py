"""The request context every captured event carries: IP, user agent, page, referrer, campaign, click ids."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from leadline_collector.visitor import HitRequest

_UTM = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_CLICK_IDS = ("gclid", "fbclid", "msclkid")


def client_ip(request: HitRequest) -> str | None:
    """The client address: the first X-Forwarded-For hop when behind a proxy, else the peer."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()[:64]
    return request.remote


def campaign_from_url(url: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """UTM parameters and ad click ids found in a page URL."""
    if not url or "?" not in url or ("utm_" not in url and "clid" not in url):
        return {}, {}
    try:
        query = dict(parse_qsl(urlsplit(url).query))
    except ValueError:
        return {}, {}
    campaign = {name: query[key][:200] for key, name in _UTM.items() if query.get(key)}
    clicks = {key: query[key][:200] for key in _CLICK_IDS if query.get(key)}
    return campaign, clicks


def request_context(
    request: HitRequest, url: str | None, referrer: str | None, title: str | None = None
) -> dict[str, Any]:
    """Build ``context`` for an event from the request and the page it reports.

    Runs on every captured hit, so it is written flat: one lookup per header, and the campaign parse only for a
    URL with a query. In the running collector each extra dict and lookup costs several times what a
    micro-benchmark shows.
    """
    headers = request.headers
    ctx: dict[str, Any] = {"ip": client_ip(request), "user_agent": headers.get("user-agent", "")[:512]}
    if url:
        ctx["url"] = url[:2048]
    if referrer:
        ctx["referrer"] = referrer[:2048]
    if title:
        ctx["title"] = title[:512]
    if lang := headers.get("accept-language"):
        ctx["locale"] = lang.split(",", 1)[0].strip()[:32]
    if url and "?" in url:
        campaign, clicks = campaign_from_url(url)
        if campaign:
            ctx["campaign"] = campaign
        if clicks:
            ctx["click_ids"] = clicks
    dnt, gpc = headers.get("dnt") == "1", headers.get("sec-gpc") == "1"
    if dnt or gpc:
        ctx["consent"] = {"dnt": dnt, "gpc": gpc}
    return ctx
