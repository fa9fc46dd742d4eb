"""``python -m drills --only kafka-outage --duration 5``: one short drill on a stack of its own, end to end.

The drill starts its own Kafka, PostgreSQL and services on free ports under the test's directory (never the
developer's stack nor the session's), stops the broker for five seconds under a light load, and writes its
report. The figures must show the collector's guarantees (nothing answered is lost on the way to Kafka, nothing
refused while the spool has room), and the stack must be stopped afterwards. About a minute on a quiet machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from drills.stack import DrillStack, Ports

from leadline_localstack import postgres as local_pg
from leadline_localstack import procs

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]


def _figure(report: str, metric: str) -> str:
    match = re.search(rf"^\| {re.escape(metric)} \| ([^|]+) \|", report, re.MULTILINE)
    assert match is not None, f"no row {metric!r} in:\n{report}"
    return match[1].strip()


@pytest.mark.timeout(300)
def test_a_short_kafka_outage_drill_runs_on_its_own_stack_and_reports_no_loss(tmp_path: Path) -> None:
    run_dir, output = tmp_path / "drill", tmp_path / "reliability.md"
    ports = {
        name: procs.free_port()
        for name in ("kafka", "controller", "postgres", "collector", "crm", "enricher")
    }
    argv = ["--only", "kafka-outage", "--duration", "5", "--lead", "2", "--tail", "3", "--rate", "200"]
    argv += ["--settle", "20", "--run-dir", str(run_dir), "--output", str(output)]
    argv += [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    drill = subprocess.Popen(
        [sys.executable, "-m", "drills", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = drill.communicate(timeout=240)
        assert drill.returncode == 0, out[-4000:]
        report = output.read_text(encoding="utf-8")
        assert "### 1. Kafka down" in report
        assert int(_figure(report, "pixels answered (2xx)")) > 500
        assert int(_figure(report, "forms acknowledged")) > 10
        assert _figure(report, "pixels refused or failed") == "0"
        assert _figure(report, "pixels lost (answered, never arrived)") == "0"
        assert _figure(report, "forms lost (acknowledged, never arrived)") == "0"
        assert _figure(report, "answered events all in Kafka after") != "not reached"
        for name, port in ports.items():
            assert procs.port_bindable(port), f"the drill left something on its {name} port {port}"
    finally:
        if drill.poll() is None:  # SIGTERM: the drill stops its stack on the way out
            drill.terminate()
            drill.wait(timeout=120)
        DrillStack(run_dir, Ports(**ports)).stop()
        home = local_pg.data_dir(run_dir).parent
        if home.name.startswith("leadline-pg-"):  # the server's home in /tmp (pytest's tmp dir is 0700)
            shutil.rmtree(home, ignore_errors=True)
