"""The rules' decision step on its own: an event visits only the rules it triggers (thresholds crossed, keyed
values), a rule's own chain stops it, a delay makes a waiting run, and conditions read the person's facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from leadline_crm.automation import rules
from leadline_crm.automation.events import DomainEvent

PERSON = uuid.uuid4()


def rule(rule_id: int, trigger: str, params: dict[str, Any] | None = None, **kw: Any) -> rules.Rule:
    row = {"id": rule_id, "name": f"r{rule_id}", "enabled": True, "trigger_type": trigger,
           "trigger_params": params or {}, "conditions": kw.get("conditions", []),
           "actions": [{"type": "add_tag", "tag": "t"}], "delay_seconds": kw.get("delay", 0),
           "unless_activity": None}  # fmt: skip
    return rules.Rule.of(row)


def event(kind: str, data: dict[str, Any], chain: tuple[int, ...] = ()) -> DomainEvent:
    return DomainEvent(1, kind, PERSON, None, data, "k", datetime.now(UTC), chain)


def decided(
    ruleset: rules.RuleSet, e: DomainEvent, facts: dict[str, Any] | None = None
) -> list[tuple[int, str]]:
    return sorted((p.rule.id, p.status) for p in rules.decide(ruleset, [e], {PERSON: facts or {}}))


def test_score_thresholds_fire_only_when_crossed_upwards() -> None:
    rs = rules.RuleSet.of([rule(1, "score.changed", {"threshold": 50}), rule(2, "score.changed", {"threshold": 80}),
                           rule(3, "score.changed")])  # fmt: skip
    assert decided(rs, event("score.changed", {"old": 40, "new": 50})) == [(1, "running"), (3, "running")]
    assert decided(rs, event("score.changed", {"old": 50, "new": 90})) == [(2, "running"), (3, "running")]
    assert decided(rs, event("score.changed", {"old": 90, "new": 40})) == [(3, "running")]


def test_keyed_triggers_match_their_value_without_case() -> None:
    rs = rules.RuleSet.of([rule(1, "form.submitted", {"form": "Quote"}), rule(2, "form.submitted"),
                           rule(3, "event.custom", {"name": "Signup"})])  # fmt: skip
    assert decided(rs, event("form.submitted", {"form": "quote"})) == [(1, "running"), (2, "running")]
    assert decided(rs, event("form.submitted", {"form": "contact"})) == [(2, "running")]
    assert decided(rs, event("event.custom", {"name": "signup"})) == [(3, "running")]


def test_a_rules_own_chain_stops_it_a_delay_waits_and_conditions_filter() -> None:
    rs = rules.RuleSet.of([
        rule(1, "person.stage_changed"),
        rule(2, "person.stage_changed", delay=60),
        rule(3, "person.stage_changed", conditions=[{"field": "country", "op": "eq", "value": "DE"}]),
        rule(4, "deal.won"),
    ])  # fmt: skip
    e = event("person.stage_changed", {"to": "lead"}, chain=(1,))
    pending = rules.decide(rs, [e], {PERSON: {"country": "FR"}})
    assert [(p.rule.id, p.status, p.reason) for p in pending] == [(1, "stopped", rules.SELF_TRIGGER),
                                                                  (2, "waiting", None)]  # fmt: skip
    assert pending[1].due_at is not None
    assert decided(rs, event("person.stage_changed", {"to": "lead"}), {"country": "de"}) == [
        (1, "running"), (2, "waiting"), (3, "running")]  # fmt: skip


def test_disabled_rules_trigger_nothing_but_are_known_by_id() -> None:
    off = rules.Rule.of({"id": 9, "name": "off", "enabled": False, "trigger_type": "deal.won", "trigger_params": {},
                         "conditions": [], "actions": [], "delay_seconds": 0, "unless_activity": None})  # fmt: skip
    rs = rules.RuleSet.of([off])
    assert rules.decide(rs, [event("deal.won", {})], {}) == []
    assert rs.by_id[9].name == "off"
