"""One canonical form for emails and phones, whichever service reads the value (issue 11, item 2).

Four places disagreed: forms accepted ``zoë@exämple.com`` and ``(415) 555-0123`` while POST /api/v1/leads refused
both, and the enricher checked ``is_possible_number`` where the collector checked ``is_valid_number``. The same
person then became two, or a form accepted what the API refused. The property tests feed every path the same
spellings of one address or number and require one key.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadline_collector import normalize as collector
from leadline_crm.http.errors import BadRequest
from leadline_crm.people import persons as crm
from leadline_enricher.identifiers import IdentifierRules, normalise
from leadline_shared.identifiers import canonical_email, canonical_phone, valid_region

RULES = IdentifierRules.create()
LOCALS = ["zoë", "ann", "j.doe", "o'brien", "ünsal", "renée+news", "bob_2"]
DOMAINS = [
    ("exämple.com", "xn--exmple-cua.com"),
    ("example.com", "example.com"),
    ("bücher.de", "xn--bcher-kva.de"),
]


def every_path_email(value: str) -> set[str | None]:
    """What each service makes of a typed email (None where it refuses it)."""
    out: set[str | None] = {canonical_email(value), normalise("email", value, RULES)}
    try:
        out.add(collector.email(value))
    except collector.InvalidValue:
        out.add(None)
    try:
        out.add(crm.normalize_email(value))
    except BadRequest:
        out.add(None)
    return out


def every_path_phone(value: str, region: str = "US") -> set[str | None]:
    """What each service makes of a typed phone number, all in the same region."""
    out: set[str | None] = {
        canonical_phone(value, region),
        normalise("phone", value, IdentifierRules.create(phone_region=region)),
    }
    try:
        out.add(collector.phone(value, region))
    except collector.InvalidValue:
        out.add(None)
    try:
        out.add(crm.normalize_phone(value, region))
    except BadRequest:
        out.add(None)
    return out


@st.composite
def spellings_of_one_address(draw: st.DrawFn) -> tuple[str, str]:
    """Two spellings of one address: case, NFC/NFD, Unicode or punycode domain, surrounding spaces."""
    local = draw(st.sampled_from(LOCALS))
    unicode_domain, ascii_domain = draw(st.sampled_from(DOMAINS))

    def spell() -> str:
        loc = unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), local)
        loc = loc.upper() if draw(st.booleans()) else loc
        dom = draw(st.sampled_from([unicode_domain, ascii_domain, unicode_domain.upper()]))
        pad = draw(st.sampled_from(["", " ", "\t", "  "]))
        return f"{pad}{loc}@{dom}{pad[::-1]}"

    return spell(), spell()


@given(spellings_of_one_address())
def test_every_service_gives_one_key_for_every_spelling_of_an_address(pair: tuple[str, str]) -> None:
    first, second = pair
    keys = every_path_email(first) | every_path_email(second)
    assert len(keys) == 1, f"{first!r} and {second!r} became {keys}"
    assert None not in keys


@st.composite
def spellings_of_one_number(draw: st.DrawFn) -> tuple[str, str]:
    """Two ways people write one US number: national, international, E.164, dotted, with an extension-free
    RFC 3966 form."""
    number = phonenumbers.parse(
        draw(st.sampled_from(["4155550123", "2025550173", "6502530000", "3125550199"])), "US"
    )
    formats = [
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966),
    ]
    dotted = formats[2][2:5] + "." + formats[2][5:8] + "." + formats[2][8:]
    return draw(st.sampled_from([*formats, dotted])), draw(st.sampled_from([*formats, dotted]))


@given(spellings_of_one_number())
def test_every_service_gives_one_key_for_every_spelling_of_a_number(pair: tuple[str, str]) -> None:
    first, second = pair
    keys = every_path_phone(first) | every_path_phone(second)
    assert len(keys) == 1, f"{first!r} and {second!r} became {keys}"
    assert None not in keys


@given(st.text(max_size=40))
def test_every_service_agrees_on_what_is_not_an_address_or_a_number(text: str) -> None:
    """Arbitrary input: each path accepts it as the same key, or every path refuses it."""
    assert len(every_path_email(text)) == 1
    assert len(every_path_phone(text)) == 1


def test_the_values_from_the_issue() -> None:
    assert every_path_email("zoë@exämple.com") == {"zoë@exämple.com"}
    assert every_path_email("ZOË@xn--exmple-cua.com") == {"zoë@exämple.com"}
    assert every_path_phone("(415) 555-0123") == {"+14155550123"}
    assert every_path_phone("+49 30 901820", "US") == {"+4930901820"}
    # possible but not valid (no such area code): refused everywhere, not by the collector alone
    assert every_path_phone("+1 011 555 0123") == {None}


def test_one_region_setting_is_checked_at_start() -> None:
    assert valid_region("DE")
    assert valid_region("")
    assert not valid_region("XX")


@pytest.mark.parametrize("region", ["US", "DE", "GB"])
def test_national_numbers_are_read_in_the_configured_region(region: str) -> None:
    example = phonenumbers.example_number(region)
    assert example is not None
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert every_path_phone(national, region) == {e164}
