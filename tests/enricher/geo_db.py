"""A tiny GeoIP database for the tests, built with mmdb-writer (no downloaded database needed)."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def build_db(path: Path) -> Path:
    """A City-style database with one British /24 and one German IPv6 /32."""
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB"},
            "subdivisions": [{"iso_code": "ENG"}],
            "city": {"names": {"en": "London"}},
        },
    )
    writer.insert_network(IPSet(["2a02:1388::/32"]), {"country": {"iso_code": "DE"}})
    writer.to_db_file(str(path))
    return path
