"""The floor: a bare aiohttp handler answering a 1x1 GIF, nothing else (no cookie, no event, no Kafka); and one
that reads a POSTed JSON body, parses it with orjson and answers JSON, the floor of a Segment call.

Whatever the collector's pixel costs above this is Leadline's own work; comparing the two in one run on one
machine removes the machine from the comparison. :func:`serve_baseline` runs it as a subprocess
(``python -m benchmarks.baseline --port N``) so the load generator and the server never share a process.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
PATH = "/p.gif"
POST_PATH = "/v1/track"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


async def gif(request: web.Request) -> web.StreamResponse:
    """The same bytes and cache header the collector's pixel sends, with no work behind them."""
    return web.Response(body=GIF, content_type="image/gif", headers={"Cache-Control": "no-store, max-age=0"})


async def parse_json(request: web.Request) -> web.StreamResponse:
    """Read the body, parse it, answer what the collector answers a Segment call (``{"success": true}``)."""
    body = orjson.loads(await request.read())
    if not isinstance(body, dict):
        raise web.HTTPBadRequest()
    return web.json_response({"success": True})


def create_app() -> web.Application:
    """The app under test: the GIF and the JSON POST, nothing else."""
    app = web.Application()
    app.router.add_get(PATH, gif)
    app.router.add_post(POST_PATH, parse_json)
    return app


def free_loopback_port() -> int:
    """A TCP port free on the loopback address right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def serve_baseline(port: int | None = None, *, use_uvloop: bool = False, path: str = PATH) -> Iterator[str]:
    """Run the baseline server in a subprocess on a loopback port; yield the URL of ``path``; stop it after."""
    port = port or free_loopback_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.baseline",
            "--port",
            str(port),
            *(["--uvloop"] if use_uvloop else []),
        ],
        cwd=REPO,  # where the benchmarks package is importable from, whatever the caller's directory
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(port):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"baseline server exited with {proc.returncode}: {err.strip()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"baseline server did not listen on {LOOPBACK}:{port} in {START_TIMEOUT_S}s"
                )
            time.sleep(0.05)
        yield f"http://{LOOPBACK}:{port}{path}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the baseline app on the loopback address until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's own loop")
    args = parser.parse_args(argv)
    loop = None
    if args.uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(create_app(), host=LOOPBACK, port=args.port, access_log=None, print=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
