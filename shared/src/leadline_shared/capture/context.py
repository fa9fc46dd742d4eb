"""The context every captured event carries: the request's view (IP, user agent, language, privacy signals),
the page it reports, and the campaign and ad click ids found in that page's URL.

Shared because the collector builds events with it and the enricher builds the events of a batch it splits
(docs/proposals/batch-records.md): the same request must give the same context in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit


class Request(Protocol):
    """What :meth:`RequestView.of` reads of a request: its headers and its client address."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def remote(self) -> str | None: ...


_UTM = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_CLICK_IDS = ("gclid", "fbclid", "msclkid")
_WANTED = frozenset((*_UTM, *_CLICK_IDS))


def campaign_from_url(url: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """UTM parameters and ad click ids found in a page URL (new dicts, the caller's to keep)."""
    if not url or "?" not in url or ("utm_" not in url and "clid" not in url):
        return {}, {}
    campaign, clicks = _campaign_of(url)
    return dict(campaign), dict(clicks)


@lru_cache(maxsize=512)
def _campaign_of(url: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """:func:`campaign_from_url`'s finding, remembered for the last few hundred URLs.

    The messages of one batch mostly come from one page, and a landing page with UTM parameters gets many
    visitors: parsing its query again for each was a fifth of what a Segment message cost. Kept as tuples, so no
    event shares a dict with another.
    """
    try:
        query = _wanted_parameters(urlsplit(url).query)
    except ValueError:
        return (), ()
    campaign = tuple((name, query[key][:200]) for key, name in _UTM.items() if query.get(key))
    clicks = tuple((key, query[key][:200]) for key in _CLICK_IDS if query.get(key))
    return campaign, clicks


def _wanted_parameters(query: str) -> dict[str, str]:
    """The campaign parameters of a query string, as ``dict(parse_qsl(query))`` has them (the last one wins; empty
    values and pairs without ``=`` are left out).

    Only the wanted values are decoded: ``parse_qsl`` decodes every name and value, which made up a fifth of what
    a Segment message costs the collector (a batch of 20 from a landing page with UTM parameters). A query whose
    names are encoded themselves (``%`` or ``+`` in a name) is left to ``parse_qsl``.
    """
    found: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if not value:
            continue
        if "%" in name or "+" in name:
            return dict(parse_qsl(query))
        if name in _WANTED:
            found[name] = value
    return {name: unquote(value.replace("+", " ")) for name, value in found.items()}


@dataclass(frozen=True, slots=True)
class RequestView:
    """What every event of one request reads from its headers, read once: a beacon of 20 events is one request."""

    ip: str | None
    user_agent: str
    locale: str | None
    consent: tuple[bool, bool] | None
    """``(dnt, gpc)`` when either privacy signal is on."""

    @classmethod
    def of(cls, request: Request) -> RequestView:
        """The request's view, from one lookup per header (``remote``: the client address, already resolved)."""
        headers = request.headers
        lang = headers.get("accept-language")
        dnt, gpc = headers.get("dnt") == "1", headers.get("sec-gpc") == "1"
        return cls(
            request.remote,
            headers.get("user-agent", "")[:512],
            lang.split(",", 1)[0].strip()[:32] if lang else None,
            (dnt, gpc) if dnt or gpc else None,
        )


def page_context(
    view: RequestView, url: str | None, referrer: str | None, title: str | None = None
) -> dict[str, Any]:
    """``context`` for an event: the request's view and the page it reports.

    Runs on every captured event, so it is written flat, and the campaign parse only for a URL with a query. In
    the running collector each extra dict and lookup costs several times what a micro-benchmark shows.
    """
    ctx: dict[str, Any] = {"ip": view.ip, "user_agent": view.user_agent}
    if url:
        ctx["url"] = url[:2048]
    if referrer:
        ctx["referrer"] = referrer[:2048]
    if title:
        ctx["title"] = title[:512]
    if view.locale is not None:
        ctx["locale"] = view.locale
    if url and "?" in url:
        campaign, clicks = campaign_from_url(url)
        if campaign:
            ctx["campaign"] = campaign
        if clicks:
            ctx["click_ids"] = clicks
    if view.consent is not None:
        ctx["consent"] = {"dnt": view.consent[0], "gpc": view.consent[1]}
    return ctx
