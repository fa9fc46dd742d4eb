"""The benchmark harness reads wrk correctly, reports every module's fate, and never loses older figures.

Unit tests only: no network, no wrk run, no broker. A wrong parse here would silently put wrong numbers in
docs/benchmarks.md, which is what people read to decide whether the collector is fast enough.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import harness

# Captured from wrk 4.1 (Debian) against benchmarks.baseline on this kind of machine.
WRK_MICROSECONDS = """\
Running 1s test @ http://127.0.0.1:54235/p.gif
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   310.21us  103.99us   2.96ms   96.62%
    Req/Sec    26.08k     1.26k   27.55k    81.82%
  Latency Distribution
     50%  296.00us
     75%  320.00us
     90%  349.00us
     99%  529.00us
  28508 requests in 1.10s, 5.85MB read
Requests/sec:  25911.35
Transfer/sec:      5.31MB
"""

WRK_MIXED_UNITS_WITH_ERRORS = """\
Running 10s test @ http://127.0.0.1:8080/p.gif
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.40ms   80.11ms   1.90s    98.10%
    Req/Sec     4.21k   512.00     5.00k    70.00%
  Latency Distribution
     50%    2.10ms
     75%    3.00ms
     90%   10.50ms
     99%    1.20s
  41234 requests in 10.01s, 6.10MB read
  Socket errors: connect 0, read 3, write 1, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:   4119.28
Transfer/sec:    624.12KB
"""

MACHINE = harness.Machine(
    cpu="AMD EPYC 7B13",
    cores=2,
    memory_gib=23.5,
    kernel="Linux 6.1.0",
    python="3.11.7",
    commit="abc1234 (dirty)",
    load="0.50 0.40 0.30",
)
WHEN = dt.datetime(2026, 11, 24, 21, 5, tzinfo=dt.UTC)


def _result(title: str, value: float = 1234.0) -> harness.BenchResult:
    return harness.BenchResult(
        title=title,
        rows=[harness.Row(metric="throughput", value=value, unit="req/s", target=">= 1000", baseline=None)],
        notes="measured on loopback",
    )


def test_parse_wrk_reads_throughput_and_microsecond_percentiles_as_milliseconds() -> None:
    """req/s and p50/p99 come out in the units the report states (ms), whatever unit wrk chose."""
    result = harness.parse_wrk(WRK_MICROSECONDS)
    assert result.requests_per_sec == pytest.approx(25911.35)
    assert result.requests == 28508
    assert result.duration_s == pytest.approx(1.10)
    assert result.p50_ms == pytest.approx(0.296)
    assert result.p90_ms == pytest.approx(0.349)
    assert result.p99_ms == pytest.approx(0.529)
    assert result.socket_errors == 0
    assert result.non_2xx == 0


def test_parse_wrk_converts_seconds_and_counts_every_error() -> None:
    """A 1.20 s tail is 1200 ms, and socket errors plus non-2xx answers are all counted, not hidden."""
    result = harness.parse_wrk(WRK_MIXED_UNITS_WITH_ERRORS)
    assert result.p50_ms == pytest.approx(2.10)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.socket_errors == 11
    assert result.non_2xx == 12
    rows = {r["metric"]: r for r in harness.wrk_rows(result, baseline_rps=8238.56)}
    assert rows["errors (socket + non-2xx)"]["value"] == 23
    assert rows["throughput"]["baseline"] == "50% of baseline"


def test_parse_wrk_without_latency_distribution_is_an_error() -> None:
    """Output from a run without --latency is rejected instead of reporting made-up percentiles."""
    cut = "\n".join(line for line in WRK_MICROSECONDS.splitlines() if "%  " not in line)
    with pytest.raises(harness.WrkError, match="latency distribution"):
        harness.parse_wrk(cut)


def test_parse_wrk_on_garbage_names_the_output() -> None:
    """When wrk fails (e.g. connection refused everywhere) the error shows what it printed."""
    with pytest.raises(harness.WrkError, match="unable to connect"):
        harness.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_run_wrk_refuses_non_loopback_addresses() -> None:
    """Benchmarks never load a remote host, whatever URL a module passes."""
    with pytest.raises(harness.WrkError, match="non-loopback"):
        harness.run_wrk("http://192.0.2.10:8080/p.gif", duration_s=1)


def test_wrk_command_is_bounded_and_asks_for_latency() -> None:
    """The invocation fixes threads, connections, duration and a per-request timeout."""
    cmd = harness.wrk_command(
        "/usr/bin/wrk", "http://127.0.0.1:1/x", threads=1, connections=64, duration_s=10
    )
    assert cmd[:4] == ["/usr/bin/wrk", "-t1", "-c64", "-d10s"]
    assert "--latency" in cmd
    assert any(part.startswith("--timeout=") for part in cmd)


def test_machine_facts_are_read_from_proc_files() -> None:
    """The CPU model and memory in a section come from /proc, not from guesses."""
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
    assert harness._cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert harness._memory_gib("MemTotal:       24641536 kB\nMemFree: 1 kB\n") == pytest.approx(23.5)


def test_section_shows_date_machine_baseline_and_every_module_fate() -> None:
    """One run's section names when and where it ran, and what became of each module."""
    outcomes = [
        harness.Outcome("collector_bench", "ok", result=_result("collector: pixel to Kafka", 15234.0)),
        harness.Outcome("enricher_bench", "not present"),
        harness.Outcome("crm_bench", "error", error="RuntimeError: PostgreSQL | down"),
    ]
    text = harness.render_section(WHEN, MACHINE, _result("baseline: bare aiohttp", 39000.0), outcomes)
    assert text.startswith("## 2026-11-24 21:05 UTC\n")
    assert "AMD EPYC 7B13, 2 cores, 23.5 GiB memory, Linux 6.1.0" in text
    assert "Python 3.11.7; commit abc1234 (dirty)" in text
    assert "| throughput | 39000 | req/s | >= 1000 | - |" in text
    assert "### collector: pixel to Kafka" in text
    assert "| throughput | 15234 | req/s |" in text
    assert "### enricher_bench\n\nNot present" in text
    assert "Failed: `RuntimeError: PostgreSQL \\| down`" in text
    assert text.index("baseline: bare aiohttp") < text.index("collector: pixel") < text.index("crm_bench")


def test_failed_baseline_is_reported_not_dropped() -> None:
    """If the baseline cannot be measured the section says so and still lists the modules."""
    failed = harness.Outcome("baseline", "error", error="wrk exited with 1")
    text = harness.render_section(WHEN, MACHINE, failed, [harness.Outcome("crm_bench", "not present")])
    assert "### baseline\n\nFailed: `wrk exited with 1`" in text
    assert "### crm_bench" in text


def test_table_keeps_cells_from_breaking_the_markdown() -> None:
    """A pipe or newline in a module's text cannot add columns or end the table."""
    row = harness.Row(metric="a|b", value=0.00123, unit="s\nx", target=None, baseline="")
    lines = harness.table([row]).splitlines()
    assert lines[2] == "| a\\|b | 0.00123 | s x | - | - |"
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (39123.456, "39123"),
        (250.0, "250"),
        (12.345, "12.3"),
        (2.456, "2.46"),
        (0.5, "0.50"),
        (0.0012345, "0.00123"),
        (0.0, "0"),
    ],
)
def test_format_value_keeps_meaningful_digits(value: float, shown: str) -> None:
    """Figures are rounded for reading but never to zero when small."""
    assert harness.format_value(value) == shown


def test_report_puts_newest_run_on_top_and_keeps_older_runs(tmp_path: Path) -> None:
    """Running make bench twice keeps the first run's section, below the new one, under one title."""
    report = tmp_path / "docs" / "benchmarks.md"
    first = harness.render_section(WHEN, MACHINE, _result("baseline", 1.0), [])
    later = WHEN + dt.timedelta(hours=1)
    second = harness.render_section(later, MACHINE, _result("baseline", 2.0), [])
    harness.write_report(report, first)
    harness.write_report(report, second)
    text = report.read_text(encoding="utf-8")
    assert text.count(harness.REPORT_TITLE + "\n") == 1
    assert text.index("## 2026-11-24 22:05 UTC") < text.index("## 2026-11-24 21:05 UTC")
    assert first.strip() in text
    assert not list(report.parent.glob("*.tmp"))


def test_report_keeps_hand_written_older_sections_verbatim() -> None:
    """Sections that were already in the file (even hand-edited) are carried over unchanged."""
    existing = "# Benchmarks\n\nold intro\n\n## 2025-01-01 00:00 UTC\n\nhand note | kept\n"
    text = harness.prepend_section(existing, "## 2026-11-24 21:05 UTC\n\nnew\n")
    assert text.startswith(harness.REPORT_TITLE + "\n")
    assert "old intro" not in text
    assert text.rstrip().endswith("## 2025-01-01 00:00 UTC\n\nhand note | kept")


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway package of benchmark modules, importable for this test only."""
    name = f"fakebench_{uuid.uuid4().hex[:8]}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    modules = {
        "good": """
            async def run(kafka_bootstrap, pg_dsn):
                return {"title": "good " + kafka_bootstrap, "notes": "",
                        "rows": [{"metric": "m", "value": 1.5, "unit": "s", "target": None, "baseline": None}]}
        """,
        "boom": """
            async def run(kafka_bootstrap, pg_dsn):
                raise RuntimeError("broker said no")
        """,
        "malformed": """
            async def run(kafka_bootstrap, pg_dsn):
                return {"title": "x", "notes": "", "rows": [{"metric": "m", "value": "fast", "unit": "s"}]}
        """,
        "broken_import": "import leadline_module_that_does_not_exist\n",
    }
    for module, source in modules.items():
        (pkg / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def test_modules_run_or_report_why_not(fake_package: str) -> None:
    """An absent module is 'not present', a raising or malformed one is an error, a good one runs."""
    outcome = {
        name: harness.run_module(name, "127.0.0.1:9092", "postgresql://x", package=fake_package)
        for name in ("good", "absent", "boom", "malformed", "broken_import")
    }
    assert outcome["good"].status == "ok"
    assert outcome["good"].result is not None
    assert outcome["good"].result["title"] == "good 127.0.0.1:9092"
    assert outcome["absent"].status == "not present"
    assert outcome["boom"].status == "error"
    assert outcome["boom"].error == "RuntimeError: broker said no"
    assert outcome["malformed"].status == "error"
    assert "must be a number" in (outcome["malformed"].error or "")
    assert outcome["broken_import"].status == "error"
    assert "leadline_module_that_does_not_exist" in (outcome["broken_import"].error or "")


class _FakeStack:
    """Stands in for leadline_localstack: records what the harness starts and stops."""

    def __init__(self, kafka_running: bool, pg_running: bool) -> None:
        self.kafka_up = kafka_running
        self.pg_up = pg_running
        self.calls: list[str] = []

    def kafka_running(self, run_dir: Path) -> bool:
        return self.kafka_up

    def postgres_running(self, run_dir: Path) -> bool:
        return self.pg_up

    def start_kafka(self, run_dir: Path) -> str:
        self.calls.append("start_kafka")
        return "127.0.0.1:9092"

    def start_postgres(self, run_dir: Path) -> str:
        self.calls.append("start_postgres")
        return "postgresql://postgres@127.0.0.1:5432/leadline"

    def stop_kafka(self, run_dir: Path) -> None:
        self.calls.append("stop_kafka")

    def stop_postgres(self, run_dir: Path) -> None:
        self.calls.append("stop_postgres")


def _patch_stack(monkeypatch: pytest.MonkeyPatch, fake: _FakeStack) -> None:
    from leadline_localstack import kafka as local_kafka
    from leadline_localstack import postgres as local_pg

    for name in ("kafka_running", "start_kafka", "stop_kafka"):
        monkeypatch.setattr(local_kafka, name, getattr(fake, name))
    for name in ("postgres_running", "start_postgres", "stop_postgres"):
        monkeypatch.setattr(local_pg, name, getattr(fake, name))


def test_stack_started_by_the_bench_is_stopped_afterwards(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """make bench on a machine with nothing running leaves nothing running behind."""
    fake = _FakeStack(kafka_running=False, pg_running=False)
    _patch_stack(monkeypatch, fake)
    with harness.local_stack(tmp_path) as (bootstrap, dsn):
        assert bootstrap == "127.0.0.1:9092"
        assert dsn.startswith("postgresql://")
    assert fake.calls == ["start_kafka", "start_postgres", "stop_postgres", "stop_kafka"]


def test_stack_that_was_already_running_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stack other people use (make up, the test fixtures) is reused and never stopped, even on failure."""
    fake = _FakeStack(kafka_running=True, pg_running=True)
    _patch_stack(monkeypatch, fake)
    with pytest.raises(RuntimeError, match="bench failed"), harness.local_stack(tmp_path):
        raise RuntimeError("bench failed")
    assert "stop_kafka" not in fake.calls
    assert "stop_postgres" not in fake.calls


def test_missing_wrk_without_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root the harness cannot apt-get wrk, and says how to install it instead of failing obscurely."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(harness.WrkError, match="apt-get install -y wrk"):
        harness.ensure_wrk()


def test_modules_can_read_this_runs_baseline() -> None:
    """A module compares itself with the baseline measured in the same run, or learns there is none."""
    measured = harness.parse_wrk(WRK_MICROSECONDS)
    harness.set_baseline_result(measured)
    try:
        assert harness.baseline_result() == measured
    finally:
        harness.set_baseline_result(None)
    assert harness.baseline_result() is None
