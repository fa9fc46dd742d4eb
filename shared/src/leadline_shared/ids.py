"""Event and visitor ids: the client's id when it is a valid UUID or ULID, else a new time-ordered UUIDv7."""

from __future__ import annotations

import re
import uuid

import uuid_utils

_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def new_id() -> str:
    """A new time-ordered id (UUIDv7): sorts by creation time, so PostgreSQL indexes stay append-mostly."""
    return str(uuid_utils.uuid7())


def valid_client_id(value: str | None) -> str | None:
    """The client's id in canonical form if it is a UUID or ULID, else None."""
    if not value or len(value) > 64:
        return None
    if _ULID.match(value.upper()) and len(value) == 26:
        return value.upper()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def event_id_from(client_id: str | None) -> str:
    """The dedup key of an event: the client's valid id, else a new one."""
    return valid_client_id(client_id) or new_id()
