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

STAGES = ("anonymous", "lead", "prospect", "customer", "lost", "disqualified")
LADDER = {"anonymous": 0, "lead": 1, "prospect": 2, "customer": 3}
REP_CONTACT_KINDS = frozenset({"site_visit", "phone_call", "meeting"})
CLICK_TYPES = frozenset({"ad_click", "link_click"})
IDENTIFYING_TYPES = frozenset({"form_submit", "identify"})


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
