"""Dead letters (architecture.md §2): what a service cannot process goes to capture.dlq.v1, never nowhere.

A dead letter is the original message (key and bytes) with headers saying why: ``reason`` (the detail),
``stage`` (the step that failed inside the service), ``service`` (who gave up on it), ``first_seen`` and
``topic`` (the topic it was read from, without the deployment's prefix). ``leadline dlq replay`` sends each back
to the topic it came from, so the service that refused it takes it again once the cause is fixed. Letters
written before the ``topic`` header existed are routed by ``service``: the enricher reads capture.raw.v1,
crm-core capture.enriched.v1.
"""

from __future__ import annotations

from collections.abc import Mapping

from leadline_shared.events import utc_now_iso
from leadline_shared.kafka import Topics

REASON_MAX = 500
"""Bytes of the reason kept in the header (an exception's text can be long)."""

SOURCE_OF = {"enricher": "raw", "crm-core": "enriched"}
"""The topic (a field of :class:`Topics`) each service consumes events from."""


def headers(reason: str, stage: str, service: str, source: str) -> list[tuple[str, bytes]]:
    """The headers of a dead letter read from the topic ``source`` names (a field of :class:`Topics`, e.g.
    "enriched"); the header holds the topic's name without the deployment's prefix."""
    return [
        ("reason", reason.encode()[:REASON_MAX]),
        ("stage", stage.encode()),
        ("service", service.encode()),
        ("first_seen", utc_now_iso().encode()),
        ("topic", str(getattr(Topics.with_prefix(""), source)).encode()),
    ]


def origin(letter_headers: Mapping[str, bytes], topics: Topics) -> str:
    """The topic (with ``topics``' prefix) a dead letter is replayed to: the one its service read it from."""
    logical = Topics.with_prefix("")
    by_name = {
        logical.raw: topics.raw,
        logical.enriched: topics.enriched,
        logical.identity_changes: topics.identity_changes,
    }
    named = letter_headers.get("topic", b"").decode(errors="replace")
    if named in by_name:
        return by_name[named]
    service = letter_headers.get("service", b"enricher").decode(errors="replace")
    field = SOURCE_OF.get(service, "raw")
    return str(getattr(topics, field))


def service_of(letter_headers: Mapping[str, bytes]) -> str:
    """The service that gave up on a dead letter (the enricher's letters were the only ones before crm-core's)."""
    return letter_headers.get("service", b"enricher").decode(errors="replace")
