"""Lifecycle stages and lead score (architecture.md §5), as pure functions the ingestion and the API share.

lead = identified; prospect = a lead showing interest (score ≥ threshold, an ad or email-link click, repeat
visits, a rep-logged call or site visit); customer = at least one purchase. Automatic moves only go forward;
``lost`` and ``disqualified`` are set by reps and left alone by automatic moves, except that a purchase still
makes a customer (money beats an old verdict).

The score decays exponentially with a half-life, which can be kept incrementally: store the score and the time
it was computed at; later, ``score · 0.5^(Δt / half_life)`` is its value, and new points are added to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

STAGES = ("anonymous", "lead", "prospect", "customer", "lost", "disqualified")
LADDER = {"anonymous": 0, "lead": 1, "prospect": 2, "customer": 3}
REP_CONTACT_KINDS = frozenset({"site_visit", "phone_call", "meeting"})
CLICK_TYPES = frozenset({"ad_click", "link_click"})
IDENTIFYING_TYPES = frozenset({"form_submit", "identify"})
EXPLICIT_TYPES = frozenset({"form_submit", "identify", "alias"})
"""Events whose sender states who they are (a person typed it, or the site's backend names its user)."""
MACHINE_INDICATORS = frozenset({"ua_spider", "known_scanner", "head_request", "click_soon_after_send"})
"""The enricher's bot indicators that mean a crawler or mail scanner fetched on nobody's behalf. The others
(``crawler_list``, ``no_user_agent``) also fire for a plain HTTP client such as a site's backend posting a form."""
SERVER_SOURCES = frozenset({"segment", "api"})
"""Sources relaying calls from a backend: their user agent is the integration's, so generic signs prove nothing."""


def automated(event_type: str, source: str, bot: Any) -> bool:
    """Whether an event was made by a bot, a link scanner or an image proxy (the enricher's ``bot`` findings).

    Such an event is kept in the history and on the timeline, marked, but never scores, never counts as a visit
    or a click, never identifies anyone and never moves a stage (issue 11: four Googlebot page views made a
    prospect). A stated identity (a form, an identify call) or a backend's call is automated only on the
    strong signs, as in the enricher's identity rule (architecture.md §4).
    """
    if not isinstance(bot, dict):
        return False
    if bot.get("image_proxy"):
        return True
    indicators = bot.get("indicators")
    fired = {i for i in indicators if isinstance(i, str)} if isinstance(indicators, list) else set()
    if event_type in EXPLICIT_TYPES or source in SERVER_SOURCES:
        return bool(fired & MACHINE_INDICATORS)
    return bool(fired) or bot.get("is_bot") is True


@dataclass(frozen=True)
class Scoring:
    """The admin's scoring settings (table ``scoring``)."""

    half_life_days: float = 30.0
    prospect_threshold: float = 50.0
    repeat_visit_days: int = 3


@dataclass(frozen=True)
class Signals:
    """What the stage depends on, as stored on the person."""

    identified: bool
    score: float
    clicked: bool
    rep_contacted: bool
    visit_days: int
    purchases: int


def decayed(score: float, score_at: datetime | None, now: datetime, half_life_days: float) -> float:
    """The score at ``now`` of a score computed at ``score_at``."""
    if score_at is None or score == 0:
        return score
    age_days = max((now - score_at).total_seconds(), 0.0) / 86400.0
    return float(score * 0.5 ** (age_days / half_life_days))


def earned_stage(signals: Signals, scoring: Scoring) -> str:
    """The furthest stage the signals justify."""
    if signals.purchases > 0:
        return "customer"
    if not signals.identified:
        return "anonymous"
    interested = (
        signals.score >= scoring.prospect_threshold
        or signals.clicked
        or signals.rep_contacted
        or signals.visit_days >= scoring.repeat_visit_days
    )
    return "prospect" if interested else "lead"


def automatic_move(current: str, signals: Signals, scoring: Scoring) -> str | None:
    """The stage to move to automatically, or None: only forward, and never out of a rep's verdict
    (lost, disqualified) unless the person bought something."""
    target = earned_stage(signals, scoring)
    if current in LADDER:
        return target if LADDER[target] > LADDER[current] else None
    return "customer" if target == "customer" else None
