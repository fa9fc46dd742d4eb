"""User agents: marketers see browser, OS and device; bots and mail scanners are recognised, not guessed."""

from __future__ import annotations

import pytest

from leadline_enricher.useragent import UserAgents

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def agents() -> UserAgents:
    return UserAgents()


def test_a_desktop_browser_is_parsed(agents: UserAgents) -> None:
    info = agents.lookup(CHROME)
    assert info.ua["browser"] == "Chrome"
    assert info.ua["browser_version"] == "120.0"
    assert info.ua["os"] == "Windows"
    assert info.ua["is_mobile"] is False
    assert info.indicators == ()


def test_a_phone_is_mobile(agents: UserAgents) -> None:
    info = agents.lookup(IPHONE)
    assert info.ua["os"] == "iOS"
    assert info.ua["device"] == "iPhone"
    assert info.ua["is_mobile"] is True


def test_a_search_crawler_fires_both_bot_indicators(agents: UserAgents) -> None:
    info = agents.lookup("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert "crawler_list" in info.indicators
    assert "ua_spider" in info.indicators


def test_an_email_security_gateway_is_a_known_scanner(agents: UserAgents) -> None:
    assert "known_scanner" in agents.lookup("Mozilla/5.0 Barracuda Sentinel (EE)").indicators


def test_a_mail_image_proxy_is_flagged_but_not_a_bot(agents: UserAgents) -> None:
    """A Gmail open goes through Google's proxy: a real open, but the agent says nothing about the reader."""
    info = agents.lookup(
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert info.image_proxy is True
    assert info.indicators == ()


def test_results_are_cached_and_the_cache_is_bounded() -> None:
    agents = UserAgents(cache_size=2)
    first = agents.lookup(CHROME)
    assert agents.lookup(CHROME) is first
    agents.lookup(IPHONE)
    agents.lookup("curl/8.0")
    assert agents.lookup(CHROME) is not first
