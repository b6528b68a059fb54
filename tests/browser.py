"""A real browser for the suites: Debian's chromium driven by Playwright.

Playwright's own browser downloads are not used (the machines that run the
suite have no access to them); the distribution's chromium is. Without it the
browser tests skip, or fail under ``REQUIRE_SERVICES=1`` as CI sets, so a
missing browser can never turn a red suite green.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ambito_common.testing import require
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
#: No sandbox (containers), and no traffic of its own: every request a test sees comes from the page.
#: Italian UI, so date controls read gg/mm/aaaa as in an Italian user's browser. On Linux chromium
#: takes its UI language from LANGUAGE/LANG rather than --lang, and needs Debian's chromium-l10n
#: (/usr/lib/chromium/locales/it.pak); without it, it falls back to English formats.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--lang=it-IT"]
CHROMIUM_ENV = {"LANGUAGE": "it"}


def require_chromium() -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when chromium is not installed."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is not installed (apt-get install chromium)")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium, closed at the end."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS, env={**os.environ, **CHROMIUM_ENV})
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page reported while a test used it: console errors, uncaught exceptions, requests."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Page) -> PageLog:
        log = cls()
        page.on("console", log._console)
        page.on("pageerror", lambda error: log.errors.append(f"uncaught: {error}"))
        page.on("request", log._request)
        return log

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def clear(self) -> None:
        self.errors.clear()
        self.requests.clear()
