"""The system Chromium, headless, driven by Playwright: for the documentation's screenshots
(:mod:`ui.screenshots`) and the browser tests (``tests/support/browser.py`` re-exports it).

Playwright is given Debian's Chromium (``/usr/bin/chromium``); nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Browser

# Flags needed to run Debian's Chromium headless as root in a sandbox-less,
# offline container. --headless is added by Playwright itself when
# headless=True; it is listed here for callers that start chromium directly
# (those must also pass a fresh, empty --user-data-dir).
CHROMIUM_ARGS: list[str] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_DEFAULT_EXECUTABLE = "/usr/bin/chromium"


def chromium_executable() -> str | None:
    """Path to the system Chromium, or None if it is not installed."""
    if os.access(_DEFAULT_EXECUTABLE, os.X_OK):
        return _DEFAULT_EXECUTABLE
    return shutil.which("chromium")


def browser_unavailable_reason() -> str | None:
    """Why :func:`launched_browser` cannot work here, or None if it can."""
    if chromium_executable() is None:
        return "chromium not installed (/usr/bin/chromium missing); run scripts/install-system-deps.sh"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed"
    return None


@contextlib.contextmanager
def launched_browser(**launch_kwargs: Any) -> Iterator[Browser]:
    """Yield a headless Playwright ``Browser`` running the system Chromium.

    Extra keyword arguments go to ``chromium.launch`` (e.g. ``slow_mo``);
    ``args`` given there are appended to :data:`CHROMIUM_ARGS`. The browser
    and the Playwright driver are closed on exit.
    """
    reason = browser_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    extra_args = list(launch_kwargs.pop("args", []))
    launch_kwargs.setdefault("timeout", 60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(),
            headless=True,
            args=[*CHROMIUM_ARGS, *extra_args],
            **launch_kwargs,
        )
        try:
            yield browser
        finally:
            browser.close()
