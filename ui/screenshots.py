"""Screenshots of the four pages for the README, taken in headless Chromium.

``python -m ui.screenshots --url http://127.0.0.1:8501 --out docs/screenshots``
against a running UI (which talks to a running API with a served model). The
Score page is filled with the form's defaults and submitted; the Batch page
gets a small CSV with one bad row. Uses the system Chromium through
Playwright (``tests/support/browser.py``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page

VIEWPORT = {"width": 1400, "height": 1000}
_RUNNING = "[data-testid='stStatusWidget']"
_CONTENT_HEIGHT_JS = """() => Math.max(600, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stMainBlockContainer"]'),
    (e) => e.scrollHeight))"""


def wait_idle(page: Page, *, timeout_ms: float = 30_000) -> None:
    """Wait until Streamlit has finished the current run (its 'Running...' widget is gone)."""
    page.wait_for_load_state("networkidle", timeout=timeout_ms)
    page.wait_for_function(
        f'() => !document.querySelector("{_RUNNING}")',
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)  # let charts finish their first paint


def open_page(page: Page, base_url: str, path: str, heading: str) -> None:
    page.goto(f"{base_url.rstrip('/')}/{path}")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    wait_idle(page)


def submit_score_form(page: Page) -> None:
    """Submit the applicant form (defaults, with a longer loan) and wait for the decision."""
    duration = page.get_by_role("spinbutton", name="Loan duration (months)")
    duration.fill("48")
    duration.press("Tab")
    page.get_by_role("button", name="Score applicant").click()
    page.get_by_text("Principal reasons").wait_for(timeout=60_000)
    wait_idle(page)


def upload_batch(page: Page, csv_text: str) -> None:
    """Upload ``csv_text``, wait for the check, score the valid rows and wait for the results."""
    page.locator("input[type='file']").set_input_files(
        files=[{"name": "applicants.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    page.get_by_role("button", name="valid row").wait_for(timeout=60_000)
    page.get_by_role("button", name="valid row").click()
    page.get_by_role("heading", name="Results").wait_for(timeout=60_000)
    wait_idle(page)


def take(page: Page, out: Path, name: str) -> Path:
    """Save the whole page: Streamlit scrolls inside its main container, so grow the viewport to fit it."""
    out.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(_CONTENT_HEIGHT_JS)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(height) + 160, 6000)})
    page.wait_for_timeout(800)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


def capture_all(base_url: str, out: Path, batch_csv: str) -> list[Path]:
    """Open each page, drive it to an interesting state, and save ``<page>.png`` under ``out``."""
    from tests.support.browser import launched_browser

    steps: list[tuple[str, str, str, Callable[[Page], None] | None]] = [
        ("score", "", "Score an applicant", submit_score_form),
        ("batch", "batch", "Batch scoring", lambda page: upload_batch(page, batch_csv)),
        ("monitoring", "monitoring", "Monitoring", None),
        ("models", "models", "Models", None),
    ]
    saved = []
    with launched_browser() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        for name, path, heading, action in steps:
            open_page(page, base_url, path, heading)
            if action is not None:
                action(page)
            saved.append(take(page, out, name))
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the running UI")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--batch-csv", type=Path, required=True, help="CSV uploaded on the Batch page")
    args = parser.parse_args(argv)
    for path in capture_all(args.url, args.out, args.batch_csv.read_text()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
