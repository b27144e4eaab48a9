"""The Models page in a real headless Chromium, as a model owner uses it.

A store of its own with two versions (v1 in production, v2 the challenger),
one API and one UI process for the module. Each test first puts production
where it needs it through the API, so the tests do not depend on their order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Store, two_versions_store
from tests.support.api import RunningApi, running_api
from tests.support.browser import browser_unavailable_reason, launched_browser, running_ui
from tests.support.required import require_component
from ui.screenshots import open_page, wait_idle

pytestmark = pytest.mark.integration

NARROWEST = {"width": 1280, "height": 1000}


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """v1 promoted to production, v2 registered as challenger."""
    own, _, _ = two_versions_store(tmp_path_factory)
    return own


@pytest.fixture(scope="module")
def admin_api(two_versions: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_api(two_versions, tmp_path=tmp_path_factory.mktemp("models-api")) as api:
        yield api


@pytest.fixture(scope="module")
def ui_url(admin_api: RunningApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_component(browser_unavailable_reason())
    with running_ui(admin_api.url, tmp_path_factory.mktemp("models-ui")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(ui_url: str) -> Iterator[Any]:
    with launched_browser() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    tab = browser.new_page(viewport=NARROWEST)
    yield tab
    tab.close()


def _expect():
    from playwright.sync_api import expect

    return expect


def _production(api: RunningApi) -> str:
    return httpx.get(f"{api.url}/v1/registry", timeout=30).json()["aliases"]["production"]


def _admin(api: RunningApi, action: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{api.url}/v1/admin/{action}", json=body, headers=api.admin_headers(), timeout=300)


def _production_is(api: RunningApi, version: str) -> None:
    """Put production on ``version`` through the API (a named rollback, or a promotion)."""
    if _production(api) != version:
        response = _admin(api, "rollback", version=version, reason="test set-up")
        if response.status_code >= 300:
            _admin(api, "promote", version=version, reason="test set-up", force=True).raise_for_status()
    assert _production(api) == version


def _form(page: Any, action: str) -> Any:
    """The box of one admin form ("promote" or "rollback"), with its outcome."""
    return page.locator(f".st-key-{action}-form")


def _fill(box: Any, page: Any, *, reason: str, token: str) -> None:
    box.get_by_role("textbox", name="Reason", exact=True).fill(reason)
    box.get_by_role("textbox", name="Reason", exact=True).press("Enter")
    wait_idle(page, settle_ms=200)
    page.get_by_label("Your role token", exact=True).fill(token)  # once per session, in the sidebar
    page.get_by_label("Your role token", exact=True).press("Enter")
    wait_idle(page, settle_ms=200)


def _near(page: Any, outcome: Any, button: Any) -> None:
    """The outcome is on screen, just under the button that was pressed."""
    _expect()(outcome).to_be_in_viewport()
    below = outcome.bounding_box()["y"] - button.bounding_box()["y"]
    assert 0 < below < 350, f"outcome {below:.0f} px below the button"


def test_a_dry_run_shows_the_gates_and_moves_nothing(admin_api: RunningApi, ui_url: str, page: Any) -> None:
    expect = _expect()
    _production_is(admin_api, "1")
    open_page(page, ui_url, "models", "Models")
    box = _form(page, "promote")
    _fill(box, page, reason="check v2", token=admin_api.admin_token)
    button = box.get_by_role("button", name="Check the gates (dry run)")
    button.click()
    wait_idle(page)
    probe = _admin(admin_api, "promote", version="2", reason="probe", dry_run=True)
    if probe.status_code == 422 and "dry_run" in probe.text:  # a service from before dry runs
        outcome = box.get_by_test_id("stAlert").filter(has_text="This scoring service does not offer a dry run yet")
    else:
        outcome = box.get_by_test_id("stAlert").filter(
            has_text=re.compile(r"Dry run: v2 would be (promoted|refused)\. Nothing was moved\.")
        )
        # each gate a sentence with its figure and verdict
        sentence = re.compile(r"Holdout ROC-AUC at least [0-9.]+: [0-9.]+, (passed|failed)\.")
        expect(box.get_by_text(sentence)).to_be_visible()
    expect(outcome).to_be_visible(timeout=120_000)
    _near(page, outcome, button)
    assert _production(admin_api) == "1", "a dry run never moves the alias"


def test_promote_names_the_move_asks_to_confirm_and_shows_the_outcome_by_the_button(
    admin_api: RunningApi, ui_url: str, page: Any
) -> None:
    expect = _expect()
    _production_is(admin_api, "1")
    open_page(page, ui_url, "models", "Models")
    box = _form(page, "promote")
    _fill(box, page, reason="monthly retrain", token=admin_api.admin_token)
    box.get_by_role("button", name="Promote...").click()
    wait_idle(page)
    expect(box.get_by_text("Move production: v1 → v2?", exact=False)).to_be_visible()
    assert _production(admin_api) == "1", "nothing moves before the confirmation"
    confirm = box.get_by_role("button", name="Confirm: production: v1 → v2")
    confirm.click()
    outcome = box.get_by_test_id("stAlert").filter(has_text="Promotion done.")
    expect(outcome).to_be_visible(timeout=120_000)
    expect(outcome).to_contain_text("production: v1 → v2. The scoring service now serves v2.")
    _near(page, outcome, box.get_by_role("button", name="Promote..."))
    assert _production(admin_api) == "2"


def test_after_a_promotion_the_report_picker_offers_the_version_now_served(
    admin_api: RunningApi, ui_url: str, page: Any
) -> None:
    expect = _expect()
    _production_is(admin_api, "1")
    open_page(page, ui_url, "models", "Models")
    picker = page.get_by_role("combobox", name="Validation report of version")
    expect(picker).to_have_value("v1")
    box = _form(page, "promote")
    _fill(box, page, reason="monthly retrain", token=admin_api.admin_token)
    box.get_by_role("button", name="Promote...").click()
    wait_idle(page)
    box.get_by_role("button", name="Confirm: production: v1 → v2").click()
    expect(box.get_by_test_id("stAlert").filter(has_text="Promotion done.")).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(picker).to_have_value("v2")  # in the same session: not the version the page first offered
    expect(page.get_by_role("button", name="Download the validation report of v2 (HTML)")).to_be_visible()


def test_rollback_undoes_the_last_move(admin_api: RunningApi, ui_url: str, page: Any) -> None:
    expect = _expect()
    _production_is(admin_api, "1")
    _admin(admin_api, "promote", version="2", reason="v1 → v2").raise_for_status()
    open_page(page, ui_url, "models", "Models")
    box = _form(page, "rollback")
    expect(box.get_by_role("combobox", name="To version")).to_have_value("Undo the last move (back to v1)")
    _fill(box, page, reason="approval rate fell", token=admin_api.admin_token)
    box.get_by_role("button", name="Roll back...").click()
    wait_idle(page)
    box.get_by_role("button", name="Confirm: production: v2 → v1").click()
    outcome = box.get_by_test_id("stAlert").filter(has_text="Rollback done.")
    expect(outcome).to_be_visible(timeout=120_000)
    _near(page, outcome, box.get_by_role("button", name="Roll back..."))
    expect(outcome).to_contain_text("production: v2 → v1")
    assert _production(admin_api) == "1"


def test_after_v1_v2_v1_rollback_goes_back_to_v2(admin_api: RunningApi, ui_url: str, page: Any) -> None:
    expect = _expect()
    _production_is(admin_api, "1")
    _admin(admin_api, "promote", version="2", reason="v1 → v2").raise_for_status()
    _admin(admin_api, "rollback", version="1", reason="v2 → v1").raise_for_status()
    open_page(page, ui_url, "models", "Models")
    box = _form(page, "rollback")
    expect(box.get_by_role("combobox", name="To version")).to_have_value("Undo the last move (back to v2)")
    _fill(box, page, reason="v2 was fine after all", token=admin_api.admin_token)
    box.get_by_role("button", name="Roll back...").click()
    wait_idle(page)
    box.get_by_role("button", name="Confirm: production: v1 → v2").click()
    outcome = box.get_by_test_id("stAlert").filter(has_text=re.compile(r"Rollback (done|refused)"))
    expect(outcome).to_be_visible(timeout=120_000)
    _near(page, outcome, box.get_by_role("button", name="Roll back..."))
    expect(outcome).to_contain_text("Rollback done.")
    assert _production(admin_api) == "2"


def test_tables_follow_the_move_at_1280_px(admin_api: RunningApi, ui_url: str, page: Any) -> None:
    _production_is(admin_api, "1")
    open_page(page, ui_url, "models", "Models")
    _expect()(
        page.get_by_test_id("stMetric").filter(has_text="production").get_by_test_id("stMetricValue")
    ).to_have_text("v1")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scroll"
