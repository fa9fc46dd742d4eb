"""The figures of one drill (answered, arrived, lost, duplicated, time to recover) and docs/reliability.md.

Counting is kept apart from the load and the readers so that it can be unit-tested on made-up sets: what was
answered comes from the load, what arrived from the raw topic and crm-core's tables, the times from the drill.
An event is *lost* when it was answered (a pixel's 2xx, a form's acknowledgement) and never reached
capture.raw.v1; *duplicated* when it arrived more than once. Events that arrived without an answer (the client
gave up while the collector had taken the event) are counted apart: they are not a breach of any guarantee.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import Machine, format_value

STILL_REFUSING_S = 1.0
REPORT_TITLE = "# Reliability: failure drills"
REPORT_INTRO = (
    "Written by `make drill` (`python -m drills`); the newest run is on top. Each drill runs on an isolated\n"
    "local stack (its own Kafka, PostgreSQL and services under `.run/drill/`) under a fixed load of pixels and\n"
    "form posts with unique ids, then counts what was answered against what reached `capture.raw.v1` and\n"
    "crm-core's PostgreSQL. Times are seconds from the end of the fault (the broker, server or process being\n"
    "started again) and include the start-up itself. Figures from a shared machine vary between runs."
)


@dataclass(frozen=True)
class Figure:
    """One line of a drill's table."""

    metric: str
    value: float | None  # None: not measured (shown as "not reached")
    unit: str
    expect: str = ""


@dataclass
class Observed:
    """Everything one drill saw; times are ``time.monotonic()`` values, ids are the load's unique ids."""

    answered_pixels: dict[str, float] = field(default_factory=dict)  # id -> when its 2xx came back
    answered_forms: dict[str, float] = field(default_factory=dict)  # email -> when it was acknowledged
    refused_pixels: int = 0
    refused_forms: int = 0
    refusal_times: list[float] = field(default_factory=list)
    raw: Counter[str] = field(default_factory=Counter)  # id -> times seen on the raw topic
    raw_first_seen: dict[str, float] = field(default_factory=dict)
    pg: Counter[str] = field(default_factory=Counter)  # id -> crm.touchpoints rows holding it
    fault_start: float = 0.0
    fault_end: float = 0.0
    caught_up_at: float | None = None  # the backlog the fault left processed by the enricher and crm-core
    load_end: float = 0.0
    extra: list[Figure] = field(default_factory=list)  # a drill's own figures (its remedy, say)
    notes: list[str] = field(default_factory=list)  # what the drill found beyond the table


def _arrived(ids: Mapping[str, float], seen: Counter[str]) -> tuple[int, int, int]:
    """(arrived, lost, duplicated) of the answered ``ids`` in ``seen``."""
    arrived = sum(1 for i in ids if seen[i] > 0)
    duplicated = sum(1 for i in ids if seen[i] > 1)
    return arrived, len(ids) - arrived, duplicated


def unanswered_arrivals(obs: Observed) -> int:
    """Events that reached the raw topic although the client never got its answer."""
    return sum(1 for i in obs.raw if i not in obs.answered_pixels and i not in obs.answered_forms)


def answers_again_after(obs: Observed) -> float | None:
    """Seconds from the fault's end to the last refused request (0 when nothing was refused after it).

    None when requests were still refused in the load's last second: the service did not recover under load.
    """
    late = [t for t in obs.refusal_times if t >= obs.fault_start]
    last = max(late, default=obs.fault_end)
    if obs.load_end and last > obs.fault_end and last >= obs.load_end - STILL_REFUSING_S:
        return None
    return max(0.0, last - obs.fault_end)


def loss_window(obs: Observed) -> tuple[int, float] | None:
    """(pixels lost, seconds between the first of them being answered and the fault's end), if every lost
    pixel was answered before the fault ended (a kill's commit window); None otherwise or when none was lost."""
    lost = [t for i, t in obs.answered_pixels.items() if i not in obs.raw]
    if not lost or max(lost) > obs.fault_end:
        return None
    return len(lost), obs.fault_end - min(lost)


def in_kafka_after(obs: Observed) -> float | None:
    """Seconds from the fault's end until every event answered before it had reached the raw topic.

    None when some of them never arrived (they are counted as lost).
    """
    before = [
        i for ids in (obs.answered_pixels, obs.answered_forms) for i, t in ids.items() if t <= obs.fault_end
    ]
    if any(i not in obs.raw_first_seen for i in before):
        return None
    return max(0.0, max((obs.raw_first_seen[i] for i in before), default=obs.fault_end) - obs.fault_end)


def figures(obs: Observed, *, pixel_loss: str = "0") -> list[Figure]:
    """The table of one drill."""
    p_arrived, p_lost, p_dup = _arrived(obs.answered_pixels, obs.raw)
    f_arrived, f_lost, f_dup = _arrived(obs.answered_forms, obs.raw)
    pg_forms, pg_missing, pg_dup = _arrived(obs.answered_forms, obs.pg)
    pg_pixels, _, pg_pixel_dup = _arrived(obs.answered_pixels, obs.pg)
    caught_up = None if obs.caught_up_at is None else max(0.0, obs.caught_up_at - obs.fault_end)
    return [
        Figure("pixels answered (2xx)", len(obs.answered_pixels), "count"),
        Figure("pixels refused or failed", obs.refused_pixels, "count"),
        Figure("pixels answered that reached capture.raw.v1", p_arrived, "count"),
        Figure("pixels lost (answered, never arrived)", p_lost, "count", pixel_loss),
        Figure("pixels duplicated on capture.raw.v1", p_dup, "count"),
        Figure("pixels in crm-core (touchpoints)", pg_pixels, "count"),
        Figure("pixels duplicated in crm-core", pg_pixel_dup, "count", "0"),
        Figure("forms acknowledged", len(obs.answered_forms), "count"),
        Figure("forms refused or failed", obs.refused_forms, "count"),
        Figure("forms acknowledged that reached capture.raw.v1", f_arrived, "count"),
        Figure("forms lost (acknowledged, never arrived)", f_lost, "count", "0"),
        Figure("forms duplicated on capture.raw.v1", f_dup, "count"),
        Figure("forms in crm-core (touchpoints)", pg_forms, "count"),
        Figure("forms missing in crm-core", pg_missing, "count", "0"),
        Figure("forms duplicated in crm-core", pg_dup, "count", "0"),
        Figure("arrived without an answer", unanswered_arrivals(obs), "count"),
        Figure("answers again after", answers_again_after(obs), "s"),
        Figure("answered events all in Kafka after", in_kafka_after(obs), "s"),
        Figure("backlog drained into crm-core after", caught_up, "s"),
        *obs.extra,
    ]


# ------------------------------------------------------------------------------------------------ markdown


@dataclass(frozen=True)
class DrillOutcome:
    """One drill's result as written down: its heading, its text, its table (or the error that stopped it)."""

    title: str
    text: str
    rows: Sequence[Figure] = ()
    notes: str = ""
    error: str | None = None


def _cell(text: str) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[Figure]) -> str:
    """Figures as a Markdown table."""
    lines = ["| metric | value | unit | expected |", "|---|---:|---|---|"]
    for row in rows:
        if row.value is None:
            value = "not reached"
        elif float(row.value).is_integer() and row.unit == "count":
            value = f"{int(row.value)}"
        else:
            value = format_value(float(row.value))
        lines.append(f"| {_cell(row.metric)} | {value} | {_cell(row.unit)} | {_cell(row.expect)} |")
    return "\n".join(lines)


def render_section(when: dt.datetime, machine: Machine, setup: str, outcomes: Sequence[DrillOutcome]) -> str:
    """One dated run: the machine and the load, then a heading, a text and a table per drill."""
    parts = [
        f"## {when.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine.cpu}, {machine.cores} cores, {machine.memory_gib:.1f} GiB memory, {machine.kernel}",
        f"- Python {machine.python}; commit {machine.commit}; load average at start {machine.load}",
        f"- {setup}",
        "",
    ]
    for number, outcome in enumerate(outcomes, start=1):
        parts += [f"### {number}. {outcome.title}", "", outcome.text.strip(), ""]
        if outcome.error is not None:
            parts += [f"Failed: `{_cell(outcome.error)}`", ""]
            continue
        parts += [table(outcome.rows), ""]
        if outcome.notes.strip():
            parts += [outcome.notes.strip(), ""]
    return "\n".join(parts).rstrip() + "\n"


def prepend_section(existing: str, section: str) -> str:
    """The report with ``section`` on top of the older sections (kept as they were), under one title."""
    marker = existing.find("\n## ")
    older = existing if existing.startswith("## ") else (existing[marker + 1 :] if marker >= 0 else "")
    body = [REPORT_TITLE, "", REPORT_INTRO, "", section.rstrip(), ""]
    if older.strip():
        body += ["", older.rstrip(), ""]
    return "\n".join(body)


def write_report(path: Path, section: str) -> None:
    """Put ``section`` on top of the report at ``path`` (created if missing), through a rename."""
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(prepend_section(existing, section), encoding="utf-8")
    tmp.replace(path)
