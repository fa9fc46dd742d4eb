"""Workflow rules: a trigger, conditions and actions, compiled once and kept in memory by trigger type.

:func:`evaluate` is the automation loop's rule handler. For each domain event it takes the rules of the event's
type whose trigger parameters match (a threshold crossed, a stage, a form, a custom event's name), reads the
persons of those events in one query, and records one run per (rule, event) with ``INSERT … ON CONFLICT DO
NOTHING``: a replayed event finds its run and does nothing twice. A rule whose conditions do not hold leaves no
run (100 rules over 10,000 events a second would otherwise write a million rows a second). A rule with a delay
records a ``waiting`` run, which :func:`run_due` carries out once due — re-checking its ``unless`` activity and its
conditions then — so a delayed step lives in PostgreSQL and survives restarts.

Self-trigger: every event a rule's actions emit carries the rule's id in its ``chain``; an event whose chain holds
a rule's own id does not run that rule — its run is ``stopped`` with the reason "would trigger itself".
"""

from __future__ import annotations

import json
import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from leadline_crm.automation import actions as acts
from leadline_crm.automation import batch, queries
from leadline_crm.automation.conditions import Facts, Predicate, compile_all, describe
from leadline_crm.automation.events import DomainEvent

SELF_TRIGGER = "would trigger itself"
TriggerMatch = Callable[[DomainEvent], bool]
"""Whether an event of a rule's type is the one the rule waits for (the RuleSet's index does the same in bulk)."""


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


#: Triggers whose parameter names one value of the event: (parameter, event data key).
KEYED = {
    "person.stage_changed": ("stage", "to"),
    "deal.stage_changed": ("stage", "stage"),
    "form.submitted": ("form", "form"),
    "event.custom": ("name", "name"),
    "case.created": ("case_type", "case_type"),
    "case.updated": ("status", "status"),
}


def trigger_matcher(trigger: str, params: Mapping[str, Any]) -> TriggerMatch:
    """Whether an event of the rule's type is the one it waits for (checked on the event alone)."""
    if trigger == "score.changed" and "threshold" in params:
        t = float(params["threshold"])

        def crossed(e: DomainEvent) -> bool:
            old, new = _num(e.data.get("old")), _num(e.data.get("new"))
            return old is not None and new is not None and old < t <= new

        return crossed
    key = KEYED.get(trigger)
    if key and params.get(key[0]):
        want, got = str(params[key[0]]).casefold(), key[1]
        return lambda e: str(e.data.get(got, "")).casefold() == want
    return lambda e: True


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule as stored, and its compiled trigger and conditions."""

    id: int
    name: str
    enabled: bool
    trigger_type: str
    trigger_params: Mapping[str, Any]
    conditions: Sequence[Mapping[str, Any]]
    actions: Sequence[Mapping[str, Any]]
    delay_seconds: int = 0
    unless_activity: str | None = None
    holds: Predicate = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Rule:
        """From a ``workflow_rules`` row (jsonb as Python objects)."""
        params, conds = _json(row["trigger_params"]), _json(row["conditions"])
        return cls(
            id=row["id"],
            name=row["name"],
            enabled=row["enabled"],
            trigger_type=row["trigger_type"],
            trigger_params=params,
            conditions=conds,
            actions=_json(row["actions"]),
            delay_seconds=row["delay_seconds"],
            unless_activity=row["unless_activity"],
            holds=compile_all(conds),
        )

    def failed_condition(self, facts: Facts) -> str | None:
        """The first condition that does not hold, in words (None when they all hold)."""
        if self.holds(facts):
            return None
        for cond in self.conditions:
            if not compile_all([cond])(facts):
                return f"condition not met: {describe(cond)}"
        return "conditions not met"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class RuleSet:
    """The enabled rules indexed by what triggers them, reloaded when the rules' signature (count, last change)
    moves.

    An event visits only the rules it can trigger: a keyed trigger's rules are looked up by the event's value (a
    stage, a form, a custom event's name), and score thresholds are kept sorted, so the rules whose threshold an
    event's old and new score cross are found by bisection. 100 rules cost an event a few lookups, not 100 calls.
    """

    by_trigger: dict[str, list[Rule]] = field(default_factory=dict)
    by_id: dict[int, Rule] = field(default_factory=dict)
    signature: tuple[Any, ...] | None = None
    reads_lists: bool = False  # an enabled rule's condition reads the person's static lists
    _any: dict[str, list[Rule]] = field(default_factory=dict)  # rules of a type without a parameter
    _keyed: dict[str, dict[str, list[Rule]]] = field(default_factory=dict)
    _thresholds: list[float] = field(default_factory=list)
    _by_threshold: list[Rule] = field(default_factory=list)

    @classmethod
    def of(cls, rules: Sequence[Rule]) -> RuleSet:
        """Index ``rules`` (the disabled ones are kept by id only, for waiting runs to find them gone)."""
        out = cls(by_id={r.id: r for r in rules})
        scored = []
        for r in rules:
            if not r.enabled:
                continue
            out.by_trigger.setdefault(r.trigger_type, []).append(r)
            key = KEYED.get(r.trigger_type)
            if r.trigger_type == "score.changed" and "threshold" in r.trigger_params:
                scored.append((float(r.trigger_params["threshold"]), r.id, r))
            elif key and r.trigger_params.get(key[0]):
                value = str(r.trigger_params[key[0]]).casefold()
                out._keyed.setdefault(r.trigger_type, {}).setdefault(value, []).append(r)
            else:
                out._any.setdefault(r.trigger_type, []).append(r)
        scored.sort()
        out.reads_lists = any(
            c.get("op") == "in_list" or c.get("field") == "lists"
            for r in rules
            if r.enabled
            for c in r.conditions
        )
        out._thresholds = [t for t, _, _ in scored]
        out._by_threshold = [r for _, _, r in scored]
        return out

    def candidates(self, e: DomainEvent) -> list[Rule]:
        """The rules ``e`` triggers (before their conditions)."""
        found = list(self._any.get(e.type, ()))
        if e.type == "score.changed" and self._thresholds:
            old, new = _num(e.data.get("old")), _num(e.data.get("new"))
            if old is not None and new is not None and new > old:  # old < t <= new
                found += self._by_threshold[
                    bisect_right(self._thresholds, old) : bisect_right(self._thresholds, new)
                ]
        elif (keyed := self._keyed.get(e.type)) is not None:
            found += keyed.get(str(e.data.get(KEYED[e.type][1], "")).casefold(), ())
        return found

    async def refresh(self, conn: asyncpg.Connection) -> None:
        """Reload the rules when one was created, changed or deleted since the last look (one tiny read)."""
        sig = tuple(await conn.fetchrow(queries.RULES_SIGNATURE))
        if sig == self.signature:
            return
        fresh = RuleSet.of([Rule.of(r) for r in await conn.fetch(queries.ALL_RULES)])
        fresh.signature = sig
        for name in ("by_trigger", "by_id", "signature", "reads_lists", "_any", "_keyed", "_thresholds",
                     "_by_threshold"):  # fmt: skip
            setattr(self, name, getattr(fresh, name))


@dataclass(slots=True)
class Pending:
    """A run decided for an event, not yet recorded."""

    rule: Rule
    event: DomainEvent
    status: str
    reason: str | None = None
    due_at: datetime | None = None


def trigger_key(event: DomainEvent) -> str:
    """What names the triggering event in ``rule_runs`` (stable across replays)."""
    return f"{event.type}:{event.source_key}"


Triggered = list[tuple[DomainEvent, list[Rule]]]
"""Events with the rules each triggers (before their conditions)."""


def triggered(rules: RuleSet, events: Sequence[DomainEvent]) -> Triggered:
    """Each event that triggers a rule, with those rules (looked up once per event for the whole evaluation)."""
    out = []
    for e in events:
        found = rules.candidates(e)
        if found:
            out.append((e, found))
    return out


def decide(
    rules: RuleSet,
    events: Sequence[DomainEvent],
    persons: Mapping[Any, Mapping[str, Any]],
    found: Triggered | None = None,
) -> list[Pending]:
    """The runs these events start (``found``: :func:`triggered` of them, if the caller has it): pure, so the
    bench and the unit tests can time and check it alone."""
    out: list[Pending] = []
    now = datetime.now(UTC)
    for e, candidates in triggered(rules, events) if found is None else found:
        facts: Facts | None = None
        for rule in candidates:
            if rule.id in e.chain:
                out.append(Pending(rule, e, "stopped", SELF_TRIGGER))
                continue
            if rule.delay_seconds:
                out.append(Pending(rule, e, "waiting", due_at=now + timedelta(seconds=rule.delay_seconds)))
                continue
            if facts is None:
                facts = Facts(persons.get(e.person_id), e.data)
            if rule.holds(facts):
                out.append(Pending(rule, e, "running"))
    return out


def needing_facts(found: Triggered) -> list[uuid.UUID]:
    """The persons whose facts some triggered rule's conditions read (the others are not read at all)."""
    ids = {
        e.person_id
        for e, candidates in found
        if e.person_id is not None and any(r.conditions and not r.delay_seconds for r in candidates)
    }
    return list(ids)


async def person_facts(
    conn: asyncpg.Connection, ids: Sequence[uuid.UUID], lists: bool = True
) -> dict[Any, dict[str, Any]]:
    """The persons' facts the conditions read, by id (one query; their static lists only with ``lists``)."""
    if not ids:
        return {}
    rows = await conn.fetch(queries.PERSON_FACTS if lists else queries.PERSON_FACTS_NO_LISTS, list(ids))
    return {r["person_id"]: _facts_row(r) for r in rows}


def _facts_row(r: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(r)
    attrs = _json(doc.get("attributes")) or {}
    doc["attributes"] = attrs
    # the person's marketing consent as people/consent.py records it (form, snippet, agent, API): never stated is
    # not given, as for e-mails and marketing webhooks
    doc["consent"] = doc.pop("marketing_consent") is True
    doc["owner"] = str(doc["owner"]) if doc.get("owner") else None
    return doc


async def evaluate(conn: asyncpg.Connection, events: Sequence[DomainEvent], rules: RuleSet) -> int:
    """Start the runs ``events`` call for (the loop's rule handler, in its transaction); returns runs recorded."""
    await rules.refresh(conn)
    found = triggered(rules, [e for e in events if e.type in rules.by_trigger])
    if not found:
        return 0
    persons = await person_facts(conn, needing_facts(found), rules.reads_lists)
    pending = decide(rules, (), persons, found)
    if not pending:
        return 0
    try:
        async with conn.transaction():  # the simple runs recorded done, and done set-based (batch.py)
            inserted = await _record(conn, pending, settle=True)
            simple = [(p.rule.id, p.rule.name, p.rule.actions, p.event) for p in pending
                      if _settled(p) and _key(p) in inserted]  # fmt: skip
            await batch.act(conn, simple)
    except asyncpg.PostgresError:  # a list or user gone: every run one by one, so only those at fault fail
        inserted = await _record(conn, pending, settle=False)
        later = [p for p in pending if p.status == "running"]
    else:
        later = [p for p in pending if p.status == "running" and not _settled(p)]
    for p in later:
        if (run_id := inserted.get(_key(p))) is not None:
            await _carry_out(conn, run_id, p.rule, p.event)
    return len(inserted)


def _key(p: Pending) -> tuple[int, str]:
    return p.rule.id, trigger_key(p.event)


def _settled(p: Pending) -> bool:
    """Whether the run is simple enough to be recorded done and carried out in the batch."""
    return p.status == "running" and batch.batchable(p.rule.actions, p.event)


async def _record(
    conn: asyncpg.Connection, pending: Sequence[Pending], settle: bool
) -> dict[tuple[int, str], int]:
    """Insert the runs (ON CONFLICT DO NOTHING); the ones new to this transaction, by (rule, trigger key). With
    ``settle``, the simple runs are recorded done with their actions (the caller does them in the same savepoint)."""
    done = [settle and _settled(p) for p in pending]
    data: dict[int, str] = {}  # per event: several runs of one event share its JSON
    described: dict[int, str] = {}  # per rule: its actions in words, as a done run records them
    for p in pending:
        if id(p.event) not in data:
            data[id(p.event)] = orjson.dumps(p.event.data, default=str).decode()
        if p.rule.id not in described:
            described[p.rule.id] = orjson.dumps([acts.describe(a) for a in p.rule.actions]).decode()
    rows = await conn.fetch(
        queries.INSERT_RUNS,
        [p.rule.id for p in pending],
        [trigger_key(p.event) for p in pending],
        [p.event.type for p in pending],
        [p.event.person_id for p in pending],
        [p.event.subject for p in pending],
        [data[id(p.event)] for p in pending],
        [",".join(map(str, p.event.chain)) for p in pending],
        ["done" if d else p.status for d, p in zip(done, pending, strict=True)],
        [p.due_at for p in pending],
        [p.reason for p in pending],
        [described[p.rule.id] if d else "[]" for d, p in zip(done, pending, strict=True)],
    )
    return {(r["rule_id"], r["trigger_key"]): r["id"] for r in rows}


async def _carry_out(conn: asyncpg.Connection, run_id: int, rule: Rule, event: DomainEvent) -> None:
    """Do the rule's actions and close the run; a failing action fails the run (and only it: a savepoint)."""
    try:
        async with conn.transaction():
            done = await acts.perform(conn, rule.id, rule.name, rule.actions, event)
    except acts.ActionFailed as exc:
        await conn.execute(queries.FINISH_RUN, run_id, "failed", str(exc), "[]")
        return
    await conn.execute(queries.FINISH_RUN, run_id, "done", None, json.dumps(done))


async def run_due(conn: asyncpg.Connection, rules: RuleSet, limit: int = 200) -> int:
    """Carry out the waiting runs whose time has come (locked, so two replicas never take the same one)."""
    await rules.refresh(conn)
    rows = await conn.fetch(queries.DUE_RUNS, limit)
    for row in rows:
        await _due(conn, row, rules)
    return len(rows)


async def _due(conn: asyncpg.Connection, row: Mapping[str, Any], rules: RuleSet) -> None:
    rule = rules.by_id.get(row["rule_id"])
    if rule is None or not rule.enabled:
        await conn.execute(queries.FINISH_RUN, row["id"], "skipped", "the rule was switched off", "[]")
        return
    event = DomainEvent(
        id=0,
        type=row["event_type"],
        person_id=row["person_id"],
        subject=row["subject"],
        data=_json(row["data"]),
        source_key=row["trigger_key"].split(":", 1)[1],
        occurred_at=row["created_at"],
        chain=tuple(row["chain"] or ()),
    )
    if await _unless_happened(conn, rule, row):
        reason = f"a {(rule.unless_activity or '').replace('_', ' ')} was logged"
        await conn.execute(queries.FINISH_RUN, row["id"], "skipped", reason, "[]")
        return
    persons = await person_facts(conn, [row["person_id"]] if row["person_id"] else [])
    failed = rule.failed_condition(Facts(persons.get(row["person_id"]), event.data))
    if failed:
        await conn.execute(queries.FINISH_RUN, row["id"], "skipped", failed, "[]")
        return
    await _carry_out(conn, row["id"], rule, event)


async def _unless_happened(conn: asyncpg.Connection, rule: Rule, row: Mapping[str, Any]) -> bool:
    """Whether the activity that cancels the run was logged for the person since the run started."""
    if not rule.unless_activity or row["person_id"] is None:
        return False
    return bool(
        await conn.fetchval(queries.ACTIVITY_SINCE, row["person_id"], rule.unless_activity, row["created_at"])
    )


async def dry_run(conn: asyncpg.Connection, rule: Rule, person: uuid.UUID) -> dict[str, Any]:
    """What ``rule`` would do for ``person`` now (its conditions checked on the person as they are), changing
    nothing: the caller's transaction is rolled back by the route."""
    persons = await person_facts(conn, [person])
    facts = persons.get(person)
    if facts is None:
        return {"found": False}
    failed = rule.failed_condition(Facts(facts, {}))
    return {
        "found": True,
        "would_run": failed is None,
        "reason": failed,
        "delay_seconds": rule.delay_seconds,
        "unless_activity": rule.unless_activity,
        "actions": [acts.describe(a) for a in rule.actions] if failed is None else [],
    }


@dataclass
class Evaluator:
    """The rules as the loop uses them: a handler for events and a job for due runs, sharing one RuleSet."""

    rules: RuleSet = field(default_factory=RuleSet)
    runs: int = 0

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[DomainEvent]) -> None:
        self.runs += await evaluate(conn, events, self.rules)

    async def due(self, conn: asyncpg.Connection) -> int:
        """The loop's job for delayed runs."""
        return await run_due(conn, self.rules)
