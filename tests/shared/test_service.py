"""Background loops end when their service stops, even one that swallows a cancellation (service.background)."""

from __future__ import annotations

import asyncio
import time

from leadline_shared import service


async def _swallows_one_cancellation(log: list[str]) -> None:
    """A retry loop that loses the first cancellation, as a loop meeting Python 3.11's wait_for race does."""
    swallowed = False
    while True:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if swallowed:
                log.append("ended")
                raise
            swallowed = True
            log.append("swallowed")


async def test_background_cancels_again_until_the_task_ends() -> None:
    log: list[str] = []
    started = time.monotonic()
    async with asyncio.timeout(service.BACKGROUND_CANCEL_AGAIN_S + 5):
        async with service.background("swallower", _swallows_one_cancellation(log)) as task:
            await asyncio.sleep(0.1)
    assert task.done()
    assert task.cancelled()
    assert log == ["swallowed", "ended"]
    assert time.monotonic() - started < service.BACKGROUND_CANCEL_AGAIN_S + 2


async def test_a_task_that_ends_at_once_is_not_cancelled_twice() -> None:
    cancels = 0

    async def polite() -> None:
        nonlocal cancels
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancels += 1
            await asyncio.sleep(0.2)  # its own short clean-up is left alone
            raise

    async with service.background("polite", polite()):
        await asyncio.sleep(0)
    assert cancels == 1
