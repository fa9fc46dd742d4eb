"""``python -m drills`` (``make drill``): start an isolated stack, run the failure drills under load, write
docs/reliability.md (a dated section on top), stop the stack.

``--only kafka-outage,collector-kill`` runs some of them; ``--duration`` is how long Kafka stays down (and the
spool full); ``--no-report`` prints the section instead of writing it (short rehearsals, the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import machine_info

from drills import report, scenarios
from drills.load import Rates
from drills.stack import DrillStack, Ports

REPO = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    """Options; the defaults are what ``make drill`` runs."""
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        metavar="DRILL[,DRILL]",
        help=f"run only these drills (default: all, in this order: {', '.join(scenarios.NAMES)})",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds Kafka stays down (default 60)")
    parser.add_argument(
        "--lead", type=float, default=5.0, help="seconds of load before each fault (default 5)"
    )
    parser.add_argument(
        "--tail", type=float, default=20.0, help="seconds of load after each fault (default 20)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=120.0,
        help="at most this long waiting for the pipeline to catch up (default 120)",
    )
    parser.add_argument("--rate", type=int, default=1000, help="pixels per second (default 1000)")
    parser.add_argument("--form-rate", type=float, default=5.0, help="form posts per second (default 5)")
    parser.add_argument(
        "--run-dir", type=Path, default=REPO / ".run" / "drill", help="the drill stack's state"
    )
    defaults = Ports()
    for name in ("kafka", "controller", "postgres", "collector", "crm", "enricher"):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name}-port", type=int, default=default, help=f"(default {default})")
    parser.add_argument(
        "--output", type=Path, default=REPO / "docs" / "reliability.md", help="report to prepend to"
    )
    parser.add_argument("--no-report", action="store_true", help="print the section, do not write the report")
    return parser


def check(args: argparse.Namespace) -> list[scenarios.Drill]:
    """The drills chosen; ValueError for an option out of range or an unknown drill."""
    if not 1 <= args.duration <= 600:
        raise ValueError("--duration must be between 1 and 600 seconds")
    if args.lead < 1 or args.tail < 1 or args.settle < 5:
        raise ValueError("--lead and --tail must be at least 1 second, --settle at least 5")
    if not 1 <= args.rate <= 20_000 or not 0.1 <= args.form_rate <= 100:
        raise ValueError("--rate must be 1..20000 pixels/s and --form-rate 0.1..100 posts/s")
    return scenarios.select(args.only)


def ports(args: argparse.Namespace) -> Ports:
    """The ports chosen on the command line."""
    return Ports(
        kafka=args.kafka_port,
        controller=args.controller_port,
        postgres=args.postgres_port,
        collector=args.collector_port,
        crm=args.crm_port,
        enricher=args.enricher_port,
    )


async def run_all(
    stack: DrillStack, drills: Sequence[scenarios.Drill], settings: scenarios.Settings, run: str
) -> list[report.DrillOutcome]:
    """Each drill in turn, each with its own id prefix; a broken drill is reported and the rest still run."""
    outcomes = []
    for number, drill in enumerate(drills, start=1):
        print(f"drill: {drill.name}", flush=True)
        outcome = await scenarios.run_drill(stack, drill, settings, prefix=f"{run}d{number}")
        print(f"drill: {drill.name}: {'failed: ' + outcome.error if outcome.error else 'done'}", flush=True)
        outcomes.append(outcome)
    return outcomes


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: through the ``finally`` that stops the drill stack."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen drills; 0 when every drill ran (its figures, good or bad, are in the report)."""
    args = build_parser().parse_args(argv)
    try:
        drills = check(args)
    except ValueError as exc:
        print(f"drill: {exc}", file=sys.stderr)
        return 2
    # The drill's own Kafka clients log every failed fetch while the broker is away on purpose.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    started = dt.datetime.now(dt.UTC)
    machine = machine_info(REPO)
    settings = scenarios.Settings(
        args.duration, args.lead, args.tail, args.settle, Rates(args.rate, args.form_rate)
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    stack = DrillStack(args.run_dir, ports(args))
    try:
        print(f"drill: starting an isolated stack in {stack.run_dir}", flush=True)
        stack.reset()
        stack.start()
        outcomes = asyncio.run(run_all(stack, drills, settings, run=f"r{started:%H%M%S}"))
    except RuntimeError as exc:
        print(f"drill: the drill stack: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    setup = (
        f"load: {args.rate} pixels/s and {args.form_rate:g} form posts/s with unique ids; {args.lead:g} s of load "
        f"before each fault and {args.tail:g} s after its end; Kafka down {args.duration:g} s"
    )
    section = report.render_section(started, machine, setup, outcomes)
    print(section)
    if not args.no_report:
        report.write_report(args.output, section)
        print(f"drill: written to {args.output}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
