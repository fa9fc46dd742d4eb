"""JSON Schemas of values that many operations take (names, texts, slugs, URLs, ids, dates, money)."""

from __future__ import annotations

from typing import Any

TEXT: dict[str, Any] = {"type": "string", "maxLength": 500}
LONG_TEXT: dict[str, Any] = {"type": "string", "maxLength": 10000}
NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}
SLUG: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"}
URL: dict[str, Any] = {
    "type": "string",
    "pattern": "^(https?://[^\\s]{1,2000}|/[^\\s]{0,2000})$",
    "maxLength": 2000,
}
ABS_URL: dict[str, Any] = {"type": "string", "pattern": "^https?://[^\\s]{1,2000}$", "maxLength": 2000}
UUID_S: dict[str, Any] = {"type": "string", "format": "uuid"}
DATE: dict[str, Any] = {"type": "string", "format": "date"}
DATETIME: dict[str, Any] = {"type": "string", "format": "date-time"}
MONEY: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1e11}
STRINGS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 200},
    "maxItems": 100,
}
