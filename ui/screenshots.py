"""Screenshots of every page for the README, taken in headless Chromium.

``python -m ui.screenshots --url http://127.0.0.1:8501 --api-url http://127.0.0.1:8000
--batch-csv applicants.csv --out docs/screenshots`` against a running UI (which
talks to a running API with a served model). Every page of ``ui.navigation.PAGES``
is opened: the Score page is filled with the schema's example applicant (with a
longer loan) and submitted; the Batch page gets the CSV given; with
``CREDIT_RISK_ADMIN_TOKEN`` set the other pages are seen as an admin sees them,
the Decisions page opening ``--request-id`` and the Review queue its first case.
Uses the system Chromium through Playwright (``ui/browser.py``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui.form_schema import read_schema
from ui.navigation import PAGES

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
                pass
            # a long list draws only the options in view (a queue of a hundred cases): type to narrow it
            page.keyboard.type(value)
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


def open_tab(page: Page, name: str, shows: str) -> None:
    """Open a tab and wait for the text box it holds: a rerun still under way can put the first tab back."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_role("textbox", name=shows, exact=True)
    for _ in range(3):
        page.get_by_role("tab", name=name, exact=True).click()
        try:
            box.wait_for(state="visible", timeout=5_000)
            return
        except PlaywrightTimeout:
            wait_idle(page, settle_ms=300)
    box.wait_for(state="visible", timeout=5_000)


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


@dataclass(frozen=True)
class Walkthrough:
    """What the pages are driven with: the Score page's entries, the Batch page's file, a role token for
    the pages that need one and the decision the Decisions page opens (the Review queue opens its first
    waiting case by itself)."""

    entries: Sequence[Entry]
    batch_csv: str
    token: str | None = None
    request_id: str | None = None


def sign_in(page: Page, token: str) -> None:
    """The sidebar's role token, as a person enters it (once per browser session)."""
    box = page.get_by_label("Your role token", exact=True)
    box.fill(token)
    box.press("Enter")
    box.blur()  # the picture shows the sidebar at rest, not the box in focus
    wait_idle(page, settle_ms=300)


def look_up_decision(page: Page, request_id: str) -> None:
    box = page.get_by_role("textbox", name="Request id", exact=True)
    box.fill(request_id)
    page.get_by_role("button", name="Look up").click()
    page.get_by_text("Principal reasons").first.wait_for(timeout=60_000)
    wait_idle(page)


def show_first_case(page: Page) -> None:
    """The Review queue opens the first waiting case: wait for it."""
    page.get_by_role("heading", name=re.compile(r"^Case \d+:")).wait_for(timeout=60_000)
    wait_idle(page)


def _steps(walk: Walkthrough) -> dict[str, Callable[[Page], None] | None]:
    """What is done on each page before its picture: every page of ``PAGES`` has an entry."""
    return {
        "score": lambda page: submit_score_form(page, walk.entries),
        "batch": lambda page: upload_batch(page, walk.batch_csv),
        "monitoring": None,
        "performance": None,
        "models": None,
        "experiments": None,
        "decisions": (lambda page: look_up_decision(page, walk.request_id)) if walk.request_id else None,
        "review": show_first_case if walk.token else None,
    }


def capture_all(base_url: str, out: Path, walk: Walkthrough, *, browser: Browser | None = None) -> list[Path]:
    """Open every page of the UI (``ui.navigation.PAGES``), drive it to a realistic state and save
    ``<page>.png`` under ``out``, in the sidebar's order.

    Each page is opened afresh (a new browser session), so the role token is entered on each. Uses
    ``browser`` when given (one Playwright per process), else launches the system Chromium.
    """
    if browser is None:
        from ui.browser import launched_browser

        with launched_browser() as launched:
            return capture_all(base_url, out, walk, browser=launched)
    steps = _steps(walk)
    missing = [spec.name for spec in PAGES if spec.name not in steps]
    if missing:
        raise ValueError(f"no screenshot step for the page(s) {', '.join(missing)}: add one in ui/screenshots.py")
    saved = []
    page = browser.new_page(viewport=VIEWPORT)
    for spec in PAGES:
        open_page(page, base_url, spec.path, spec.heading)
        if walk.token and spec.name not in ("score", "batch"):  # a loan officer's pages need no token
            sign_in(page, walk.token)
        action = steps[spec.name]
        if action is not None:
            action(page)
        saved.append(take(page, out, spec.name))
    page.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the running UI")
    parser.add_argument("--api-url", default="http://127.0.0.1:8000", help="the API it talks to (for the schema)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--batch-csv", type=Path, required=True, help="CSV uploaded on the Batch page")
    parser.add_argument("--request-id", help="a decision to open on the Decisions page")
    args = parser.parse_args(argv)
    import httpx

    info = httpx.get(f"{args.api_url.rstrip('/')}/v1/model", timeout=30).raise_for_status().json()
    walk = Walkthrough(
        entries=applicant_entries(info, duration_in_month=48),
        batch_csv=args.batch_csv.read_text(),
        token=os.environ.get("CREDIT_RISK_ADMIN_TOKEN") or None,  # the pages an admin sees, when set
        request_id=args.request_id,
    )
    for path in capture_all(args.url, args.out, walk):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
