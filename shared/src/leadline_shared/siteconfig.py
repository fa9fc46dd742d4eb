"""Entries of the compacted ``crm.config.v1`` topic: forms, affiliate ads and Segment write keys.

crm-core writes them, the collector reads the whole topic at start and follows it after. Defined once here so
both sides agree on keys and shapes. A tombstone (value None) deletes an entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, kw_only=True)
class FormConfig:
    """A web form the collector accepts submissions for."""

    key: str
    fields: tuple[str, ...]
    thank_you_url: str
    allowed_origins: tuple[str, ...] = ()
    required: tuple[str, ...] = ("email",)

    def entry_key(self) -> str:
        """Topic key of this entry."""
        return f"form:{self.key}"


@dataclass(frozen=True, kw_only=True)
class AdConfig:
    """An affiliate's ad and the only URL its clicks may be sent to."""

    affiliate_id: str
    ad_id: str
    landing_url: str
    name: str = ""

    def entry_key(self) -> str:
        """Topic key of this entry."""
        return f"ad:{self.affiliate_id}/{self.ad_id}"


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """A Segment-style write key and the site it belongs to."""

    write_key: str
    name: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def entry_key(self) -> str:
        """Topic key of this entry."""
        return f"source:{self.write_key}"


Entry = FormConfig | AdConfig | SourceConfig
_KINDS: dict[str, type[Entry]] = {"form": FormConfig, "ad": AdConfig, "source": SourceConfig}


def encode(entry: Entry) -> tuple[bytes, bytes]:
    """(key, value) for the topic."""
    return entry.entry_key().encode(), orjson.dumps(dataclasses.asdict(entry))


def decode(key: bytes, value: bytes | None) -> tuple[str, Entry | None]:
    """(key, entry) from the topic; entry None for a tombstone. Raises ValueError on an unknown kind."""
    text = key.decode()
    kind = text.split(":", 1)[0]
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown config entry kind {kind!r}")
    if value is None:
        return text, None
    doc = orjson.loads(value)
    for name, f in ((f.name, f) for f in dataclasses.fields(cls)):
        if name in doc and isinstance(doc[name], list) and "tuple" in str(f.type):
            doc[name] = tuple(doc[name])
    return text, cls(**doc)
