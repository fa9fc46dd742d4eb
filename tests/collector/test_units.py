"""Small pieces of the collector that people feel: how typed contact details are read, and fair rate limits."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline_collector import normalize
from leadline_collector.ratelimit import RateLimiter
from leadline_collector.sink import tally
from leadline_shared.capture.context import campaign_from_url
from leadline_shared.kafka import partition_for


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (" Ann.Lee@Example.COM ", "ann.lee@example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_emails_are_trimmed_and_lower_cased(typed: str, expected: str) -> None:
    assert normalize.email(typed) == expected


@pytest.mark.parametrize("typed", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
def test_invalid_emails_say_so(typed: str) -> None:
    with pytest.raises(normalize.InvalidValue, match="email"):
        normalize.email(typed)


@pytest.mark.parametrize(
    ("typed", "region", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_phones_become_e164(typed: str, region: str, expected: str) -> None:
    assert normalize.phone(typed, region) == expected


@pytest.mark.parametrize("typed", ["12", "call me", "+1 555"])
def test_invalid_phones_say_so(typed: str) -> None:
    with pytest.raises(normalize.InvalidValue, match="phone"):
        normalize.phone(typed, "US")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", True), ("yes", True), (True, True), ("", False), ("off", False), (None, False)],
)
def test_consent_checkboxes(value: str | bool | None, expected: bool) -> None:
    assert normalize.truthy(value) is expected


def test_rate_limiter_allows_a_burst_then_asks_to_wait_and_refills() -> None:
    limiter = RateLimiter(rate=1.0, burst=3)
    assert [limiter.allow("ip", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.allow("ip", now=100.0)
    assert 0.9 <= wait <= 1.0
    assert limiter.allow("other-ip", now=100.0) == 0.0  # one abuser does not block others
    assert limiter.allow("ip", now=101.5) == 0.0


def test_rate_limiter_forgets_the_oldest_keys_beyond_its_bound() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.allow(key, now=0.0)
    assert limiter.allow("a", now=0.0) == 0.0  # "a" was evicted, so it starts with a full bucket


def test_a_visitor_always_maps_to_one_partition() -> None:
    keys = [f"visitor-{i}".encode() for i in range(1000)]
    first = [partition_for(k, 6) for k in keys]
    assert first == [partition_for(k, 6) for k in keys]
    assert set(first) == set(range(6))


_QUERY_PARTS = st.sampled_from(
    [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "gclid",
        "fbclid",
        "msclkid",
        "utm%5Fsource",
        "utm+source",
        "x",
        "",
        "=",
        "&",
        "%",
        "%41",
        "+",
        "%zz",
        "é",
        "#",
        "a=b",
    ]
)


@given(st.lists(st.tuples(_QUERY_PARTS, st.sampled_from(["", "=", "=v", "=a+b", "=%C3%A9", "=%", "=x=y"]))))
def test_campaign_parameters_are_read_as_parse_qsl_reads_them(pairs: list[tuple[str, str]]) -> None:
    """The collector decodes only the campaign parameters of a URL, and must find what ``parse_qsl`` finds."""
    query = "&".join(name + value for name, value in pairs)
    url = f"https://shop.example/p?{query}#utm_source=fragment"
    reference = dict(parse_qsl(urlsplit(url).query))
    campaign, clicks = campaign_from_url(url)
    assert campaign == {
        name: reference[key][:200]
        for key, name in (
            ("utm_source", "source"),
            ("utm_medium", "medium"),
            ("utm_campaign", "name"),
            ("utm_term", "term"),
            ("utm_content", "content"),
        )
        if reference.get(key)
    }
    assert clicks == {
        key: reference[key][:200] for key in ("gclid", "fbclid", "msclkid") if reference.get(key)
    }


@given(
    st.lists(
        st.sampled_from(["track", "page_view", ("track", "beacon"), ("identify", "segment")]), max_size=30
    )
)
def test_a_tally_counts_what_a_counter_counts(keys: list[object]) -> None:
    """The events' per-type counts (answers and metrics) without a Counter in the common, uniform case."""
    assert tally(keys) == dict(Counter(keys))
    assert list(tally(keys)) == list(dict.fromkeys(keys))
