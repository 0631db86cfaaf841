"""A real browser for the end-to-end tests: pip's Playwright driving Debian's Chromium.

Playwright's own browser download is not available here, so the system Chromium at
/usr/bin/chromium is launched through `executable_path`. One browser per session; every
test gets fresh, isolated contexts (cookies, localStorage) from `new_context`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.support import ROOT

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
# Generous enough for a cold Rasa/KB answer, short enough that a broken page fails quickly.
DEFAULT_TIMEOUT_MS = 20_000

expect.set_options(timeout=DEFAULT_TIMEOUT_MS)

NewContext = Callable[..., Awaitable["BrowserContext"]]  # noqa: F821
NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (setup installs Debian's chromium package)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def new_context(browser) -> AsyncIterator[NewContext]:
    """A factory of fresh browser contexts (one per person in the test), closed afterwards.

    An uncaught JavaScript exception on any page fails the test at teardown.
    """
    contexts = []
    page_errors: list[str] = []

    async def make(base_url: str, **options):
        context = await browser.new_context(
            base_url=base_url, locale="zh-CN", viewport={"width": 1280, "height": 860}, **options
        )
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.on("page", lambda page: page.on("pageerror", lambda exc: page_errors.append(f"{page.url}: {exc}")))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()
    assert not page_errors, f"uncaught JavaScript errors: {page_errors}"


@pytest.fixture
def new_page(new_context: NewContext) -> NewPage:
    """A factory of fresh pages, each in its own browser context (one person each)."""

    async def make(base_url: str, **options: Any) -> Page:
        return await (await new_context(base_url, **options)).new_page()

    return make


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
