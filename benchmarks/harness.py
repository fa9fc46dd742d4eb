"""The benchmark harness: local stack, wrk, the baseline, the benchmark modules, and docs/benchmarks.md.

The contract a benchmark module fulfils
---------------------------------------
A module ``benchmarks/<name>.py`` (one of :data:`MODULES`) exposes::

    async def run(kafka_bootstrap: str, pg_dsn: str) -> BenchResult

and returns a :class:`BenchResult`, a plain dict::

    {"title": "collector: pixel to capture.raw.v1",
     "rows": [{"metric": "throughput", "value": 15234.0, "unit": "req/s",
               "target": ">= 13000", "baseline": "39000 (bare aiohttp)"}, ...],
     "notes": "wrk -t1 -c64 -d10s; acks=all; ..."}

``target`` and ``baseline`` are free text (or None) shown beside the value. A module uses only loopback
addresses, bounds its own durations, creates its own topic names and schema, and cleans up what it started.
It may reuse :func:`run_wrk` (blocking: call it through ``asyncio.to_thread``), :func:`parse_wrk` and
:func:`wrk_rows`, and compare with this run's bare-aiohttp figures from :func:`baseline_result` (None when
the baseline could not be measured), e.g. ``wrk_rows(mine, baseline_rps=baseline_result().requests_per_sec)``.
The harness runs each module in a fresh event loop with a deadline (:data:`MODULE_TIMEOUT_S`); a module that
does not exist is reported as "not present", one that raises or returns a malformed result is reported with
its error, and the others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import importlib
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

MODULES = (
    "collector_bench",
    "enricher_bench",
    "crm_bench",
    "workspace_bench",
    "sales_bench",
    "marketing_bench",
    "service_bench",
    "webhooks_bench",
    "automation_bench",
)
MODULE_TIMEOUT_S = 600.0
WRK_GRACE_S = 30.0
REPORT_TITLE = "# Benchmarks"
REPORT_INTRO = (
    "Written by `make bench` (`python -m benchmarks`); the newest run is on top. Every run records its machine:\n"
    "absolute figures differ between machines (and on a shared machine, between runs), so compare figures\n"
    "only within one section, against that section's bare-aiohttp baseline."
)


class Row(TypedDict):
    """One measured figure."""

    metric: str
    value: float
    unit: str
    target: str | None
    baseline: str | None


class BenchResult(TypedDict):
    """What a benchmark module's ``run`` returns: a titled table and free-text notes."""

    title: str
    rows: list[Row]
    notes: str


BenchRun = Callable[[str, str], Awaitable[BenchResult]]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one benchmark module."""

    name: str
    status: Literal["ok", "not present", "error"]
    result: BenchResult | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class WrkResult:
    """The figures read from one wrk run (latencies in milliseconds)."""

    requests_per_sec: float
    requests: int
    duration_s: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int


_BASELINE: list[WrkResult] = []


def set_baseline_result(result: WrkResult | None) -> None:
    """Record this run's bare-aiohttp figures for the modules that follow (None: not measured)."""
    _BASELINE[:] = [result] if result is not None else []


def baseline_result() -> WrkResult | None:
    """This run's bare-aiohttp wrk figures, measured before any module runs; None if unavailable."""
    return _BASELINE[0] if _BASELINE else None


# ---------------------------------------------------------------------------------------------------- wrk

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed something this parser does not understand."""


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, the latency percentiles and the error counts from ``wrk --latency`` output."""
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    if rps is None or total is None:
        raise WrkError(f"no 'Requests/sec' or 'requests in' line in wrk output:\n{output.strip()[-1500:]}")
    percentiles = {int(m[1]): float(m[2]) * _TIME_UNITS_MS[m[3]] for m in _PERCENTILE.finditer(output)}
    missing = [p for p in (50, 75, 90, 99) if p not in percentiles]
    if missing:
        raise WrkError(f"wrk output lacks the latency distribution ({missing}); was --latency given?")
    socket_errors = _SOCKET.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests_per_sec=float(rps[1]),
        requests=int(total[1]),
        duration_s=float(total[2]) * _TIME_UNITS_MS[total[3]] / 1000.0,
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
    )


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package when missing and running as root, else a clear error."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise WrkError(
            "wrk is not installed: run `sudo apt-get install -y wrk` (or install wrk 4.x) and retry"
        )
    print("bench: wrk is missing; installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, check=False, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
        subprocess.run(install, env=env, check=False, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise WrkError("apt-get could not install wrk; install wrk 4.x by hand and retry")
    return found


def wrk_command(wrk: str, url: str, *, threads: int, connections: int, duration_s: int) -> list[str]:
    """The wrk invocation: fixed threads, connections and duration, latency distribution on."""
    timeout = "5s"
    return [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={timeout}",
        "--latency",
        url,
    ]


def run_wrk(url: str, *, threads: int = 1, connections: int = 64, duration_s: int = 10) -> WrkResult:
    """Load ``url`` (loopback only) with wrk for ``duration_s`` seconds and parse what it printed."""
    if not url.startswith(("http://127.0.0.1:", "http://[::1]:", "http://localhost:")):
        raise WrkError(f"refusing to load a non-loopback address: {url}")
    cmd = wrk_command(ensure_wrk(), url, threads=threads, connections=connections, duration_s=duration_s)
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=duration_s + WRK_GRACE_S
        )
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk did not finish within {duration_s + WRK_GRACE_S:.0f} s") from None
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)


def wrk_rows(result: WrkResult, *, baseline_rps: float | None = None) -> list[Row]:
    """A wrk run as table rows (what the baseline section shows, and what modules may reuse)."""
    ratio = f"{result.requests_per_sec / baseline_rps:.0%} of baseline" if baseline_rps else None
    return [
        Row(metric="throughput", value=result.requests_per_sec, unit="req/s", target=None, baseline=ratio),
        Row(metric="latency p50", value=result.p50_ms, unit="ms", target=None, baseline=None),
        Row(metric="latency p90", value=result.p90_ms, unit="ms", target=None, baseline=None),
        Row(metric="latency p99", value=result.p99_ms, unit="ms", target=None, baseline=None),
        Row(metric="requests", value=float(result.requests), unit="count", target=None, baseline=None),
        Row(
            metric="errors (socket + non-2xx)",
            value=float(result.socket_errors + result.non_2xx),
            unit="count",
            target="0",
            baseline=None,
        ),
    ]


# ------------------------------------------------------------------------------------------------ machine


@dataclasses.dataclass(frozen=True)
class Machine:
    """Where a run happened, so figures from different sections are never compared blindly."""

    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    python: str
    commit: str
    load: str


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib(meminfo: str) -> float:
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    return int(match[1]) / (1024 * 1024) if match else 0.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def git_commit(repo: Path) -> str:
    """The short commit hash, with "(dirty)" when the work tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{head} (dirty)" if status else head


def machine_info(repo: Path) -> Machine:
    """CPU model, cores, memory, kernel, Python, commit and load average of this machine, now."""
    return Machine(
        cpu=_cpu_model(_read("/proc/cpuinfo")),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_gib(_read("/proc/meminfo")),
        kernel=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        commit=git_commit(repo),
        load=" ".join(_read("/proc/loadavg").split()[:3]) or "unknown",
    )


# ----------------------------------------------------------------------------------------------- modules


def _check_result(value: Any) -> BenchResult:
    """Reject a module result that does not follow the contract, naming what is wrong."""
    if not isinstance(value, Mapping):
        raise TypeError(f"run() returned {type(value).__name__}, expected a dict with title, rows, notes")
    for key, kind in (("title", str), ("rows", list), ("notes", str)):
        if not isinstance(value.get(key), kind):
            raise TypeError(f"result[{key!r}] must be a {kind.__name__}, got {value.get(key)!r:.80}")
    for i, row in enumerate(value["rows"]):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a dict, got {row!r:.80}")
        if not isinstance(row.get("metric"), str) or not isinstance(row.get("unit"), str):
            raise TypeError(f"rows[{i}] needs str 'metric' and 'unit': {row!r:.120}")
        if isinstance(row.get("value"), bool) or not isinstance(row.get("value"), int | float):
            raise TypeError(f"rows[{i}]['value'] must be a number: {row!r:.120}")
        for key in ("target", "baseline"):
            if row.get(key) is not None and not isinstance(row.get(key), str):
                raise TypeError(f"rows[{i}][{key!r}] must be a str or None: {row!r:.120}")
    return cast(BenchResult, value)


def run_module(name: str, kafka_bootstrap: str, pg_dsn: str, *, package: str = "benchmarks") -> Outcome:
    """Import ``<package>.<name>`` and run it in its own event loop; never raises for the module's faults."""
    qualified = f"{package}.{name}"
    try:
        module = importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name == qualified:
            return Outcome(name, "not present")
        return Outcome(name, "error", error=f"import failed: {type(exc).__name__}: {exc}")
    except Exception as exc:
        return Outcome(name, "error", error=f"import failed: {type(exc).__name__}: {exc}")
    run = getattr(module, "run", None)
    if not callable(run):
        return Outcome(
            name, "error", error="the module has no run(kafka_bootstrap, pg_dsn) coroutine function"
        )
    try:
        value = asyncio.run(_bounded(cast(BenchRun, run), kafka_bootstrap, pg_dsn))
        return Outcome(name, "ok", result=_check_result(value))
    except Exception as exc:
        return Outcome(name, "error", error=f"{type(exc).__name__}: {exc}")


async def _bounded(run: BenchRun, kafka_bootstrap: str, pg_dsn: str) -> BenchResult:
    try:
        return await asyncio.wait_for(run(kafka_bootstrap, pg_dsn), MODULE_TIMEOUT_S)
    except TimeoutError:
        raise TimeoutError(f"did not finish within {MODULE_TIMEOUT_S:.0f} s") from None


# ------------------------------------------------------------------------------------------------- stack


@contextlib.contextmanager
def local_stack(run_dir: Path) -> Iterator[tuple[str, str]]:
    """Kafka and PostgreSQL of ``run_dir``: the running ones, else started now and stopped afterwards."""
    from leadline_localstack import kafka as local_kafka
    from leadline_localstack import postgres as local_pg

    kafka_was_running = local_kafka.kafka_running(run_dir)
    pg_was_running = local_pg.postgres_running(run_dir)
    bootstrap = local_kafka.start_kafka(run_dir)
    try:
        dsn = local_pg.start_postgres(run_dir)
        try:
            yield bootstrap, dsn
        finally:
            if not pg_was_running:
                print("bench: stopping the PostgreSQL it started", flush=True)
                local_pg.stop_postgres(run_dir)
    finally:
        if not kafka_was_running:
            print("bench: stopping the Kafka broker it started", flush=True)
            local_kafka.stop_kafka(run_dir)


# ---------------------------------------------------------------------------------------------- markdown


def format_value(value: float) -> str:
    """A figure with as many digits as are meaningful for a benchmark table."""
    if value == int(value) and abs(value) >= 100:
        return f"{int(value)}"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.01:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(text: str | None) -> str:
    if text is None or text == "":
        return "-"
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[Row]) -> str:
    """Rows as a Markdown table."""
    lines = ["| metric | value | unit | target | baseline |", "|---|---:|---|---|---|"]
    lines += [
        f"| {_cell(r['metric'])} | {format_value(r['value'])} | {_cell(r['unit'])} | "
        f"{_cell(r.get('target'))} | {_cell(r.get('baseline'))} |"
        for r in rows
    ]
    return "\n".join(lines)


def render_section(
    when: dt.datetime,
    machine: Machine,
    baseline: BenchResult | Outcome,
    outcomes: Sequence[Outcome],
) -> str:
    """One dated run: the machine, the baseline table, then each module's table or status."""
    parts = [
        f"## {when.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine.cpu}, {machine.cores} cores, {machine.memory_gib:.1f} GiB memory, {machine.kernel}",
        f"- Python {machine.python}; commit {machine.commit}; load average at start {machine.load}",
        "",
    ]
    sections: list[Outcome] = [
        baseline if isinstance(baseline, Outcome) else Outcome("baseline", "ok", result=baseline),
        *outcomes,
    ]
    for outcome in sections:
        parts += _render_outcome(outcome)
    return "\n".join(parts).rstrip() + "\n"


def _render_outcome(outcome: Outcome) -> list[str]:
    if outcome.status == "ok" and outcome.result is not None:
        result = outcome.result
        lines = [f"### {_cell(result['title'])}", "", table(result["rows"]), ""]
        if result["notes"].strip():
            lines += [result["notes"].strip(), ""]
        return lines
    if outcome.status == "not present":
        return [f"### {outcome.name}", "", f"Not present (no `benchmarks/{outcome.name}.py` yet).", ""]
    return [f"### {outcome.name}", "", f"Failed: `{_cell(outcome.error)}`", ""]


def prepend_section(existing: str, section: str) -> str:
    """The report with ``section`` on top of the older sections (kept as they were), under one title."""
    older = ""
    marker = existing.find("\n## ")
    if existing.startswith("## "):
        older = existing
    elif marker >= 0:
        older = existing[marker + 1 :]
    body = [REPORT_TITLE, "", REPORT_INTRO, "", section.rstrip(), ""]
    if older.strip():
        body += ["", older.rstrip(), ""]
    return "\n".join(body)


def write_report(path: Path, section: str) -> None:
    """Put ``section`` at the top of the report at ``path`` (created if missing), atomically."""
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(prepend_section(existing, section), encoding="utf-8")
    tmp.replace(path)
