"""User agent → browser, OS, device, and what the user agent alone says about bots.

Parsing uses ua-parser (uap-core's rules, with the native ua-parser-rs matcher) and crawler detection uses
crawlerdetect's maintained list; no user-agent regexes of our own. Both are costly per call (tens of µs), and
real traffic repeats a few thousand user agents, so results are cached per user-agent string.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]
from ua_parser import parse

MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS"})

EMAIL_SCANNERS = (
    "barracuda",
    "proofpoint",
    "mimecast",
    "messagelabs",
    "symantec",
    "trendmicro",
    "forcepoint",
    "sophos",
    "fortiguard",
    "ironport",
    "safelinks",
    "linkscanner",
    "bingpreview",
)
"""Product names of email security gateways that open links before the recipient does (substring match)."""

IMAGE_PROXIES = ("googleimageproxy", "yahoomailproxy", "ggpht.com")
"""Mail providers' image proxies: an open through one is real but says nothing about the reader's device."""


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What one user-agent string tells: the parsed agent and the bot indicators it fires."""

    ua: dict[str, Any]
    indicators: tuple[str, ...]
    image_proxy: bool


class UserAgents:
    """Parses user agents with a bounded cache of results."""

    def __init__(self, cache_size: int = 20_000) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[str, UserAgentInfo] = OrderedDict()
        self._crawlers = CrawlerDetect()

    def lookup(self, user_agent: str) -> UserAgentInfo:
        """The (cached) facts about ``user_agent``."""
        info = self._cache.get(user_agent)
        if info is None:
            info = self._parse(user_agent)
            self._cache[user_agent] = info
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return info

    def _parse(self, user_agent: str) -> UserAgentInfo:
        result = parse(user_agent)
        browser = result.user_agent
        os = result.os
        device = result.device
        device_family = device.family if device else "Other"
        ua: dict[str, Any] = {
            "browser": browser.family if browser else "Other",
            "browser_version": _version(browser.major, browser.minor) if browser else None,
            "os": os.family if os else "Other",
            "os_version": _version(os.major, os.minor) if os else None,
            "device": device_family,
            "is_mobile": bool(os and os.family in MOBILE_OS and "ipad" not in device_family.lower()),
        }
        lowered = user_agent.lower()
        image_proxy = any(p in lowered for p in IMAGE_PROXIES)
        indicators: list[str] = []
        if not image_proxy:
            if self._crawlers.isCrawler(user_agent):
                indicators.append("crawler_list")
            if device_family == "Spider":
                indicators.append("ua_spider")
            if any(s in lowered for s in EMAIL_SCANNERS):
                indicators.append("known_scanner")
        return UserAgentInfo(ua=ua, indicators=tuple(indicators), image_proxy=image_proxy)


def _version(major: str | None, minor: str | None) -> str | None:
    if not major:
        return None
    return f"{major}.{minor}" if minor else major
