"""``leadline migrate``: apply every service's database migrations, then exit.

The services apply their own migrations when they start (``LEADLINE_MIGRATE_ON_START``, on by default, which is
what ``make up`` relies on). In a cluster that is the wrong moment: new pods would migrate while old ones still
run, and a failing migration would show up as crash-looping pods halfway through a rollout. The Helm chart
therefore runs this command in a Job before an install or upgrade rolls anything, and starts the services with
``LEADLINE_MIGRATE_ON_START=false``.

Each service that owns a schema names its migrations through the ``leadline.migrations`` entry-point group: a
function that reads the service's settings and returns a :class:`Target`. The shared library thus never
imports a service. Migrations are idempotent (yoyo records what it applied, under its lock), so running this
twice, or beside a service that migrates at start, is harmless.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from leadline_shared import config, logs, pg

GROUP = "leadline.migrations"
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one service's migrations apply: its DSN and schema, and the folder of its SQL files."""

    dsn: str
    schema: str
    migrations: Path


def targets() -> dict[str, Callable[[], Target]]:
    """Each installed service's migration target, by service name."""
    found: dict[str, Callable[[], Target]] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        found[ep.name] = ep.load()
    return found


def run(args: argparse.Namespace) -> int:
    """Migrate the chosen services (all by default), one after another; stop at the first failure."""
    logs.setup("migrate", config.load(config.CommonSettings).log_level)
    available = targets()
    chosen = args.service or sorted(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        known = ", ".join(available) or "none installed"
        print(f"leadline migrate: unknown service {', '.join(unknown)}; known: {known}", file=sys.stderr)
        return 2
    for name in chosen:
        target = available[name]()
        try:
            applied = pg.migrate_sync(target.dsn, target.schema, target.migrations)
        except Exception as exc:  # a clear line for the Job's log; the traceback is in the log record
            log.exception("migration failed", extra={"service": name, "schema": target.schema})
            print(f"leadline migrate: {name} (schema {target.schema}) failed: {exc}", file=sys.stderr)
            return 1
        print(
            f"{name}: schema {target.schema}, {len(applied)} migration(s) applied {' '.join(applied)}".rstrip()
        )
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline migrate``."""
    parser = subparsers.add_parser(
        "migrate", help="apply the database migrations of crm-core and the enricher, then exit"
    )
    parser.add_argument(
        "--service",
        action="append",
        metavar="NAME",
        help="only this service (repeatable; default: every installed service with migrations)",
    )
    parser.set_defaults(func=run)
