"""Referrer classes: marketers see which channel brought each visit."""

from __future__ import annotations

from typing import Any

import pytest

from leadline_enricher.referrer import referrer_class
from leadline_shared.events import RawEvent, utc_now_iso


def ev(type_: str = "page_view", source: str = "pixel", **context: Any) -> RawEvent:
    return RawEvent(
        event_id="e",
        type=type_,
        source=source,
        received_at=utc_now_iso(),
        context={"url": "https://shop.example/", **context},
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ev(), "direct"),
        (ev(referrer="https://www.google.com/"), "search"),
        (ev(referrer="https://www.bing.com/search?q=crm"), "search"),
        (ev(referrer="https://duckduckgo.com/"), "search"),
        (ev(referrer="https://t.co/abc"), "social"),
        (ev(referrer="https://www.linkedin.com/feed/"), "social"),
        (ev(referrer="https://mail.google.com/mail/u/0/"), "email"),
        (ev(referrer="https://shop.example/pricing"), "internal"),
        (ev(referrer="https://blog.partner.example/post"), "referral"),
        (ev(referrer="https://www.google.com/", click_ids={"gclid": "x"}), "paid"),
        (ev(campaign={"medium": "cpc", "source": "google"}), "paid"),
        (ev(campaign={"medium": "email"}), "email"),
        (ev(campaign={"medium": "social"}), "social"),
        (ev("link_click", "link"), "email"),
        (ev("email_open", "pixel"), "email"),
        (ev("ad_click", "affiliate"), "affiliate"),
        (ev(campaign={"medium": "affiliate"}), "affiliate"),
        (ev(referrer="not a url at all"), "direct"),
    ],
)
def test_referrer_classes(event: RawEvent, expected: str) -> None:
    assert referrer_class(event) == expected


def test_configured_internal_hosts_count_as_internal() -> None:
    event = ev(referrer="https://app.shop.example/dashboard", url="https://www.shop.example/")
    assert referrer_class(event) == "referral"
    assert referrer_class(event, frozenset({"shop.example"})) == "internal"
