"""``leadline collector``: run the collector."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from leadline_collector.app import create_app
from leadline_collector.settings import CollectorSettings
from leadline_shared import config, logs, service


def run(args: argparse.Namespace) -> int:
    """Load settings from the environment and serve until SIGTERM."""
    settings = config.load(CollectorSettings)
    logs.setup("collector", settings.log_level)
    logging.getLogger(__name__).info("starting", extra={"settings": config.describe(settings)})
    return service.run(create_app(settings), settings.host, settings.port, settings.drain_seconds)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``leadline collector``."""
    parser = subparsers.add_parser("collector", help="run the collector (pixels, links, forms, Segment API)")
    parser.set_defaults(func=run)
