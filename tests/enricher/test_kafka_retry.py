"""The enricher's back-off after a Kafka failure: capped, one log line per cause per interval with the count held
back, started over once a batch commits (issue 17: an outage must not flood the log nor wait for ever)."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaConnectionError, LeaderNotAvailableError

from leadline_enricher.pipeline import KafkaRetry


def test_the_back_off_doubles_up_to_its_cap_and_starts_over_after_a_commit() -> None:
    retry = KafkaRetry(first=0.5, cap=4.0)
    delays = [retry.failed(LeaderNotAvailableError()) for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    retry.succeeded()
    assert retry.failures == 0
    assert retry.failed(LeaderNotAvailableError()) == 0.5


def test_one_line_per_cause_then_the_count_held_back(caplog: pytest.LogCaptureFixture) -> None:
    retry = KafkaRetry(every=3600.0)
    with caplog.at_level(logging.INFO, logger="leadline_enricher.pipeline"):
        for _ in range(5):
            retry.failed(KafkaConnectionError("broker gone"))
        retry.failed(LeaderNotAvailableError())
        retry.succeeded()
    lines = [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records]
    assert [e for m, e in lines if m.startswith("kafka failed")] == [
        "KafkaConnectionError",
        "LeaderNotAvailableError",
    ]
    assert lines[-1][0] == "kafka back: batches commit again"
    assert caplog.records[-1].failures == 6


def test_a_cause_logged_again_after_its_interval_carries_the_count(caplog: pytest.LogCaptureFixture) -> None:
    retry = KafkaRetry(every=3600.0)
    with caplog.at_level(logging.WARNING, logger="leadline_enricher.pipeline"):
        retry.failed(KafkaConnectionError("gone"))
        retry.failed(KafkaConnectionError("gone"))
        retry.failed(KafkaConnectionError("gone"))
        retry.every = 0.0  # the interval is over: the cause shows again, with the two held back
        retry.failed(KafkaConnectionError("gone"))
    shown = [r for r in caplog.records if r.getMessage().startswith("kafka failed")]
    assert [r.repeated for r in shown] == [0, 2]
