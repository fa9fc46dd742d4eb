"""Where a visit came from: search, social, email, affiliate, paid, direct, internal (or another site).

Campaign tagging wins over the referrer: an affiliate or paid click stays that even when the browser sends
no referrer, and an email link is email whatever webmail page it was opened from.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from leadline_shared.events import RawEvent

SEARCH = ("google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "qwant", "startpage", "brave")
SOCIAL = (
    "facebook", "instagram", "linkedin", "twitter", "t.co", "x.com", "reddit", "youtube", "tiktok",
    "pinterest", "lnkd.in", "threads.net", "mastodon", "bsky.app", "whatsapp", "telegram",
)  # fmt: skip
WEBMAIL = ("mail.google.", "outlook.live.", "outlook.office", "mail.yahoo.", "webmail.", "mail.proton")
PAID_MEDIA = frozenset({"cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-social", "paid_social",
                        "display", "cpm", "cpv", "banner", "retargeting"})  # fmt: skip
EMAIL_MEDIA = frozenset({"email", "e-mail", "newsletter", "mail"})
AFFILIATE_MEDIA = frozenset({"affiliate", "affiliates", "partner"})
SOCIAL_MEDIA = frozenset({"social", "social-network", "social_media", "sm"})


def referrer_class(event: RawEvent, internal_hosts: frozenset[str] = frozenset()) -> str:
    """The traffic class of ``event`` (``referral`` for another website that fits no other class)."""
    ctx = event.context
    campaign = ctx.get("campaign")
    medium = str(campaign.get("medium", "")).lower() if isinstance(campaign, dict) else ""
    if event.source == "affiliate" or event.affiliate or medium in AFFILIATE_MEDIA:
        return "affiliate"
    if ctx.get("click_ids") or medium in PAID_MEDIA:
        return "paid"
    if event.source == "link" or event.type in ("email_open", "link_click") or medium in EMAIL_MEDIA:
        return "email"
    if medium in SOCIAL_MEDIA:
        return "social"
    return _from_referrer(_text(ctx.get("referrer")), _text(ctx.get("url")), internal_hosts)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@lru_cache(maxsize=8192)
def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").removeprefix("www.")
    except ValueError:
        return ""


def _from_referrer(referrer: str, url: str, internal_hosts: frozenset[str]) -> str:
    if not referrer:
        return "direct"
    host = _host(referrer)
    if not host:
        return "direct"
    if host == _host(url) or any(host == h or host.endswith("." + h) for h in internal_hosts):
        return "internal"
    return _class_of_host(host)


@lru_cache(maxsize=8192)
def _class_of_host(host: str) -> str:
    if any(host.startswith(w) or f".{w}" in f".{host}" for w in WEBMAIL):
        return "email"
    labels = host.split(".")
    if any(name in labels or host == name or host.endswith("." + name) for name in SOCIAL):
        return "social"
    if any(name in labels for name in SEARCH):
        return "search"
    return "referral"
