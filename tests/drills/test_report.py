"""The drills' counting and report: lost, duplicated, arrived without an answer, the times, the Markdown.

Pure functions on made-up observations; no broker, no database.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from benchmarks.harness import Machine
from drills.report import DrillOutcome, Figure, Observed

from drills import report


def _by_metric(obs: Observed) -> dict[str, float | None]:
    return {f.metric: f.value for f in report.figures(obs)}


def _observed() -> Observed:
    """Pixels p1..p4 and forms f1, f2 answered; the fault from t=10 to t=20."""
    return Observed(
        answered_pixels={"p1": 5.0, "p2": 12.0, "p3": 19.0, "p4": 25.0},
        answered_forms={"f1": 8.0, "f2": 22.0},
        refused_pixels=3,
        refused_forms=1,
        refusal_times=[11.0, 21.5, 23.0],
        raw=Counter({"p1": 1, "p2": 2, "p4": 1, "f1": 1, "f2": 3, "p9": 1}),
        raw_first_seen={"p1": 5.1, "p2": 26.0, "p4": 25.1, "f1": 8.1, "f2": 22.1, "p9": 30.0},
        pg=Counter({"p1": 1, "p2": 1, "f1": 1, "f2": 2}),
        fault_start=10.0,
        fault_end=20.0,
        caught_up_at=27.5,
    )


def test_lost_and_duplicated_are_counted_among_what_was_answered() -> None:
    """p3 was answered and never arrived; p2 and f2 arrived more than once; p9 was never answered."""
    got = _by_metric(_observed())
    assert got["pixels answered (2xx)"] == 4
    assert got["pixels answered that reached capture.raw.v1"] == 3
    assert got["pixels lost (answered, never arrived)"] == 1
    assert got["pixels duplicated on capture.raw.v1"] == 1
    assert got["forms lost (acknowledged, never arrived)"] == 0
    assert got["forms duplicated on capture.raw.v1"] == 1
    assert got["arrived without an answer"] == 1
    assert got["pixels refused or failed"] == 3
    assert got["forms refused or failed"] == 1


def test_what_reached_crm_core_is_counted_per_id() -> None:
    """Two of four pixels and both forms are in crm-core; f2 twice (a duplicate the dedup should have caught)."""
    got = _by_metric(_observed())
    assert got["pixels in crm-core (touchpoints)"] == 2
    assert got["forms in crm-core (touchpoints)"] == 2
    assert got["forms missing in crm-core"] == 0
    assert got["forms duplicated in crm-core"] == 1
    assert got["pixels duplicated in crm-core"] == 0


def test_times_are_measured_from_the_end_of_the_fault() -> None:
    obs = _observed()
    assert report.answers_again_after(obs) == 3.0  # the last refusal at 23.0
    assert report.in_kafka_after(obs) is None  # p3 (answered at 19, before the end) never arrived
    obs.raw["p3"] = 1
    obs.raw_first_seen["p3"] = 24.0
    assert report.in_kafka_after(obs) == 6.0  # p2, answered at 12, arrived at 26
    assert _by_metric(obs)["backlog drained into crm-core after"] == 7.5


def test_nothing_refused_after_the_fault_means_answering_at_once() -> None:
    obs = Observed(refusal_times=[1.0, 12.0], fault_start=10.0, fault_end=20.0)
    assert report.answers_again_after(obs) == 0.0
    assert report.in_kafka_after(obs) == 0.0  # nothing answered before the end: nothing to wait for


def test_the_expected_loss_depends_on_the_drill() -> None:
    strict = {f.metric: f.expect for f in report.figures(Observed())}
    lenient = {f.metric: f.expect for f in report.figures(Observed(), pixel_loss="only in the commit window")}
    assert strict["pixels lost (answered, never arrived)"] == "0"
    assert lenient["pixels lost (answered, never arrived)"] == "only in the commit window"
    assert (
        strict["forms lost (acknowledged, never arrived)"]
        == lenient["forms lost (acknowledged, never arrived)"]
        == "0"
    )


MACHINE = Machine(
    cpu="Test CPU", cores=2, memory_gib=4.0, kernel="Linux 6", python="3.11", commit="abc", load="1 1 1"
)


def test_a_section_has_the_machine_a_table_per_drill_and_the_errors() -> None:
    outcomes = [
        DrillOutcome(
            "Kafka down", "Expect no loss.", [Figure("forms lost", 0, "count", "0"), Figure("x", None, "s")]
        ),
        DrillOutcome("a | b", "Text.", error="RuntimeError: boom"),
    ]
    when = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
    section = report.render_section(when, MACHINE, "load: 1000 pixels/s", outcomes)
    assert section.startswith("## 2026-11-30 15:00 UTC")
    assert "Test CPU, 2 cores" in section
    assert "### 1. Kafka down" in section
    assert "| forms lost | 0 | count | 0 |" in section
    assert "| x | not reached | s | - |" in section
    assert "### 2. a | b" in section
    assert "Failed: `RuntimeError: boom`" in section


def test_the_newest_section_goes_on_top_and_older_ones_stay(tmp_path: Path) -> None:
    path = tmp_path / "reliability.md"
    report.write_report(path, "## 2026-11-29 10:00 UTC\n\nold figures\n")
    report.write_report(path, "## 2026-11-30 10:00 UTC\n\nnew figures\n")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(report.REPORT_TITLE)
    assert text.count(report.REPORT_TITLE) == 1
    assert text.index("new figures") < text.index("old figures")


def test_a_service_still_refusing_when_the_load_ends_has_not_recovered() -> None:
    obs = Observed(refusal_times=[15.0, 29.5], fault_start=10.0, fault_end=20.0, load_end=30.0)
    assert report.answers_again_after(obs) is None
    obs.refusal_times = [15.0, 24.0]
    assert report.answers_again_after(obs) == 4.0


def test_a_drills_own_figures_follow_the_standard_ones() -> None:
    obs = Observed(extra=[Figure("spool replayed after the remedy", 3.5, "s")])
    assert report.figures(obs)[-1] == Figure("spool replayed after the remedy", 3.5, "s")


def test_the_loss_window_is_measured_only_when_every_lost_pixel_came_before_the_kill() -> None:
    obs = Observed(
        answered_pixels={"p1": 9.95, "p2": 9.99, "p3": 9.0}, raw=Counter({"p3": 1}), fault_end=10.0
    )
    window = report.loss_window(obs)
    assert window is not None
    assert window[0] == 2
    assert abs(window[1] - 0.05) < 1e-9
    obs.answered_pixels["p4"] = 12.0  # lost after the fault ended: not a commit window
    assert report.loss_window(obs) is None
    assert report.loss_window(Observed(answered_pixels={"p1": 1.0}, raw=Counter({"p1": 1}))) is None
