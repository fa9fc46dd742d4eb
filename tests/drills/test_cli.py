"""``python -m drills``: which drills run, in which order, and refusals before any stack is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from drills.stack import DrillStack, Ports

from drills import __main__ as cli
from drills import scenarios
from leadline_localstack import procs


def test_all_drills_run_by_default_in_the_standard_order() -> None:
    assert [d.name for d in scenarios.select(None)] == [
        "kafka-outage",
        "collector-kill",
        "enricher-kill",
        "crm-core-kill",
        "postgres-restart",
        "spool-full",
    ]


def test_only_picks_drills_by_name_comma_separated_or_repeated_and_keeps_the_order() -> None:
    chosen = scenarios.select(["spool-full,kafka-outage", "crm-core-kill"])
    assert [d.name for d in chosen] == ["kafka-outage", "crm-core-kill", "spool-full"]


def test_an_unknown_drill_is_named() -> None:
    with pytest.raises(ValueError, match="unknown drill disk-gone; choose from kafka-outage"):
        scenarios.select(["kafka-outage,disk-gone"])


@pytest.mark.parametrize(
    "argv",
    [["--only", "nope"], ["--duration", "0"], ["--rate", "0"], ["--tail", "0"]],
)
def test_bad_options_exit_2_before_any_stack_starts(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "drill"
    assert cli.main([*argv, "--run-dir", str(run_dir)]) == 2
    assert capsys.readouterr().err.startswith("drill: ")
    assert not run_dir.exists()


def test_ports_and_settings_come_from_the_command_line() -> None:
    args = cli.build_parser().parse_args(["--kafka-port", "29092", "--crm-port", "28081", "--duration", "5"])
    assert cli.ports(args) == Ports(
        kafka=29092, controller=19093, postgres=15432, collector=18080, crm=28081, enricher=18082
    )
    assert [d.name for d in cli.check(args)] == list(scenarios.NAMES)
    assert cli.build_parser().parse_args([]).run_dir.parts[-2:] == (".run", "drill")


def test_the_drill_stack_never_resets_make_ups_run_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resetting stops and deletes; on `make up`'s run dir it must refuse before doing either."""
    stack = DrillStack(procs.default_run_dir(), Ports())
    stopped: list[bool] = []
    monkeypatch.setattr(stack, "stop", lambda: stopped.append(True))
    with pytest.raises(RuntimeError, match="run dir"):
        stack.reset()
    assert stopped == []


def test_the_drill_stack_never_empties_a_directory_it_did_not_make(tmp_path: Path) -> None:
    keep = tmp_path / "notes.txt"
    keep.write_text("mine", encoding="utf-8")
    with pytest.raises(RuntimeError, match="not made by a drill"):
        DrillStack(tmp_path, Ports()).reset()
    assert keep.read_text(encoding="utf-8") == "mine"
