"""Signatures as receivers check them: the Standard Webhooks reference library verifies what Leadline signs,
refuses a tampered body or an old timestamp, and accepts either secret during a rotation's overlap."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadline_crm.webhooks import signing

BODY = b'{"type":"person.created","timestamp":"2026-11-30T14:00:00+00:00","data":{"person_id":"p1"}}'


def test_the_reference_library_verifies_our_signature() -> None:
    secret = signing.new_secret()
    headers = signing.headers([secret], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["type"] == "person.created"
    assert secret.startswith("whsec_")
    assert secret != signing.new_secret()


def test_a_tampered_body_is_refused() -> None:
    secret = signing.new_secret()
    headers = signing.headers([secret], "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"p1", b"p2"), headers)
    with pytest.raises(WebhookVerificationError):  # nor is another message's id
        Webhook(secret).verify(BODY, headers | {"webhook-id": "msg_2"})


def test_an_old_timestamp_is_refused() -> None:
    secret = signing.new_secret()
    headers = signing.headers([secret], "msg_1", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_both_secrets_verify_during_a_rotation_overlap() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.headers([new, old], "msg_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, headers)
    assert Webhook(new).verify(BODY, headers)
    after = signing.headers([new], "msg_1", int(time.time()), BODY)
    assert Webhook(new).verify(BODY, after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, after)
