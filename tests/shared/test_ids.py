"""Event ids: a client's retry of one message keeps one id, so it is stored once."""

from __future__ import annotations

from leadline_shared.ids import scoped_event_id

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
