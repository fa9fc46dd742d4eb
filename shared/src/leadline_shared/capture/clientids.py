"""The id a client gives its event, taken the short way when it is a canonical UUID (the collector and the
enricher both name events with it).

Every snippet item carries one (``crypto.randomUUID()``), and Segment's server SDKs send ``uuid4`` message ids.
Checking such an id through ``uuid.UUID`` (:func:`leadline_shared.ids.valid_client_id`) cost two µs an event, a
third of what a snippet item costs the collector. A lower-case canonical UUID is already what that check would
return, so it is taken as it is; any other id goes the long way, with the same result as before.
"""

from __future__ import annotations

import re

from leadline_shared.ids import event_id_from, scoped_event_id

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def event_id(client_id: str | None) -> str:
    """:func:`leadline_shared.ids.event_id_from` (the client's valid id, else a new one)."""
    if client_id is not None and _CANONICAL.fullmatch(client_id):
        return client_id
    return event_id_from(client_id)


def scoped_id(scope: str, client_id: str | None) -> str:
    """:func:`leadline_shared.ids.scoped_event_id` (a valid id as it is, any other string scoped by ``scope``)."""
    if client_id is not None and _CANONICAL.fullmatch(client_id):
        return client_id
    return scoped_event_id(scope, client_id)
