"""One event's enrichment: agent, bot indicators (marked, never dropped), campaign, truncated IP, geography."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from enricher.geo_db import build_db
from leadline_enricher.enrich import EventEnricher, campaign_of
from leadline_enricher.geo import GeoIp
from leadline_shared.events import RawEvent

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def ev(
    type_: str = "page_view",
    source: str = "pixel",
    received_at: str = "2026-11-24T10:00:30.000Z",
    **fields: Any,
) -> RawEvent:
    context = {"user_agent": BROWSER, "ip": "81.2.69.160", **fields.pop("context", {})}
    return RawEvent(
        event_id="e", type=type_, source=source, received_at=received_at, context=context, **fields
    )


def test_a_human_page_view_is_not_a_bot() -> None:
    findings = EventEnricher().enrich(ev())
    assert findings.may_identify is True
    assert findings.fields["bot"] == {"is_bot": False, "indicators": []}
    assert findings.fields["ua"]["browser"] == "Firefox"
    assert findings.fields["referrer_class"] == "direct"


def test_a_head_request_is_a_link_scanner() -> None:
    findings = EventEnricher().enrich(ev("link_click", "link", context={"method": "HEAD"}))
    assert findings.may_identify is False
    assert findings.fields["bot"]["indicators"] == ["head_request"]


def test_a_click_seconds_after_the_send_is_a_link_scanner() -> None:
    enricher = EventEnricher(scanner_seconds=10)
    fast = ev("link_click", "link", link={"sent_at": "2026-11-24T10:00:25Z", "campaign_id": "c1"})
    slow = ev("link_click", "link", link={"sent_at": "2026-11-24T09:00:00Z", "campaign_id": "c1"})
    assert enricher.enrich(fast).fields["bot"]["indicators"] == ["click_soon_after_send"]
    assert enricher.enrich(slow).fields["bot"]["is_bot"] is False


def test_a_browser_hit_without_user_agent_is_suspicious_but_a_server_call_is_not() -> None:
    enricher = EventEnricher()
    assert enricher.enrich(ev(context={"user_agent": ""})).fields["bot"]["indicators"] == ["no_user_agent"]
    assert enricher.enrich(ev("track", "api", context={"user_agent": ""})).fields["bot"]["is_bot"] is False


def test_an_image_proxy_open_is_flagged_and_may_not_identify() -> None:
    proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    findings = EventEnricher().enrich(ev("email_open", context={"user_agent": proxy}))
    assert findings.fields["bot"] == {"is_bot": False, "indicators": [], "image_proxy": True}
    assert findings.may_identify is False  # it must not tie the proxy's cookie to the recipient


def test_campaign_joins_utm_click_id_email_and_affiliate() -> None:
    event = ev(
        "ad_click",
        "affiliate",
        context={
            "campaign": {"source": "google", "medium": "cpc", "name": "spring"},
            "click_ids": {"gclid": "G1"},
        },
        affiliate={"affiliate_id": "aff1", "ad_id": "ad1", "sub_id": ""},
    )
    assert campaign_of(event) == {
        "source": "google", "medium": "cpc", "name": "spring", "click_id_type": "gclid", "click_id": "G1",
        "affiliate_id": "aff1", "ad_id": "ad1",
    }  # fmt: skip
    assert campaign_of(ev()) is None


def test_ip_is_truncated_when_the_visitor_opted_out_and_geo_uses_the_full_address(tmp_path: Path) -> None:
    geo = GeoIp(build_db(tmp_path / "geo.mmdb"))
    try:
        enricher = EventEnricher(geoip=geo)
        opted_out = ev(context={"consent": {"dnt": True}})
        findings = enricher.enrich(opted_out)
        assert opted_out.context["ip"] == "81.2.69.0"
        assert findings.fields["geo"] == {"country": "GB", "region": "ENG", "city": "London"}
        consented = ev()
        enricher.enrich(consented)
        assert consented.context["ip"] == "81.2.69.160"
    finally:
        geo.close()


@pytest.mark.parametrize(
    ("type_", "source", "user_agent", "expected"),
    [
        ("page_view", "pixel", BROWSER, True),
        (
            "page_view",
            "pixel",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            False,
        ),
        ("page_view", "pixel", "curl/8.5.0", False),
        ("link_click", "link", "Mozilla/5.0 Barracuda Sentinel (EE)", False),
        ("form_submit", "form", "curl/8.5.0", True),  # a plain HTTP client posting a form someone filled
        (
            "form_submit",
            "form",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            False,
        ),
        ("form_submit", "form", "Mozilla/5.0 Barracuda Sentinel (EE)", False),
        ("identify", "segment", "analytics-python/2.3.3", True),
        ("track", "api", "python-requests/2.32.3", True),
    ],
)
def test_who_may_identify(type_: str, source: str, user_agent: str, expected: bool) -> None:
    """Bots and scanners never tie a cookie to a person; explicit identity and server integrations do."""
    assert (
        EventEnricher().enrich(ev(type_, source, context={"user_agent": user_agent})).may_identify is expected
    )
