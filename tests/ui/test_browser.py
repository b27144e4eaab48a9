"""End to end in a real headless Chromium: the real API, a real ``streamlit run``, a person's clicks.

With ``CREDIT_RISK_SCREENSHOTS=1`` the screenshots are also written to
``docs/screenshots/`` (the README's pictures), and a second test, on a store of
its own with two versions, drives all four pages for them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.data import load_applicants
from pipelines.synthetic import generate_applicants
from tests.conftest import Store, TrainedModel, make_store
from tests.support.api import RunningApi, running_api
from tests.support.browser import browser_unavailable_reason, launched_browser
from tests.support.processes import free_port, running_process
from tests.ui.conftest import score_and_monitor
from ui.screenshots import VIEWPORT, applicant_entries, capture_all, open_page, submit_score_form, take

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def _require_browser() -> None:
    reason = browser_unavailable_reason()
    if reason is not None:
        print(f"SKIPPED browser test: {reason}")  # shown with -rs / -s: never a silent skip
        pytest.skip(reason)


def _publish(shot: Path) -> None:
    """Copy a screenshot to docs/screenshots/ when asked to (CREDIT_RISK_SCREENSHOTS set)."""
    if os.environ.get("CREDIT_RISK_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOTS / shot.name)


@contextlib.contextmanager
def running_ui(api_url: str, tmp_path: Path) -> Iterator[str]:
    """``streamlit run ui/app.py`` on a free port, pointed at ``api_url`` through the environment."""
    port = free_port()
    env = {**os.environ, "CREDIT_RISK_API_URL": api_url}
    env.pop("CREDIT_RISK_CONFIG_DIR", None)
    args = [
        sys.executable, "-m", "streamlit", "run", "ui/app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running_process(
        args, env=env, cwd=ROOT, ready_url=f"{url}/_stcore/health", log_path=tmp_path / f"streamlit-{port}.log"
    ) as process:
        yield url
        assert "Traceback" not in process.log_text(), process.log_tail()


def test_a_loan_officer_scores_an_applicant_in_the_browser(
    api: RunningApi, trained: TrainedModel, tmp_path: Path
) -> None:
    _require_browser()
    from playwright.sync_api import expect  # installed: _require_browser skipped otherwise

    with running_ui(api.url, tmp_path) as ui_url, launched_browser() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        open_page(page, ui_url, "", "Score an applicant")
        info = httpx.get(f"{api.url}/v1/model").json()
        submit_score_form(page, applicant_entries(info, duration_in_month=48, purpose="business"))
        # expect() retries until the page settles: Streamlit redraws elements as a run progresses.
        decision = re.compile(r"^(Approved|Referred|Declined)\s*Risk band [A-Z]$")
        expect(page.get_by_test_id("decision-banner")).to_have_text(decision)
        expect(page.get_by_text("Loan duration (months) is 48, which raised the assessed risk.")).to_be_visible()
        expect(page.get_by_text(f"version {trained.version.version}", exact=False).first).to_be_visible()
        expect(page.get_by_role("combobox", name="Purpose")).to_have_value("Business")
        assert "Traceback" not in page.inner_text("body")
        shot = take(page, tmp_path, "score")
    assert shot.stat().st_size > 10_000
    _publish(shot)


@pytest.fixture
def two_versions(tmp_path: Path) -> Store:
    """A store of its own: v1 promoted to production, v2 registered as challenger."""
    from pipelines.promote import promote
    from pipelines.train import train

    own = make_store(tmp_path / "store")
    train(own.config, own.settings)
    promote(own.config, own.settings, reason="first model")
    train(own.config, own.settings)
    return own


def _admin_action(page, form: str, *, token: str, reason: str, button: str) -> None:
    """Fill a Models-page admin form (reason, token) and submit it."""
    box = page.get_by_test_id("stForm").filter(has_text=form)
    box.get_by_role("textbox", name="Reason", exact=True).fill(reason)
    box.get_by_label("Admin token", exact=True).fill(token)
    box.get_by_role("button", name=button).click()


@pytest.mark.skipif(not os.environ.get("CREDIT_RISK_SCREENSHOTS"), reason="set CREDIT_RISK_SCREENSHOTS=1 to refresh")
def test_readme_screenshots_of_every_page(two_versions: Store, tmp_path: Path) -> None:
    """All four pages with real data: a scored batch, a shifted population, a promotion and a rollback."""
    _require_browser()
    from playwright.sync_api import expect

    config = two_versions.config
    source, _ = load_applicants(config.root / config.training.data.path, config.features)
    batch = generate_applicants(source, config.features, rows=25, seed=3).astype(object)
    batch.loc[4, "purpose"] = "yacht"
    batch.loc[9, "duration_in_month"] = "two years"
    with running_api(two_versions, tmp_path=tmp_path) as api, running_ui(api.url, tmp_path) as ui_url:
        with launched_browser() as browser:  # promote v2, then roll back to v1, through the UI
            page = browser.new_page(viewport=VIEWPORT)
            open_page(page, ui_url, "models", "Models")
            _admin_action(page, "Promote a version", token=api.admin_token, reason="monthly retrain", button="Promote")
            expect(page.get_by_text("Promotion done.")).to_be_visible(timeout=120_000)
            _admin_action(
                page, "Roll production back", token=api.admin_token, reason="approval rate fell", button="Roll back"
            )
            expect(page.get_by_text("Rollback done.")).to_be_visible(timeout=120_000)
        # Longer loans than in training: the monitor should show a shift on the duration.
        live = generate_applicants(source, config.features, rows=400, seed=7, shift={"duration_in_month": 1.6})
        score_and_monitor(api, two_versions, json.loads(live.to_json(orient="records")))
        entries = applicant_entries(httpx.get(f"{api.url}/v1/model").json(), duration_in_month=48)
        shots = capture_all(ui_url, tmp_path, batch.to_csv(index=False), entries)
    for shot in shots:
        _publish(shot)
    assert [s.name for s in shots] == ["score.png", "batch.png", "monitoring.png", "models.png"]
