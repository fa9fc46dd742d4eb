"""Contact details as people type them, made canonical: emails validated and lower-cased, phones in E.164."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidValue(ValueError):
    """A value a person typed that cannot be used; the message is shown to them."""


def email(value: str) -> str:
    """A syntactically valid address, trimmed and lower-cased (no DNS look-up on the request path)."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise InvalidValue("is not a valid email address") from None
    return result.normalized.lower()


def phone(value: str, default_region: str) -> str:
    """E.164 (``+15551234567``); national numbers are read in ``default_region``."""
    try:
        parsed = phonenumbers.parse(value, default_region or None)
    except phonenumbers.NumberParseException:
        raise InvalidValue("is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidValue("is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def truthy(value: str | bool | None) -> bool:
    """A checkbox or JSON flag: "on", "true", "1", "yes" or True."""
    if isinstance(value, bool):
        return value
    return (value or "").strip().lower() in ("on", "true", "1", "yes")
