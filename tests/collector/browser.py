"""Headless Chromium for tests: Debian's ``chromium`` driven by Playwright (browser downloads do not work here).

Usage::

    from collector.browser import browser_page

    async with browser_page() as page:
        await page.goto(url)

A module with many browser tests can launch once with ``launch_browser()`` and open each test's page with
``new_page(browser)``: a fresh context per page keeps cookies and storage apart, and saves ~1 s per test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


def host_rules(*hosts: str, ip: str = "127.0.0.1") -> str:
    """A Chromium flag resolving ``hosts`` (wildcards allowed) to ``ip``: real cross-origin pages on one machine."""
    return "--host-resolver-rules=" + ",".join(f"MAP {h} {ip}" for h in hosts)


async def _bounded_close(closing: Awaitable[None], what: str, timeout: float = 10.0) -> None:
    """Close with a deadline: Chromium under load has been seen to never answer a close (with a keepalive
    beacon still in flight), which hung the test run. Assertions have run by then; only cleanup is cut short."""
    try:
        await asyncio.wait_for(closing, timeout)
    except TimeoutError:
        logging.getLogger(__name__).warning(
            "%s did not close within %.0fs; left to the browser's shutdown", what, timeout
        )


@asynccontextmanager
async def launch_browser(*, args: Sequence[str] = ()) -> AsyncIterator[Browser]:
    """Start Playwright and Chromium (``args`` are extra Chromium flags); both stop on exit."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args])
        try:
            yield browser
        finally:
            await _bounded_close(browser.close(), "browser")


@asynccontextmanager
async def new_page(
    browser: Browser, *, init_scripts: Sequence[str] = (), **context_options: Any
) -> AsyncIterator[Page]:
    """A page in a fresh browser context (own cookies and storage), closed on exit.

    ``init_scripts`` run in every document before its own scripts (e.g. to fake
    ``navigator.globalPrivacyControl``); ``context_options`` go to ``Browser.new_context``.
    """
    context = await browser.new_context(**context_options)
    try:
        for script in init_scripts:
            await context.add_init_script(script)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        yield page
    finally:
        await _bounded_close(context.close(), "browser context")


@asynccontextmanager
async def browser_page(
    *, init_scripts: Sequence[str] = (), args: Sequence[str] = (), **context_options: Any
) -> AsyncIterator[Page]:
    """A fresh page in its own browser, for a test that needs just one; see ``new_page`` for the options."""
    async with (
        launch_browser(args=args) as browser,
        new_page(browser, init_scripts=init_scripts, **context_options) as page,
    ):
        yield page
