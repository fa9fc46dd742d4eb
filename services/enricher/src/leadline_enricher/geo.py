"""Country and region from a MaxMind-format database file (GeoLite2/GeoIP2 City or Country), when configured."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import maxminddb


class GeoIp:
    """Looks addresses up in an mmdb file; results are cached because visitors repeat."""

    def __init__(self, path: Path, cache_size: int = 50_000) -> None:
        self._reader = maxminddb.open_database(str(path))
        self._cache: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self.cache_size = cache_size

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()

    def lookup(self, ip: str) -> dict[str, Any] | None:
        """``{country, region, city}`` (whichever the database has) or None when unknown."""
        if ip in self._cache:
            return self._cache[ip]
        try:
            record = self._reader.get(ip)
        except ValueError:
            record = None
        geo = _shape(record) if isinstance(record, dict) else None
        self._cache[ip] = geo
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return geo


def _shape(record: dict[str, Any]) -> dict[str, Any] | None:
    geo: dict[str, Any] = {}
    country = record.get("country")
    if isinstance(country, dict) and country.get("iso_code"):
        geo["country"] = country["iso_code"]
    subdivisions = record.get("subdivisions")
    first = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
    if isinstance(first, dict) and (code := first.get("iso_code")):
        geo["region"] = code
    city = record.get("city")
    if isinstance(city, dict) and isinstance(city.get("names"), dict) and (name := city["names"].get("en")):
        geo["city"] = name
    return geo or None
