"""Screenshots of the four pages for the README, taken in headless Chromium.

``python -m ui.screenshots --url http://127.0.0.1:8501 --api-url http://127.0.0.1:8000
--batch-csv applicants.csv --out docs/screenshots`` against a running UI (which
talks to a running API with a served model). The Score page is filled with the
schema's example applicant (with a longer loan) and submitted; the Batch page
gets the CSV given. Uses the system Chromium through
Playwright (``ui/browser.py``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui.form_schema import read_schema

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Browser, Page

VIEWPORT = {"width": 1400, "height": 1000}
_RUNNING = "[data-testid='stStatusWidget']"
_CONTENT_HEIGHT_JS = """() => Math.max(600, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stMainBlockContainer"]'),
    (e) => e.scrollHeight))"""


def wait_idle(page: Page, *, timeout_ms: float = 30_000, settle_ms: float = 500) -> None:
    """Wait until Streamlit has finished the current run (its 'Running...' widget is gone)."""
    page.wait_for_load_state("networkidle", timeout=timeout_ms)
    page.wait_for_function(
        f'() => !document.querySelector("{_RUNNING}")',
        timeout=timeout_ms,
    )
    page.wait_for_timeout(settle_ms)  # let charts finish their first paint


def open_page(page: Page, base_url: str, path: str, heading: str) -> None:
    page.goto(f"{base_url.rstrip('/')}/{path}")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    wait_idle(page)


Entry = tuple[str, str, str]  # (field label, "select" or "text", what a person picks or types)


def applicant_entries(info: Mapping[str, Any], **overrides: Any) -> list[Entry]:
    """The schema's example applicant as a person enters it: a label, a widget kind and a value per input."""
    schema = read_schema(info)
    record = {**schema.example_record(), **overrides}
    return [
        (spec.label, "select", spec.label_of(record[spec.name]))
        if spec.type == "categorical" or spec.value_labels
        else (spec.label, "text", str(record[spec.name]))
        for spec in schema.inputs
    ]


def enter(page: Page, label: str, kind: str, value: str) -> None:
    """Pick an option or type a value (then leave the field) as a person does."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if kind == "select":
        # A rerun still under way can close a menu that has just opened: open it again then.
        combo = page.get_by_role("combobox", name=label, exact=True)
        option = page.get_by_role("listbox").get_by_role("option", name=value, exact=True)
        for _ in range(3):
            combo.click()
            try:
                option.wait_for(timeout=3_000)
                break
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
                wait_idle(page, settle_ms=300)
        option.click()
    else:
        # Enter commits the value without moving the focus on (Tab would open the next dropdown).
        box = page.get_by_role("textbox", name=label, exact=True)
        box.fill(value)
        box.press("Enter")
    wait_idle(page, settle_ms=100)


def fill_applicant(page: Page, entries: Sequence[Entry]) -> None:
    for label, kind, value in entries:
        enter(page, label, kind, value)


def submit_score_form(page: Page, entries: Sequence[Entry]) -> None:
    """Fill the applicant form, press Score and wait for the decision."""
    fill_applicant(page, entries)
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


def capture_all(
    base_url: str, out: Path, batch_csv: str, entries: Sequence[Entry], *, browser: Browser | None = None
) -> list[Path]:
    """Open each page, drive it to an interesting state, and save ``<page>.png`` under ``out``.

    Uses ``browser`` when given (one Playwright per process), else launches the system Chromium.
    """
    if browser is None:
        from ui.browser import launched_browser

        with launched_browser() as launched:
            return capture_all(base_url, out, batch_csv, entries, browser=launched)
    steps: list[tuple[str, str, str, Callable[[Page], None] | None]] = [
        ("score", "", "Score an applicant", lambda page: submit_score_form(page, entries)),
        ("batch", "batch", "Batch scoring", lambda page: upload_batch(page, batch_csv)),
        ("monitoring", "monitoring", "Monitoring", None),
        ("models", "models", "Models", None),
    ]
    saved = []
    page = browser.new_page(viewport=VIEWPORT)
    for name, path, heading, action in steps:
        open_page(page, base_url, path, heading)
        if action is not None:
            action(page)
        saved.append(take(page, out, name))
    page.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the running UI")
    parser.add_argument("--api-url", default="http://127.0.0.1:8000", help="the API it talks to (for the schema)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--batch-csv", type=Path, required=True, help="CSV uploaded on the Batch page")
    args = parser.parse_args(argv)
    import httpx

    info = httpx.get(f"{args.api_url.rstrip('/')}/v1/model", timeout=30).raise_for_status().json()
    entries = applicant_entries(info, duration_in_month=48)
    for path in capture_all(args.url, args.out, args.batch_csv.read_text(), entries):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
