"""Stage rules and score decay (unit): what moves a person forward, and what never moves them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadline_crm.lifecycle import Scoring, Signals, automatic_move, decayed, earned_stage

S = Scoring(half_life_days=10, prospect_threshold=30, repeat_visit_days=3)


def sig(**kw: object) -> Signals:
    base: dict[str, object] = dict(
        identified=False, score=0.0, clicked=False, rep_contacted=False, visit_days=0, purchases=0
    )
    base.update(kw)
    return Signals(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signals", "stage"),
    [
        (sig(), "anonymous"),
        (sig(clicked=True, score=99), "anonymous"),  # interest without identity is not a lead
        (sig(identified=True), "lead"),
        (sig(identified=True, score=29.9), "lead"),
        (sig(identified=True, score=30), "prospect"),
        (sig(identified=True, clicked=True), "prospect"),
        (sig(identified=True, rep_contacted=True), "prospect"),
        (sig(identified=True, visit_days=3), "prospect"),
        (sig(identified=True, visit_days=2), "lead"),
        (sig(purchases=1), "customer"),
    ],
)
def test_earned_stage_follows_the_lifecycle_rules(signals: Signals, stage: str) -> None:
    assert earned_stage(signals, S) == stage


def test_automatic_moves_only_go_forward() -> None:
    assert automatic_move("anonymous", sig(identified=True), S) == "lead"
    assert automatic_move("customer", sig(identified=True), S) is None
    assert automatic_move("prospect", sig(identified=True), S) is None
    assert automatic_move("lead", sig(identified=True), S) is None


def test_a_reps_verdict_is_kept_unless_the_person_buys() -> None:
    assert automatic_move("lost", sig(identified=True, clicked=True), S) is None
    assert automatic_move("disqualified", sig(identified=True, score=100), S) is None
    assert automatic_move("lost", sig(purchases=2), S) == "customer"


def test_score_halves_every_half_life() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert decayed(40, t0, t0 + timedelta(days=10), 10) == pytest.approx(20)
    assert decayed(40, t0, t0 + timedelta(days=20), 10) == pytest.approx(10)
    assert decayed(40, t0, t0 - timedelta(days=5), 10) == 40  # a clock behind never inflates a score
    assert decayed(0, None, t0, 10) == 0
