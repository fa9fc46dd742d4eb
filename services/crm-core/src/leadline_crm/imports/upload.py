"""Reading an upload without the app's 1 MB body limit, and never more than :data:`csvfile.MAX_BYTES`: a multipart
form (the file and the options as fields) or a CSV body (the options in the query). Both the API and the web app's
upload read through here, so both refuse the same files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web

from leadline_crm.imports.csvfile import MAX_BYTES

FIELD_BYTES = 64 * 1024  # a form field other than the file (the mapping's JSON is the largest)
CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/octet-stream")


class TooLarge(ValueError):
    """The upload is larger than an import takes."""


@dataclass
class Upload:
    """The file's bytes and name, and the other fields sent with it."""

    content: bytes = b""
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    has_file: bool = False


async def _part(part: BodyPartReader, cap: int) -> bytes:
    out = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        out += chunk
        if len(out) > cap:
            raise TooLarge(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it")
    return bytes(out)


async def read_multipart(request: web.Request, file_field: str = "file") -> Upload:
    """The multipart form's file (``file_field``) and its text fields."""
    upload = Upload()
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.name == file_field:
            upload.content = await _part(part, MAX_BYTES)
            upload.filename = part.filename or ""
            upload.has_file = True
        else:
            raw = await _part(part, FIELD_BYTES)
            upload.fields[part.name] = raw.decode("utf-8", "replace")
    return upload


async def read_body(request: web.Request) -> Upload:
    """A CSV body; options from the query string."""
    out = bytearray()
    while chunk := await request.content.read(64 * 1024):
        out += chunk
        if len(out) > MAX_BYTES:
            raise TooLarge(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it")
    return Upload(bytes(out), "", dict(request.query), True)


async def read(request: web.Request) -> Upload:
    """The upload, as multipart or as a CSV body; web.HTTPUnsupportedMediaType for anything else."""
    if request.content_type == "multipart/form-data":
        return await read_multipart(request)
    if request.content_type in CSV_TYPES:
        return await read_body(request)
    raise web.HTTPUnsupportedMediaType(
        text="send the CSV file as multipart/form-data (field file) or as a text/csv body"
    )
