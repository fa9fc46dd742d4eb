"""`leadline stack ...`: start, stop and inspect the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from leadline_localstack.kafka import kafka_status, start_kafka, stop_kafka
from leadline_localstack.postgres import postgres_status, start_postgres, stop_postgres
from leadline_localstack.procs import default_run_dir

Action = Callable[[argparse.Namespace], int]


def _run_dir(args: argparse.Namespace) -> Path:
    run_dir: Path | None = args.run_dir
    return run_dir if run_dir is not None else default_run_dir()


def _start_kafka(args: argparse.Namespace) -> int:
    print(start_kafka(_run_dir(args), args.kafka_port, args.controller_port, heap_mb=args.heap_mb))
    return 0


def _stop_kafka(args: argparse.Namespace) -> int:
    stop_kafka(_run_dir(args))
    return 0


def _start_postgres(args: argparse.Namespace) -> int:
    print(start_postgres(_run_dir(args), args.pg_port, for_tests=args.for_tests))
    return 0


def _stop_postgres(args: argparse.Namespace) -> int:
    stop_postgres(_run_dir(args))
    return 0


def _start(args: argparse.Namespace) -> int:
    _start_kafka(args)
    return _start_postgres(args)


def _stop(args: argparse.Namespace) -> int:
    _stop_kafka(args)
    return _stop_postgres(args)


def _status(args: argparse.Namespace) -> int:
    run_dir = _run_dir(args)
    print(kafka_status(run_dir))
    print(postgres_status(run_dir))
    return 0


_COMMANDS: dict[str, tuple[Action, str]] = {
    "start-kafka": (_start_kafka, "start the Kafka broker (detached) and print its bootstrap address"),
    "stop-kafka": (_stop_kafka, "stop the Kafka broker"),
    "start-postgres": (_start_postgres, "start PostgreSQL (detached) and print its DSN"),
    "stop-postgres": (_stop_postgres, "stop PostgreSQL"),
    "start": (_start, "start both; prints the bootstrap address, then the DSN"),
    "stop": (_stop, "stop both"),
    "status": (_status, "one line per component"),
}


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--run-dir", type=Path, default=None, help="pid files, logs and data (default: <repo>/.run)"
    )
    common.add_argument("--kafka-port", type=int, default=9092, help="Kafka client port (default 9092)")
    common.add_argument(
        "--controller-port", type=int, default=9093, help="KRaft controller port (default 9093)"
    )
    common.add_argument("--heap-mb", type=int, default=512, help="broker JVM heap in MiB (default 512)")
    common.add_argument("--pg-port", type=int, default=5432, help="PostgreSQL port (default 5432)")
    common.add_argument(
        "--for-tests",
        action="store_true",
        help="PostgreSQL without durability (fsync, synchronous_commit, full_page_writes off)",
    )
    return common


def _wrap(action: Action) -> Action:
    def run(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except RuntimeError as exc:
            print(f"leadline stack: {exc}", file=sys.stderr)
            return 1

    return run


def _fill(parser: argparse.ArgumentParser) -> None:
    common = _common_options()
    actions = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    for name, (action, help_text) in _COMMANDS.items():
        sub = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=_wrap(action))


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `stack` to the `leadline` command line (entry point of the ``leadline.commands`` group)."""
    parser = subparsers.add_parser(
        "stack",
        help="start/stop the local Kafka broker and PostgreSQL",
        description="Start, stop and inspect the local single-node Kafka (KRaft) and PostgreSQL, without Docker.",
    )
    _fill(parser)


def build_parser() -> argparse.ArgumentParser:
    """The same commands as `leadline stack`, for `python -m leadline_localstack`."""
    parser = argparse.ArgumentParser(
        prog="python -m leadline_localstack",
        description="Start, stop and inspect the local single-node Kafka (KRaft) and PostgreSQL, without Docker.",
    )
    _fill(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m leadline_localstack`."""
    args = build_parser().parse_args(argv)
    func: Action = args.func
    return func(args)
