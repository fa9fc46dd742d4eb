"""Contact details as people type them, made canonical by the one rule all services share, with a message for a
value that cannot be used (leadline_shared.identifiers)."""

from __future__ import annotations

from leadline_shared.identifiers import canonical_email, canonical_phone


class InvalidValue(ValueError):
    """A value a person typed that cannot be used; the message is shown to them."""


def email(value: str) -> str:
    """The canonical address (no DNS look-up on the request path)."""
    canonical = canonical_email(value)
    if canonical is None:
        raise InvalidValue("is not a valid email address")
    return canonical


def phone(value: str, default_region: str) -> str:
    """E.164 (``+15551234567``); national numbers are read in ``default_region`` (LEADLINE_PHONE_REGION)."""
    canonical = canonical_phone(value, default_region)
    if canonical is None:
        raise InvalidValue("is not a valid phone number")
    return canonical


def truthy(value: str | bool | None) -> bool:
    """A checkbox or JSON flag: "on", "true", "1", "yes" or True."""
    if isinstance(value, bool):
        return value
    return (value or "").strip().lower() in ("on", "true", "1", "yes")
