"""``python -m benchmarks`` (``make bench``): measure, then put a dated section on top of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from benchmarks import harness
from benchmarks.baseline import serve_baseline

REPO = Path(__file__).resolve().parent.parent


def measure_baseline(threads: int, connections: int, duration_s: int) -> harness.BenchResult:
    """wrk against the bare aiohttp GIF handler, served by a subprocess on a free loopback port.

    The figures are also kept for the modules (:func:`benchmarks.harness.baseline_result`).
    """
    with serve_baseline() as url:
        result = harness.run_wrk(url, threads=threads, connections=connections, duration_s=duration_s)
    harness.set_baseline_result(result)
    command = f"wrk -t{threads} -c{connections} -d{duration_s}s --latency"
    return harness.BenchResult(
        title="baseline: bare aiohttp GIF handler",
        rows=harness.wrk_rows(result),
        notes=(
            f"`{command}` against `GET /p.gif` of one Python process (aiohttp {version('aiohttp')}, default "
            "asyncio loop, no access log) answering a 42-byte GIF and nothing else; wrk runs on the same "
            "machine, so both share its cores. This is the floor the collector's pixel is compared with."
        ),
    )


def measure_all(
    args: argparse.Namespace, bootstrap: str, dsn: str
) -> tuple[harness.BenchResult | harness.Outcome, list[harness.Outcome]]:
    """The baseline, then every module in turn; a failure is recorded and the rest still run."""
    print(f"bench: Kafka {bootstrap}; baseline for {args.duration} s", flush=True)
    baseline: harness.BenchResult | harness.Outcome
    try:
        baseline = measure_baseline(args.threads, args.connections, args.duration)
    except (harness.WrkError, RuntimeError) as exc:
        harness.set_baseline_result(None)
        baseline = harness.Outcome("baseline", "error", error=str(exc))
    outcomes = []
    for name in args.only or harness.MODULES:
        print(f"bench: {name}", flush=True)
        outcome = harness.run_module(name, bootstrap, dsn)
        print(f"bench: {name}: {outcome.status}{': ' + outcome.error if outcome.error else ''}", flush=True)
        outcomes.append(outcome)
    return baseline, outcomes


def _module_list(text: str) -> tuple[str, ...]:
    """``--only``'s value: known module names, in the order given (a typo is refused, not silently skipped)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in harness.MODULES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown module(s) {unknown}; known: {', '.join(harness.MODULES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    """Options; the defaults are what `make bench` runs."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads for the baseline (default 1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds for the baseline (default 10)")
    parser.add_argument(
        "--run-dir", type=Path, default=REPO / ".run", help="local stack state (default .run)"
    )
    parser.add_argument(
        "--only",
        type=_module_list,
        default=(),
        help="comma-separated modules to run instead of all (e.g. automation_bench,webhooks_bench)",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO / "docs" / "benchmarks.md", help="report to prepend to"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the baseline and every benchmark module present; write the report; 1 if anything failed."""
    args = build_parser().parse_args(argv)
    if not 1 <= args.duration <= 120:
        print("bench: --duration must be between 1 and 120 seconds", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    machine = harness.machine_info(REPO)
    try:
        harness.ensure_wrk()
    except harness.WrkError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    try:
        with harness.local_stack(args.run_dir) as (bootstrap, dsn):
            baseline, outcomes = measure_all(args, bootstrap, dsn)
    except RuntimeError as exc:  # the local stack could not start (or stop); nothing worth writing down
        print(f"bench: local Kafka/PostgreSQL: {exc}", file=sys.stderr)
        return 1
    section = harness.render_section(started, machine, baseline, outcomes)
    harness.write_report(args.output, section)
    print(section)
    print(f"bench: written to {args.output}")
    failed = isinstance(baseline, harness.Outcome) or any(o.status == "error" for o in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
