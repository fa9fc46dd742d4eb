"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver checks to know a POST came
from this Leadline and was not changed or replayed.

Each delivery carries ``webhook-id`` (the message id, the same on every retry, for the receiver to deduplicate),
``webhook-timestamp`` (Unix seconds of this attempt, for the receiver to refuse old replays) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed by the secret's bytes.
While a rotated-out secret's overlap lasts, the header carries both signatures, space-separated, so a receiver
still holding the old secret keeps verifying until it has switched. Secrets are ``whsec_`` + base64 of 32 random
bytes, as the specification's libraries read them; HMAC is a few lines of the standard library, so signing does not
need the reference package (the tests verify with it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret (shown once to the admin)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(keys: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed with every secret in ``keys`` (current first)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in keys),
    }
