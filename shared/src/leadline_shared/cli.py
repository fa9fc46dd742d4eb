"""The one `leadline` command line.

Each package of the workspace adds its subcommands through the ``leadline.commands`` entry-point group: the
entry point names a ``register(subparsers)`` function that adds a subparser and sets ``func`` on it, a callable
taking the parsed arguments and returning the exit code. The shared library thus never imports a service.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points, version
from typing import Any

Register = Callable[["argparse._SubParsersAction[Any]"], None]


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every installed subcommand."""
    parser = argparse.ArgumentParser(prog="leadline", description="Leadline: self-hosted CRM capture.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('leadline-shared')}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for ep in sorted(entry_points(group="leadline.commands"), key=lambda e: e.name):
        register: Register = ep.load()
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
