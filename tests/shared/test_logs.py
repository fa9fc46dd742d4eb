"""Library floods are folded: one line per cause per interval, with a count, so an outage's log stays readable."""

from __future__ import annotations

import logging

import pytest

from leadline_shared.logs import RepeatFilter


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_library_error_passes_once_per_interval_and_then_carries_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("leadline_shared.logs.time.monotonic", lambda: now[0])
    flt = RepeatFilter(interval=10.0)
    passed = [
        flt.filter(record("aiokafka", "Unable connect to node with id %s: %s", 1, i)) for i in range(5000)
    ]
    assert passed.count(True) == 1  # 5,000 identical causes within the interval: one line
    now[0] += 10.0
    nxt = record("aiokafka", "Unable connect to node with id %s: %s", 1, "x")
    assert flt.filter(nxt)
    assert nxt.repeated == 4999  # type: ignore[attr-defined]


def test_different_causes_and_leadlines_own_lines_are_not_folded() -> None:
    flt = RepeatFilter(interval=10.0)
    assert flt.filter(record("aiokafka", "Unable connect to node with id %s", 1))
    assert flt.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert flt.filter(record("aiokafka.consumer", "Unable connect to node with id %s", 1))
    for _ in range(3):
        assert flt.filter(record("leadline_collector.publisher", "kafka not reachable"))
    for _ in range(3):
        assert flt.filter(record("aiokafka", "debug chatter", level=logging.INFO))


def test_a_service_log_set_up_by_logs_setup_folds_a_kafka_outage_flood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the SRE saw: ~11,000 aiokafka error lines a second while Kafka was down (issue 11, item 8)."""
    import io
    import sys

    from leadline_shared import logs

    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup("enricher", "INFO")
        client = logging.getLogger("aiokafka")
        for _ in range(11_000):
            client.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused")
            client.error("Unable to update metadata from %s", [1])
        logging.getLogger("leadline_enricher.pipeline").warning("kafka not reachable")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines[:5]  # one per cause, plus the service's own line
    assert "127.0.0.1" not in out.getvalue()
