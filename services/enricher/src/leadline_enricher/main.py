"""``leadline enricher``: run the enricher."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from leadline_enricher.app import MIGRATIONS, create_app
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, logs, service
from leadline_shared.migrate import Target


def run(args: argparse.Namespace) -> int:
    """Load settings from the environment and run until SIGTERM."""
    settings = config.load(EnricherSettings)
    logs.setup("enricher", settings.log_level)
    logging.getLogger(__name__).info("starting", extra={"settings": config.describe(settings)})
    return service.run(
        create_app(settings), settings.host, settings.port, settings.drain_seconds, use_uvloop=settings.uvloop
    )


def migration_target() -> Target:
    """The enricher's schema and migrations, for ``leadline migrate`` (entry point ``leadline.migrations``)."""
    settings = config.load(EnricherSettings)
    return Target(settings.dsn, settings.identity_schema, MIGRATIONS)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline enricher``."""
    parser = subparsers.add_parser("enricher", help="run the enricher (identity resolution, enrichment)")
    parser.set_defaults(func=run)
