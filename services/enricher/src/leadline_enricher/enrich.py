"""Everything the enricher adds to an event besides the person: agent, bot signals, traffic class,
campaign, truncated IP and geography (architecture.md §3).

Bots and link scanners are marked, never dropped: the CRM decides what a scanner's click is worth, and the
identity graph refuses to let them identify anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadline_enricher.geo import GeoIp
from leadline_enricher.privacy import must_truncate, truncate_ip
from leadline_enricher.referrer import referrer_class
from leadline_enricher.useragent import UserAgents
from leadline_shared.events import RawEvent

BROWSER_SOURCES = frozenset({"pixel", "link", "affiliate", "form", "beacon"})
"""Sources whose hits come straight from a browser or mail client, so a missing user agent is suspicious."""

CLICK_ID_TYPES = ("gclid", "msclkid", "fbclid")

EXPLICIT_IDENTITY = frozenset({"form_submit", "identify", "alias"})
"""Events whose sender states who they are: a person typed the email, or the site's backend names its user."""

AUTOMATED_ACCESS = frozenset({"ua_spider", "known_scanner", "head_request", "click_soon_after_send"})
"""Indicators of a crawler or mail scanner fetching on nobody's behalf: never allowed to identify anyone."""


@dataclass(frozen=True, slots=True)
class Findings:
    """The enricher's findings for one event (fields of EnrichedEvent) and whether it may identify anyone."""

    fields: dict[str, Any]
    may_identify: bool


class EventEnricher:
    """Computes an event's enrichment; every costly step is cached."""

    def __init__(
        self,
        geoip: GeoIp | None = None,
        scanner_seconds: float = 10.0,
        internal_hosts: tuple[str, ...] = (),
        user_agents: UserAgents | None = None,
    ) -> None:
        self.geoip = geoip
        self.scanner_seconds = scanner_seconds
        self.internal_hosts = frozenset(h.lower().removeprefix("www.") for h in internal_hosts)
        self.user_agents = user_agents or UserAgents()

    def enrich(self, event: RawEvent) -> Findings:
        """What the request tells about ``event``; also truncates ``event.context['ip']`` when consent asks."""
        ctx = event.context
        user_agent = ctx.get("user_agent")
        indicators: list[str] = []
        ua: dict[str, Any] | None = None
        image_proxy = False
        if isinstance(user_agent, str) and user_agent:
            info = self.user_agents.lookup(user_agent)
            ua = info.ua
            indicators.extend(info.indicators)
            image_proxy = info.image_proxy
        elif event.source in BROWSER_SOURCES:
            indicators.append("no_user_agent")
        if ctx.get("method") == "HEAD":
            indicators.append("head_request")
        if event.type == "link_click" and self._clicked_right_after_send(event):
            indicators.append("click_soon_after_send")
        bot: dict[str, Any] = {"is_bot": bool(indicators), "indicators": indicators}
        if image_proxy:
            bot["image_proxy"] = True
        fields: dict[str, Any] = {
            "ua": ua,
            "bot": bot,
            "referrer_class": referrer_class(event, self.internal_hosts),
        }
        if campaign := campaign_of(event):
            fields["campaign"] = campaign
        ip = ctx.get("ip")
        if isinstance(ip, str) and ip:
            if self.geoip is not None:
                fields["geo"] = self.geoip.lookup(ip)
            if must_truncate(ctx):
                ctx["ip"] = truncate_ip(ip)
        return Findings(fields=fields, may_identify=may_identify(event, indicators, image_proxy))

    def _clicked_right_after_send(self, event: RawEvent) -> bool:
        """A click within seconds of the email's send time: a mail gateway checking the link, not a person."""
        sent = (event.link or {}).get("sent_at")
        if not isinstance(sent, str):
            return False
        try:
            delta = _parse_time(event.received_at) - _parse_time(sent)
        except ValueError:
            return False
        return 0 <= delta.total_seconds() < self.scanner_seconds


def may_identify(event: RawEvent, indicators: list[str], image_proxy: bool) -> bool:
    """Whether the event's identifiers may join or extend a person (architecture.md §4: bots never do).

    Pixels, clicks and page views marked as bots or seen through an image proxy never identify. A form
    submission or identify call still does when only generic signs fired (a plain HTTP client such as curl or
    a headless browser, no user agent): the identity was typed or sent on purpose. Server-to-server sources
    (Segment, the API) relay calls whose user agent is the integration's, so it proves nothing.
    """
    if event.source not in BROWSER_SOURCES:
        return True
    if event.type in EXPLICIT_IDENTITY:
        return not AUTOMATED_ACCESS.intersection(indicators)
    return not indicators and not image_proxy


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def campaign_of(event: RawEvent) -> dict[str, Any] | None:
    """UTM parameters, the ad click id, the email campaign and the affiliate, as one campaign record."""
    ctx = event.context
    campaign: dict[str, Any] = {}
    utm = ctx.get("campaign")
    if isinstance(utm, dict):
        campaign.update({k: v for k, v in utm.items() if isinstance(v, str) and v})
    clicks = ctx.get("click_ids")
    if isinstance(clicks, dict):
        for kind in CLICK_ID_TYPES:
            if isinstance(value := clicks.get(kind), str) and value:
                campaign["click_id_type"] = kind
                campaign["click_id"] = value
                break
    if event.link:
        for key in ("campaign_id", "send_id"):
            if isinstance(value := event.link.get(key), str | int) and value != "":
                campaign[key] = value
    if event.affiliate:
        for key in ("affiliate_id", "ad_id", "sub_id"):
            if isinstance(value := event.affiliate.get(key), str | int) and value != "":
                campaign[key] = value
    return campaign or None
