"""The list pages' shared CSV and filter helpers (http/listing.py, unit): a cell a spreadsheet would run as a formula
is defused, pieces stay bounded, and bad filters give the page the reason instead of an error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from multidict import MultiDict, MultiDictProxy, MultiMapping

from leadline_crm.http.errors import BadRequest
from leadline_crm.http.listing import csv_cell, csv_lines, filtered_page


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("+1", "'+1"), ("-2", "'-2"), ("@x", "'@x"), ("\tx", "'\tx"),
     (None, ""), (["a@x", "b@x"], "a@x;b@x"), (["=1"], "'=1"), (12.5, "12.5"), ("Ann", "Ann")],
)  # fmt: skip
def test_a_cell_a_spreadsheet_would_run_is_defused(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


async def test_rows_come_out_as_csv_in_bounded_pieces() -> None:
    async def rows() -> AsyncIterator[list[object]]:
        for i in range(5000):
            yield [i, "x" * 30]

    pieces = [p async for p in csv_lines(("n", "text"), rows())]
    assert len(pieces) > 1
    assert all(len(p) < 70 * 1024 for p in pieces)
    text = b"".join(pieces).decode()
    assert text.startswith("n,text\r\n0,")
    assert text.count("\r\n") == 5001


async def test_bad_filters_give_the_unfiltered_form_and_the_reason() -> None:
    def parse(q: MultiMapping[str]) -> str:
        if q.get("sort") == "bogus":
            raise BadRequest("sort: one of name, created")
        return q.get("sort", "created")

    async def fetch(query: str) -> tuple[list[object], bool]:
        return [query], True

    good = await filtered_page(MultiDictProxy(MultiDict(sort="name")), parse, lambda: "created", fetch)
    assert good == ("name", ["name"], True, None)
    bad = await filtered_page(MultiDictProxy(MultiDict(sort="bogus")), parse, lambda: "created", fetch)
    assert bad == ("created", [], False, "sort: one of name, created")
