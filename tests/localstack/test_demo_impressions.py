"""make demo's ad impressions (issue 13): every ad of every affiliate is shown, 10 to 30 times per click it got
(so the ads report has a click-through rate for each), the same on every run, and without a visitor's cookie."""

from __future__ import annotations

from collections import Counter
from datetime import date

from leadline_localstack.demo import world as w
from leadline_localstack.demo.run import STEPS, impressions


def test_every_ad_is_shown_10_to_30_times_per_click_without_cookies_and_the_same_on_every_run() -> None:
    world = w.make_world(3, 0.02, w.anchor_of(date(2026, 11, 30)))
    shown = impressions(3, world)
    assert [(aff, ad) for _, aff, ad in shown] == [(aff, ad) for _, aff, ad in impressions(3, world)]
    per_ad = Counter((aff, ad) for _, aff, ad in shown)
    clicks = Counter((c.affiliate.affiliate_id, c.ad.ad_id) for c in world.ad_clicks)
    assert set(per_ad) == {(a.affiliate_id, ad.ad_id) for a in w.AFFILIATES for ad in a.ads}
    for key, n in per_ad.items():
        assert 10 * max(clicks[key], 1) <= n <= 30 * max(clicks[key], 1), key
    assert all("Cookie" not in browser.headers for browser, _, _ in shown)
    assert (
        STEPS.index("ad-impressions") == STEPS.index("today-web") + 1
    )  # after the clicks: the ads are known
