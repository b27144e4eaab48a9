"""The Experiments page in a real headless Chromium: start a shadow, see the comparison, stop it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from credit_risk.lifecycle import ledger
from tests.experiments.conftest import TwoModels
from tests.support.api import RunningApi, running_api
from tests.support.browser import browser_unavailable_reason, launched_browser, running_ui
from tests.support.required import require_component
from ui.screenshots import open_page, wait_idle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

APPLICANTS = 20


@pytest.fixture
def api(two: TwoModels, tmp_path: Path) -> Iterator[RunningApi]:
    with running_api(two.store, tmp_path=tmp_path) as running:
        yield running


@pytest.fixture
def page(api: RunningApi, tmp_path: Path) -> Iterator[Any]:
    require_component(browser_unavailable_reason())
    with running_ui(api.url, tmp_path / "ui") as url, launched_browser() as browser:
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.ui_url = url
        yield tab
        tab.close()


def _type(box: Any, page: Any, label: str, text: str) -> None:
    field = box.get_by_label(label, exact=True)
    field.fill(text)
    field.press("Enter")
    wait_idle(page, settle_ms=200)


def _wait_logged(api: RunningApi, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=30) as client:
        experiment_id = client.get(f"{api.url}/v1/experiments").json()["experiments"][0]["id"]
        while True:
            report = client.get(f"{api.url}/v1/experiments/{experiment_id}").json()["report"]
            if report["applicants"] == APPLICANTS:
                return
            assert time.monotonic() < deadline, f"the log holds {report['applicants']} of the experiment's decisions"
            time.sleep(0.5)


def test_a_shadow_started_on_the_page_shows_its_comparison_and_stops(
    two: TwoModels, api: RunningApi, page: Any
) -> None:
    from playwright.sync_api import expect

    open_page(page, page.ui_url, "experiments", "Experiments")
    start = page.locator(".st-key-experiment-start-form")
    _type(start, page, "Share of applicants (%)", "100")
    _type(start, page, "Reason", "shadow v2 on the page")
    _type(page, page, "Your role token", api.admin_token)  # once per session, in the sidebar
    start.get_by_role("button", name="Start").click()
    wait_idle(page)
    expect(page.get_by_text("Experiment started.", exact=False)).to_be_visible(timeout=120_000)

    applicant = two.store.config.features.example_record()
    with httpx.Client(trust_env=False, timeout=30) as client:
        for i in range(APPLICANTS):
            body = {**applicant, "credit_amount": 1000 + 500 * i, "applicant_id": f"page-{i}"}
            assert client.post(f"{api.url}/v1/predict", json=body).status_code == 200
    _wait_logged(api)  # the log writes its Parquet files every second
    page.reload()  # a new browser session: the sidebar's token is asked again
    wait_idle(page)
    _type(page, page, "Your role token", api.admin_token)
    verdicts = page.locator(".st-key-experiment-verdicts")
    expect(verdicts).to_contain_text(f"of {APPLICANTS} shadowed applicants differently", timeout=60_000)
    expect(verdicts).to_contain_text("Not yet enough to tell")
    expect(page.get_by_text("Where the versions disagree", exact=False)).to_be_visible()

    stop = page.locator(".st-key-experiment-stop-form")
    _type(stop, page, "Reason", "seen enough on the page")
    stop.get_by_role("button", name="Stop").click()
    wait_idle(page)
    expect(page.get_by_text("Experiment stopped.", exact=False)).to_be_visible(timeout=60_000)
    name = two.store.config.model.registry.model_name
    actions = [(e.action, e.reason) for e in ledger.control_history(two.store.client, name, "experiment")][-2:]
    assert actions == [("start", "shadow v2 on the page"), ("stop", "seen enough on the page")]
