"""Signed links: only our keys make valid tokens, rotation keeps old links working, expiry is enforced."""

from __future__ import annotations

import base64
import hmac
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline_shared.signing import InvalidToken, KeyRing, _keyed_pads, _mac, _unb64

OLD = "k1:" + "a" * 32
NEW = "k2:" + "b" * 32
PAYLOAD = {
    "target": "https://shop.example/offer",
    "campaign_id": "c1",
    "send_id": "s1",
    "recipient_token": "r1",
}


def test_a_signed_token_verifies_to_its_payload() -> None:
    ring = KeyRing.parse(OLD)
    assert ring.verify(ring.sign(PAYLOAD)) == PAYLOAD | {"kid": "k1"}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "e30" + t[3:],  # payload changed
        lambda t: t.split(".")[0],  # signature missing
        lambda t: "not-a-token",
        lambda t: "",
        lambda t: "%%%.%%%",
    ],
)
def test_forged_or_malformed_tokens_are_rejected(tamper: object) -> None:
    ring = KeyRing.parse(OLD)
    with pytest.raises(InvalidToken):
        ring.verify(tamper(ring.sign(PAYLOAD)))  # type: ignore[operator]


def test_rotation_new_key_signs_old_links_still_verify_until_the_old_key_is_dropped() -> None:
    old_ring, rotated, retired = KeyRing.parse(OLD), KeyRing.parse(f"{NEW},{OLD}"), KeyRing.parse(NEW)
    old_link = old_ring.sign(PAYLOAD)
    new_link = rotated.sign(PAYLOAD)
    assert rotated.verify(old_link)["kid"] == "k1"
    assert rotated.verify(new_link)["kid"] == "k2"
    with pytest.raises(InvalidToken):
        retired.verify(old_link)


def test_a_token_signed_by_someone_elses_key_with_our_kid_is_rejected() -> None:
    forger = KeyRing.parse("k1:" + "z" * 32)
    with pytest.raises(InvalidToken):
        KeyRing.parse(OLD).verify(forger.sign(PAYLOAD))


def test_expiry() -> None:
    ring = KeyRing.parse(OLD)
    token = ring.sign(PAYLOAD, ttl_seconds=60, now=1_000_000)
    assert ring.verify(token, now=1_000_059)["exp"] == 1_000_060
    with pytest.raises(InvalidToken):
        ring.verify(token, now=1_000_061)


@pytest.mark.parametrize("spec", ["k1", "k1:short", ":" + "a" * 20, f"{OLD},{OLD}"])
def test_bad_key_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="link key"):
        KeyRing.parse(spec)


def test_an_empty_ring_cannot_sign() -> None:
    with pytest.raises(ValueError, match="LEADLINE_LINK_KEYS"):
        KeyRing.parse("").sign(PAYLOAD)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_=é+/", max_size=40))
def test_base64url_decoding_matches_the_standard_library(text: str) -> None:
    """The hand-tuned decoder answers what base64.urlsafe_b64decode answers, or fails where it fails."""
    try:
        expected: bytes | None = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        expected = None
    try:
        got: bytes | None = _unb64(text)
    except ValueError:
        got = None
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(secret=st.binary(min_size=0, max_size=200), message=st.binary(max_size=600))
def test_the_precomputed_pads_give_the_standard_hmac_sha256(secret: bytes, message: bytes) -> None:
    """Keys shorter than, equal to and longer than SHA-256's 64-byte block: the same MAC as the standard library."""
    pads = _keyed_pads(secret)
    assert _mac(pads, message) == hmac.digest(secret, message, "sha256")
    # the pads are copied, never consumed: a second MAC is the same
    assert _mac(pads, message) == hmac.digest(secret, message, "sha256")


def test_a_token_is_signed_with_the_standard_hmac_of_its_payload() -> None:
    """The wire format does not depend on our HMAC: a token made with the standard library verifies, and back."""
    ring = KeyRing.parse(OLD)
    token = ring.sign(PAYLOAD)
    encoded, _, signature = token.partition(".")
    expected = hmac.digest(b"a" * 32, encoded.encode(), "sha256")
    assert _unb64(signature) == expected
    assert ring.verify(token)["campaign_id"] == "c1"
