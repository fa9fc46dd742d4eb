"""The baseline server answers exactly what the collector's pixel answers, and stops with its context.

If the baseline served something else (an error page, a bigger body) the comparison in docs/benchmarks.md
would be meaningless. Loopback only; about half a second.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import aiohttp
from benchmarks.baseline import GIF, serve_baseline


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_baseline_serves_the_pixel_gif_on_loopback_then_stops() -> None:
    """GET /p.gif gives the 43-byte GIF with no-store; after the block the port no longer accepts."""
    with serve_baseline() as url:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        assert parts.path == "/p.gif"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert response.content_type == "image/gif"
            assert response.headers["Cache-Control"] == "no-store, max-age=0"
            assert await response.read() == GIF
        port = parts.port
        assert port is not None
        assert _port_open(port)
    assert not _port_open(port)
