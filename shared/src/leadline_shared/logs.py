"""JSON logs, one object per line, configured once per process.

Secrets and PII stay out: callers log ids and counts, never emails, tokens or bodies; settings are logged
through :func:`leadline_shared.config.describe`, which masks secrets.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra=`` fields become top-level keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class RepeatFilter(logging.Filter):
    """One line per cause per interval for libraries' warnings and errors, with a count of the ones held back.

    While Kafka is down, aiokafka logs the same connection error thousands of times a second (about 10,000
    lines/s were seen, 14.7 MB a minute); that buries everything an SRE needs during the outage and costs CPU
    the service needs to recover. A cause is the logger plus the message template (before its arguments are
    filled in). The first record of a cause in an interval passes; the rest are counted, and the next record of
    that cause to pass carries ``repeated``: how many were held back since the last one shown. Leadline's own
    loggers are left alone: their lines are written not to repeat.
    """

    def __init__(self, interval: float = 10.0, own_prefix: str = "leadline") -> None:
        super().__init__()
        self.interval = interval
        self.own_prefix = own_prefix
        self._shown: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(self.own_prefix):
            return True
        cause = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._shown.get(cause)
        if last is not None and now - last < self.interval:
            self._held[cause] = self._held.get(cause, 0) + 1
            return False
        if len(self._shown) > 1000:  # causes are templates, so few; this only bounds a pathological case
            self._shown.clear()
        self._shown[cause] = now
        held = self._held.pop(cause, 0)
        if held:
            record.repeated = held
        return True


def setup(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines, library floods folded (:class:`RepeatFilter`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
