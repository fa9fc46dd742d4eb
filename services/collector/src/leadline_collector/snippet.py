"""``GET /s.js``: the capture snippet, read once at start, served with a strong ETag, caching and gzip.

Sites embed the snippet on every page, so it must be cheap to revalidate: a 304 costs no body, and the
five-minute ``max-age`` bounds how long a fixed snippet takes to reach every visitor.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

CACHE_CONTROL = "public, max-age=300"
CONTENT_TYPE = "application/javascript; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Snippet:
    """The snippet's bytes, its gzip encoding, and the strong ETag of the uncompressed body."""

    body: bytes
    gzipped: bytes
    etag: str

    @property
    def gzip_etag(self) -> str:
        """Strong validators are per representation (RFC 9110 §8.8.1): the gzip encoding gets its own."""
        return self.etag[:-1] + '-gzip"'


def load_snippet() -> Snippet:
    """Read ``static/s.js`` from the package and prepare both encodings once."""
    body = resources.files("leadline_collector").joinpath("static", "s.js").read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Snippet(body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0), etag=f'"{digest}"')


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` and ``*;q=0`` forbid it)."""
    wildcard: bool | None = None
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        coding = token.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            wildcard = q > 0
    return bool(wildcard)


def _matches(if_none_match: str, etags: tuple[str, ...]) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): ``W/`` prefixes are ignored."""
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or any(tag in candidates for tag in etags)


def response(request: web.Request, snippet: Snippet) -> web.Response:
    """The snippet for this request: 304 when the client's copy is current, gzip when it is accepted."""
    use_gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    etag = snippet.gzip_etag if use_gzip else snippet.etag
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",
    }
    if _matches(request.headers.get("If-None-Match", ""), (snippet.etag, snippet.gzip_etag)):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = CONTENT_TYPE
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=snippet.gzipped, headers=headers)
    return web.Response(body=snippet.body, headers=headers)
