"""Country and region from a GeoIP database file, read from a tiny database the test builds."""

from __future__ import annotations

from pathlib import Path

from enricher.geo_db import build_db
from leadline_enricher.geo import GeoIp


def test_lookups_give_country_region_and_city(tmp_path: Path) -> None:
    geo = GeoIp(build_db(tmp_path / "geo.mmdb"))
    try:
        assert geo.lookup("81.2.69.160") == {"country": "GB", "region": "ENG", "city": "London"}
        assert geo.lookup("2a02:1388::1") == {"country": "DE"}
        assert geo.lookup("8.8.8.8") is None
        assert geo.lookup("garbage") is None
    finally:
        geo.close()
