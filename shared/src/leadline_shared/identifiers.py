"""The canonical form of an email address and a phone number: one rule for every service (architecture.md §4).

The collector (forms, the snippet, Segment), the enricher (the identity graph's keys) and crm-core (API
validation, the duplicate check, ingestion) must turn the same typed value into the same key, or one person
becomes two, or a form accepts what the API refuses. So the rules live here and nowhere else:

- **Email**: trimmed; syntax-checked without DNS (email-validator); the local part in Unicode NFC; the domain
  through IDNA, kept in its Unicode form (``xn--exmple-cua.com`` and ``exämple.com`` are one address); the whole
  address lower-cased. Lower-casing the local part is not what RFC 5321 allows a mail server to assume, but it
  is what people expect of a CRM (``Ann@x.com`` and ``ann@x.com`` are one person), and every major provider
  agrees.
- **Phone**: E.164. A number written without ``+country`` is read in one region (``LEADLINE_PHONE_REGION``);
  it must be a *valid* number for its region (libphonenumber's ``is_valid_number``), not merely a possible one.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_PHONE_REGION = "US"


@lru_cache(maxsize=65536)
def canonical_email(raw: str) -> str | None:
    """The canonical address, or None when ``raw`` is not an email address at all."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return unicodedata.normalize("NFC", result.normalized.lower())


@lru_cache(maxsize=65536)
def canonical_phone(raw: str, region: str | None = DEFAULT_PHONE_REGION) -> str | None:
    """The number in E.164, or None when it is not a valid phone number (national numbers read in ``region``)."""
    try:
        number = phonenumbers.parse(raw.strip(), (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_region(region: str) -> bool:
    """Whether ``region`` is a region libphonenumber knows (two letters, e.g. US, DE); empty means none."""
    return not region or region.upper() in phonenumbers.SUPPORTED_REGIONS
