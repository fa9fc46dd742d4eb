"""The short way to a client's event id gives what the long way (leadline_shared.ids) gives, for any id."""

from __future__ import annotations

import uuid

import pytest

from leadline_shared.capture.clientids import event_id, scoped_id
from leadline_shared.ids import event_id_from, scoped_event_id, valid_client_id

_U = uuid.UUID("0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e")
IDS = [
    str(_U),
    str(uuid.uuid4()),
    str(_U).upper(),
    _U.hex,
    "{" + str(_U) + "}",
    "urn:uuid:" + str(_U),
    " " + str(_U),
    str(_U) + "0",
    str(_U)[:-1] + "g",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "01arz3ndektsv4rrffq69g5fav",
    "ajs-next-9f2c1d",
    "not an id",
    "x" * 80,
    "",
    None,
]


@pytest.mark.parametrize("client_id", IDS)
def test_an_event_id_is_the_one_the_shared_rules_give(client_id: str | None) -> None:
    """A valid id (a UUID however written, a ULID) comes out as the shared rules write it; any other id, or none,
    gets a new one, as there."""
    expected = valid_client_id(client_id)
    got = event_id(client_id)
    if expected is not None:
        assert got == expected == event_id_from(client_id)
    else:
        assert got != client_id
        assert valid_client_id(got) == got


@pytest.mark.parametrize("client_id", IDS)
def test_a_scoped_id_is_the_one_the_shared_rules_give(client_id: str | None) -> None:
    """Segment message ids: a valid id as it is, any other string the same UUIDv5 per write key, none a new id."""
    got = scoped_id("wk_test", client_id)
    if client_id:
        assert got == scoped_event_id("wk_test", client_id)
    else:
        assert valid_client_id(got) == got


def test_the_snippets_own_ids_are_taken_as_they_are() -> None:
    """crypto.randomUUID() gives lower-case canonical UUIDs: the short way returns the very string."""
    sent = str(uuid.uuid4())
    assert event_id(sent) is sent
    assert scoped_id("wk_test", sent) is sent
