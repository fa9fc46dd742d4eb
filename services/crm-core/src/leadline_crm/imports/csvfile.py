"""Reading an uploaded CSV file: refusing what is not one, before anything is written, and walking its rows with
their line numbers.

A file is refused (:class:`NotCsv`, a 4xx) when it is empty, larger than :data:`MAX_BYTES`, binary (a NUL byte
in its first block: spreadsheets, archives, images), not UTF-8 text (Excel's "CSV UTF-8" is; a legacy code page
is named in the message so the user can save it again), or has no header row (a first row that looks like data:
an email address or a number among the column names, or names missing or repeated). The delimiter (comma,
semicolon, tab or pipe) is sniffed with the csv module from the first lines.

A malformed row (a wrong number of fields, a field the csv module refuses) is not a reason to refuse the file:
it comes out of :func:`rows` as a :class:`Bad` with its line number and reason, and the rest is imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_BYTES = 50 * 1024 * 1024  # 100,000 rows of people are about 10 MB
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
DATA_LIKE = re.compile(r"^\s*([^@\s]+@[^@\s]+|[-+]?[\d.,\s]+)\s*$")


class NotCsv(ValueError):
    """The upload is not a CSV file this import can read; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class CsvFile:
    """A decoded CSV file: its text, sniffed delimiter and header row."""

    text: str
    delimiter: str
    header: list[str]


@dataclass(frozen=True)
class Bad:
    """A row that could not be read as a record."""

    line: int
    reason: str
    raw: str


@dataclass(frozen=True)
class Row:
    """A record with its (first) physical line number in the file, the header being line 1."""

    line: int
    values: list[str]


def decode(data: bytes) -> str:
    """The file's text; NotCsv for an empty, oversized, binary or non-UTF-8 file."""
    if not data.strip():
        raise NotCsv("the file is empty")
    if len(data) > MAX_BYTES:
        raise NotCsv(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it")
    if b"\x00" in data[:SNIFF_BYTES]:
        raise NotCsv("this is a binary file, not CSV text (save the spreadsheet as CSV UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotCsv(
            f"the file is not UTF-8 text (byte {exc.start + 1} is not); save it as CSV UTF-8 and upload it again"
        ) from None


def sniff(text: str) -> str:
    """The delimiter of ``text``'s first lines; a comma when nothing else is consistent (one column)."""
    sample = "\n".join(text[:SNIFF_BYTES].splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def read(data: bytes) -> CsvFile:
    """Decode and check the upload; NotCsv with the reason when it is not a CSV file with a header row."""
    text = decode(data)
    delimiter = sniff(text)
    try:
        first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error as exc:
        raise NotCsv(f"the header row cannot be read: {exc}") from None
    header = [h.strip() for h in first]
    if not any(header):
        raise NotCsv("the first row is empty; it must name the columns")
    if any(not h for h in header):
        raise NotCsv("the first row must name every column (one is empty)")
    if len(set(header)) != len(header):
        raise NotCsv("two columns of the first row have the same name")
    looks = [h for h in header if DATA_LIKE.match(h)]
    if looks:
        raise NotCsv(f"the first row looks like data ({looks[0][:60]!r}), not column names; add a header row")
    return CsvFile(text, delimiter, header)


def rows(file: CsvFile) -> Iterator[Row | Bad]:
    """Every record after the header, or the reason it is malformed; blank lines are passed over."""
    reader = csv.reader(io.StringIO(file.text), delimiter=file.delimiter)
    lines = file.text.split("\n")  # as the csv module counts lines
    width = len(file.header)
    try:
        next(reader)
    except (StopIteration, csv.Error):
        return
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Bad(start, f"malformed CSV: {exc}", _raw(lines, start))
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != width:
            yield Bad(line, f"expected {width} fields, found {len(values)}", _raw(lines, line))
            continue
        yield Row(line, values)


def _raw(lines: list[str], line: int) -> str:
    return lines[line - 1].rstrip("\r")[:1000] if 0 < line <= len(lines) else ""


def raw_of(file: CsvFile, row: Row) -> str:
    """The row as a CSV line again, for the rejects report (capped at 1,000 characters)."""
    out = io.StringIO()
    csv.writer(out, delimiter=file.delimiter, lineterminator="").writerow(row.values)
    return out.getvalue()[:1000]
