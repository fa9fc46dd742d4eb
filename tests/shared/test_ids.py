"""Event ids: a client's retry of one message keeps one id, so it is stored once."""

from __future__ import annotations

import uuid

import pytest

from leadline_shared.ids import scoped_event_id, valid_client_id

AJS = "ajs-next-69ab2cdd3e5f1a2b"


def test_a_message_id_that_is_not_a_uuid_gives_the_same_event_id_on_every_retry() -> None:
    assert scoped_event_id("wk_a", AJS) == scoped_event_id("wk_a", AJS)
    assert scoped_event_id("wk_a", AJS).count("-") == 4


def test_the_same_message_id_under_another_write_key_is_another_event() -> None:
    assert scoped_event_id("wk_a", AJS) != scoped_event_id("wk_b", AJS)
    assert scoped_event_id("wk_a", "b" + AJS) != scoped_event_id("wk_ab", AJS)  # scope and id cannot blur


def test_a_uuid_message_id_stays_itself_and_no_id_gets_a_fresh_one() -> None:
    uid = "0190b3f0-7c1e-7cc2-9a57-1f1e1a2b3c4d"
    assert scoped_event_id("wk_a", uid) == uid
    assert scoped_event_id("wk_a", uid.upper()) == uid
    assert scoped_event_id("wk_a", None) != scoped_event_id("wk_a", None)


NAMESPACE = uuid.UUID("6f1d3c2e-8a47-4b5e-9c0d-2e7f51a8b934")
MESSAGE_IDS = [
    AJS,
    "ajs-next-1764508800000-1b6c1f0e-4c1d-4f7a-9a55-8c2a3e5f7b90",
    "ajs-3f2a",
    "node-7f3e",
    "m-track-1",
    "Grüße, 世界 😀",
    "x" * 1024,
]


def test_a_scoped_id_is_fixed_forever() -> None:
    """Retries after an upgrade must still match: the value is the standard library's UUIDv5 of (scope, id), as
    it was when this rule was made (the literal below was computed then)."""
    assert scoped_event_id("wk_a", AJS) == "bda67069-09b8-54c2-bb6d-2aea9602160c"
    for scope in ("wk_a", "wk_live_0123456789", ""):
        for message_id in MESSAGE_IDS:
            expected = str(uuid.uuid5(NAMESPACE, f"{len(scope)}:{scope}{message_id}"))
            assert scoped_event_id(scope, message_id) == expected


@pytest.mark.parametrize(
    "message_id",
    [
        *MESSAGE_IDS[:3],
        "ajs-0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e",
        "ajs-" + "a" * 28,
        "ajs-01ARZ3NDEKTSV4RRFFQ69G5",
    ],
)
def test_an_analytics_js_id_is_never_a_client_id_of_its_own(message_id: str) -> None:
    """Why ids beginning ``ajs-`` are scoped without trying them as a UUID or ULID first: none can be one."""
    assert valid_client_id(message_id) is None
    assert scoped_event_id("wk_a", message_id) != message_id
