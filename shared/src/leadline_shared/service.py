"""Running a service's aiohttp app: listen, wait for SIGTERM, drain, then clean up.

After SIGTERM the app keeps serving for ``drain_seconds`` with /readyz answering 503, so a load balancer stops
sending traffic before the listener closes; then aiohttp's cleanup contexts run in reverse order (collector:
flush the producer; consumers: commit and leave the group).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from leadline_shared.http import DRAINING

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotStarted(RuntimeError):
    """A component was used before its ``start()`` (or after its ``stop()``)."""


def started(value: T | None, what: str) -> T:
    """``value``, which ``start()`` creates; a clear :class:`NotStarted` when it is not there.

    An ``assert`` would say the same under mypy but vanishes under ``python -O``, leaving an AttributeError on
    None somewhere later.
    """
    if value is None:
        raise NotStarted(f"{what} is used before start() (or after stop())")
    return value


def tune_gc(young_threshold: int = 50_000) -> None:
    """Fewer, cheaper garbage collections for a service that allocates many short-lived objects per event.

    Every request or consumed event allocates dicts and strings, none of them in reference cycles; with the
    default threshold (700) the cyclic collector runs every few events and rescans long-lived tables (parser
    rules, caches, the app). Freezing what exists after start-up and collecting the young generation less often
    keeps the per-event cost down; memory stays bounded because reference counting frees those objects.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 50)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    drain_seconds: float = 0.0,
    runner_class: type[web.AppRunner] = web.AppRunner,
    reuse_port: bool = False,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain and shut down cleanly; with ``reuse_port`` beside other
    processes listening on the same port (SO_REUSEPORT: the collector's workers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = runner_class(app, handle_signals=False, access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True, reuse_port=reuse_port or None)
        await site.start()
        log.info("listening", extra={"host": host, "port": port, "reuse_port": reuse_port})
        await stop.wait()
        log.info("stopping", extra={"drain_seconds": drain_seconds})
        if DRAINING in app:
            app[DRAINING].set()
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")


def run(
    app: web.Application,
    host: str,
    port: int,
    drain_seconds: float = 0.0,
    use_uvloop: bool = False,
    runner_class: type[web.AppRunner] = web.AppRunner,
    reuse_port: bool = False,
) -> int:
    """Blocking entry point for a service's CLI command; returns the exit code."""
    main = serve(app, host, port, drain_seconds, runner_class, reuse_port)
    if use_uvloop:
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
    return 0


BACKGROUND_CANCEL_AGAIN_S = 3.0
"""How long a background loop may take to end after its cancellation before it is cancelled again."""


async def cancel_and_wait(task: asyncio.Future[Any], again_after: float | None = None) -> None:
    """Cancel a background task (or future) and wait for it, so shutdown never leaves it running.

    With ``again_after``, the cancellation is repeated every that many seconds until the task ends. A task can
    lose one: Python 3.11's ``asyncio.wait_for`` drops a cancellation that races with its inner future's result,
    and a library's ``stop()`` may absorb it; a retry loop then goes on for ever and its service never exits
    (crm-core's relays did, after a PostgreSQL restart). The interval leaves a task's own clean-up that long.
    """
    if again_after is None:
        task.cancel()
    else:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=again_after)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def watch_task(name: str, task: asyncio.Task[None]) -> Callable[[], Awaitable[bool]]:
    """A readiness check that fails once the background task has died; its crash is logged once."""

    def _done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("background task died", extra={"task": name}, exc_info=t.exception())

    task.add_done_callback(_done)

    async def check() -> bool:
        return not task.done()

    return check


@contextlib.asynccontextmanager
async def background(name: str, coro: Awaitable[None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coro`` as a task for the body's duration; cancelled (again every few seconds, should it swallow
    the cancellation) and awaited on exit."""
    task: asyncio.Task[None] = asyncio.ensure_future(coro)
    task.set_name(name)
    try:
        yield task
    finally:
        await cancel_and_wait(task, again_after=BACKGROUND_CANCEL_AGAIN_S)
