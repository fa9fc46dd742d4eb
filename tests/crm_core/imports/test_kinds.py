"""Row checks of the CSV import (unit): the fast email path gives canonical_email's answer for every shape, the
mapping is guessed from common header names, amounts are read as spreadsheets write them, and a bad row's reason
names its field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from leadline_crm.imports import kinds
from leadline_shared.identifiers import canonical_email

ADDRESSES = [
    "ann@example.com", " Ann.Lee@Example.COM ", "a+tag@sub.example.co.uk", "o'brien@example.ie",
    "x@localhost", "x@example", "x@-bad.example", "x@bad-.example", "x@exa_mple.com", "x@123.123.123.123",
    "a..b@example.com", ".a@example.com", "a.@example.com", "a@b@example.com", "@example.com", "a@",
    "zoë@example.com", "ann@bücher.example", "ANN@XN--BCHER-KVA.EXAMPLE", "a" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com", "a@" + ("b" * 60 + ".") * 4 + "com", '"quoted"@example.com', "a b@example.com",
    "a@example.invalid", "a@test", "a@example.test", "user@[192.168.0.1]", "a@example.com.", "a@ex..ample.com",
]  # fmt: skip


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_fast_email_path_agrees_with_canonical_email(address: str) -> None:
    """A duplicate the import missed (or a good address it refused) would split one person in two."""
    ctx = kinds.Context("US")
    assert kinds.email_of(address, ctx) == canonical_email(address)
    assert kinds.email_of(address, ctx) == canonical_email(address)  # the domain now from the cache


def test_the_mapping_is_guessed_from_the_header_names() -> None:
    header = ["E-Mail", "Given name", "Surname", "Mobile", "Organisation", "ZIP", "Owner Email", "Notes"]
    assert kinds.suggest("people", header) == {
        "email": "E-Mail", "first_name": "Given name", "last_name": "Surname", "phone": "Mobile",
        "company": "Organisation", "postal_code": "ZIP", "owner": "Owner Email",
    }  # fmt: skip
    with pytest.raises(ValueError, match="no column 'Mail'"):
        kinds.check_mapping("people", header, {"email": "Mail"})
    with pytest.raises(ValueError, match="choose the column of title"):
        kinds.check_mapping("deals", header, {"amount": "ZIP"})


@pytest.mark.parametrize(
    ("raw", "value"),
    [("12000", "12000.00"), ("12,000.50", "12000.50"), ("12.000,50", "12000.50"), ("1 200", "1200.00"),
     ("€ 99,9", "99.90"), ("1,234", "1234.00")],
)  # fmt: skip
def test_amounts_are_read_as_spreadsheets_write_them(raw: str, value: str) -> None:
    assert kinds.amount_of(raw) == Decimal(value)


def test_a_bad_rows_reason_names_its_field() -> None:
    ctx = kinds.Context("US")
    with pytest.raises(kinds.RowError, match=r"^phone: not a valid phone number"):
        kinds.person({"phone": "12"}, ctx)
    with pytest.raises(kinds.RowError, match=r"^owner: no active user"):
        kinds.person({"email": "a@example.com", "owner": "nobody@example.com"}, ctx)
    with pytest.raises(kinds.RowError, match=r"^domain: gmail.com is a free-mail domain"):
        kinds.company({"name": "Mail", "domain": "https://gmail.com/"}, ctx)
    with pytest.raises(kinds.RowError, match=r"^amount: '12abc' is not a number"):
        kinds.amount_of("12abc")
    assert kinds.domain_of("https://www.Acme.example:8443/about") == "acme.example"
