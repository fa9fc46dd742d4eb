"""The email-link builder's files: a CSV of recipients in, a CSV of per-recipient signed click and open URLs out.

Any mail tool can merge the result: each row keeps the recipient's email and name and adds the tracked link
(``click_url``), the open pixel (``open_url``, and ``open_img`` as an ``<img>`` tag) and their expiry. The links
are minted like ``POST /api/v1/links`` (the same key ring, payload and URLs), one token per recipient.

A recipient's token (``recipient_token`` in the link, the identity graph's identifier for "whoever got this
email") is the file's own ``recipient_token`` column when it has one, else derived from the canonical email with
the active signing key: the same address gets the same token in every send, so a recipient's clicks across
campaigns join one person, and the token tells nobody the address (a plain hash could be reversed by guessing
addresses). After a key rotation new links carry a new token for the same address.

Bad rows never stop the file: each is reported by line with what is wrong, and the good rows are still built.
"""

from __future__ import annotations

import base64
import csv
import hmac
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from leadline_crm.catalog.links import mint
from leadline_shared.identifiers import canonical_email
from leadline_shared.signing import KeyRing

MAX_BYTES = 900 * 1024  # the app takes request bodies up to 1 MiB; the form's other fields need a little
MAX_ROWS = 20_000
EMAIL_HEADERS = ("email", "e-mail", "email address", "e-mail address", "mail")
NAME_HEADERS = ("name", "full name", "full_name")
FIRST_HEADERS = ("first name", "first_name", "firstname", "given name")
LAST_HEADERS = ("last name", "last_name", "lastname", "surname", "family name")
TOKEN_HEADERS = ("recipient_token", "recipient token", "token")
TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # the link body's SLUG
OUT_COLUMNS = ("email", "name", "recipient_token", "click_url", "open_url", "open_img", "expires_at")


@dataclass(frozen=True)
class Recipient:
    line: int
    email: str
    name: str
    token: str | None


@dataclass
class Recipients:
    """The rows that can be used, and a sentence for each line that cannot."""

    good: list[Recipient] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


class Unreadable(Exception):
    """The file as a whole cannot be read (not text, no email column, too large)."""


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise Unreadable(f"the file is larger than {MAX_BYTES // 1024} KB; split it into smaller files")
    if b"\x00" in data[:4096]:
        raise Unreadable("that is not a CSV text file (save the list as CSV)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # spreadsheets on Windows still save this


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _find(header: list[str], names: Iterable[str]) -> int | None:
    wanted = set(names)
    return next((i for i, h in enumerate(header) if h.strip().lower() in wanted), None)


def read_recipients(data: bytes) -> Recipients:
    """Read a recipients CSV: a header naming an email column (and optionally name, or first and last name, and
    recipient_token), or no header with the email first and the name second. Raises :class:`Unreadable`."""
    text = _decode(data)
    rows = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    out = Recipients()
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise Unreadable(f"line 1: {exc}") from None
    if header is None or not any(cell.strip() for cell in header):
        raise Unreadable("the file is empty")
    email_at = _find(header, EMAIL_HEADERS)
    name_at, first_at, last_at = (
        _find(header, NAME_HEADERS),
        _find(header, FIRST_HEADERS),
        _find(header, LAST_HEADERS),
    )
    token_at = _find(header, TOKEN_HEADERS)
    pending: list[tuple[int, list[str]]] = []
    if email_at is None:
        if "@" not in header[0]:
            raise Unreadable("no email column: name the first row's column 'email', or put the email first")
        email_at, name_at = 0, 1 if len(header) > 1 else None
        pending.append((1, header))
    seen: dict[str, int] = {}

    def cell(row: list[str], at: int | None) -> str:
        return row[at].strip() if at is not None and at < len(row) else ""

    def take(line: int, row: list[str]) -> None:
        if not any(c.strip() for c in row):
            return
        raw = cell(row, email_at)
        email = canonical_email(raw) if raw else None
        if not raw:
            out.problems.append((line, "no email address"))
            return
        if email is None:
            out.problems.append((line, f"{raw[:100]!r} is not an email address"))
            return
        if email in seen:
            out.problems.append((line, f"{email} is listed again (first on line {seen[email]}); left out"))
            return
        token = cell(row, token_at) or None
        if token is not None and not TOKEN.match(token):
            out.problems.append((line, "recipient_token: use letters, digits, '.', '_' or '-' (at most 100)"))
            return
        if len(out.good) >= MAX_ROWS:
            raise Unreadable(f"the file has more than {MAX_ROWS} recipients; split it into smaller files")
        seen[email] = line
        name = cell(row, name_at) or " ".join(filter(None, (cell(row, first_at), cell(row, last_at))))
        out.good.append(Recipient(line, email, name.replace("\x00", "")[:200], token))

    for line, row in pending:
        take(line, row)
    try:
        for row in rows:
            take(rows.line_num, row)
    except csv.Error as exc:
        out.problems.append((rows.line_num, f"the rest of the file cannot be read: {exc}"))
    return out


def recipient_token(ring: KeyRing, email: str) -> str:
    """The derived token of a canonical email under the ring's active key (see the module's docstring)."""
    _, secret = ring.keys[0]
    digest = hmac.digest(secret, b"recipient-token\x00" + email.encode(), "sha256")
    return "r-" + base64.b32encode(digest[:15]).decode().lower()


def _cell(text: str) -> str:
    """A value a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def links_csv(
    recipients: Iterable[Recipient],
    ring: KeyRing,
    collector_url: str,
    payload: dict[str, Any],
    ttl_seconds: int,
) -> str:
    """The output file: one signed link per recipient (``payload``: target, campaign_id, send_id)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(OUT_COLUMNS)
    for r in recipients:
        token_of = r.token or recipient_token(ring, r.email)
        link = mint(ring, collector_url, {**payload, "recipient_token": token_of}, ttl_seconds)
        img = f'<img src="{link["open_url"]}" width="1" height="1" alt="">'
        writer.writerow(
            (_cell(r.email), _cell(r.name), token_of, link["click_url"], link["open_url"], img,
             link["expires_at"].isoformat(timespec="seconds"))
        )  # fmt: skip
    return buf.getvalue()
