"""A real browser for the console tests: Playwright driving Debian's Chromium, offline.

Playwright cannot download browsers here, so it drives `/usr/bin/chromium` (OMNIGATE_CHROMIUM
names another). Every request that is not to the gateway under test is aborted and counted, so a
page that needs the internet fails its test instead of passing on a machine that has one.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, async_playwright

__all__ = ["Browser", "browser_page", "chromium_path", "screenshot"]

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "var" / "test-output"


def chromium_path() -> str:
    return os.environ.get("OMNIGATE_CHROMIUM", "/usr/bin/chromium")


@dataclass
class Browser:
    page: Page
    base_url: str
    blocked: list[str] = field(default_factory=list)  # requests to any other host, refused
    csp_violations: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def browser_page(port: int) -> AsyncIterator[Browser]:
    """A fresh browser context on the gateway at `port`, with the rest of the network cut off."""
    if not Path(chromium_path()).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Chromium at {chromium_path()} (.ci/run installs Debian's chromium)")
        pytest.skip(f"no Chromium at {chromium_path()}: apt-get install chromium")
    base_url = f"http://127.0.0.1:{port}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = await browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        page = await context.new_page()
        session = Browser(page, base_url)

        async def only_the_gateway(route: Route) -> None:
            if route.request.url.startswith(base_url + "/") or route.request.url.startswith(("data:", "blob:")):
                await route.continue_()
            else:
                session.blocked.append(route.request.url)
                await route.abort("internetdisconnected")

        await context.route("**/*", only_the_gateway)
        page.on("console", lambda m: _note_console(session, m.type, m.text))
        try:
            yield session
        finally:
            await context.close()
            await browser.close()


def _note_console(session: Browser, kind: str, text: str) -> None:
    if "Content Security Policy" in text or "Content-Security-Policy" in text:
        session.csp_violations.append(text)
    elif kind == "error":
        session.console_errors.append(text)


async def screenshot(session: Browser, request: pytest.FixtureRequest) -> Path:
    """A full-page screenshot under var/test-output/<test name>/, for a person to look at."""
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "screenshot.png"
    await session.page.screenshot(path=str(path), full_page=True)
    return path
