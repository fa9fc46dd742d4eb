"""Reading the link builder's recipients CSV (catalog/recipients.py) as spreadsheets and mail tools save it, and
writing the links file: every bad row is named by its line, nothing a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from leadline_crm.catalog.recipients import (
    MAX_BYTES,
    Unreadable,
    links_csv,
    read_recipients,
    recipient_token,
)
from leadline_shared.signing import KeyRing

RING = KeyRing.parse("k1:" + "s" * 32)


def emails(data: bytes) -> list[str]:
    return [r.email for r in read_recipients(data).good]


@pytest.mark.parametrize(
    "data",
    [
        b"email,name\r\nada@example.com,Ada\r\n",
        b"\xef\xbb\xbfEmail;Name\nada@example.com;Ada\n",  # Excel's UTF-8 with a byte-order mark, semicolons
        b"E-mail Address\tFull Name\nada@example.com\tAda\n",
        b"ada@example.com,Ada\n",  # no header: the email first
        b"Name,Email\n\nAda,ADA@Example.COM\n\n",  # blank lines, upper case
    ],
)
def test_common_spreadsheet_exports_are_read(data: bytes) -> None:
    found = read_recipients(data)
    assert found.problems == []
    assert [(r.email, r.name) for r in found.good] == [("ada@example.com", "Ada")]


def test_first_and_last_names_make_the_name_and_a_windows_export_is_read() -> None:
    [r] = read_recipients("first_name,last_name,email\nJosé,Núñez,jose@example.com\n".encode("cp1252")).good
    assert (r.name, r.email) == ("José Núñez", "jose@example.com")


def test_each_bad_row_is_named_by_its_line() -> None:
    found = read_recipients(
        b'email,recipient_token\na@example.com,\nnope,\n,x\nA@example.com,\nb@example.com,bad token\n"c@example.com",t-1\n'
    )
    assert [r.email for r in found.good] == ["a@example.com", "c@example.com"]
    assert found.good[1].token == "t-1"
    assert [line for line, _ in found.problems] == [3, 4, 5, 6]
    assert "listed again (first on line 2)" in found.problems[2][1]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"name,phone\nAda,1\n", "no email column"),
        (b"PK\x03\x04\x00\x00binary", "not a CSV text file"),
        (b"email\n" + b"x" * MAX_BYTES, "larger than"),
    ],
)
def test_an_unusable_file_says_why(data: bytes, says: str) -> None:
    with pytest.raises(Unreadable, match=says):
        read_recipients(data)


def test_the_links_file_is_safe_to_open_in_a_spreadsheet() -> None:
    found = read_recipients(b'email,name\n-1+1@example.com,=HYPERLINK("http://x")\n')
    text = links_csv(found.good, RING, "https://t.example/ll/", {"target": "https://shop.example/"}, 3600)
    [row] = csv.DictReader(io.StringIO(text))
    assert row["email"] == "'-1+1@example.com"
    assert row["name"].startswith("'=")
    token = row["click_url"].removeprefix("https://t.example/ll/c/")
    payload = RING.verify(token)
    assert payload["recipient_token"] == recipient_token(RING, "-1+1@example.com") == row["recipient_token"]


def test_a_recipient_token_hides_the_address_and_stays_the_same() -> None:
    token = recipient_token(RING, "ada@example.com")
    assert token == recipient_token(RING, "ada@example.com")
    assert token != recipient_token(RING, "bob@example.com")
    assert "ada" not in token
    assert token != recipient_token(KeyRing.parse("k2:" + "t" * 32), "ada@example.com")
