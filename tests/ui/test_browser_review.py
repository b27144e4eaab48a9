"""The review queue in a real headless Chromium: an applicant scored on the Score page is referred, a
reviewer (the admin token: an admin may review) claims the case and declines it with a reason, and the
final decision shows on the Decisions page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api import RunningApi
from tests.support.browser import browser_unavailable_reason, launched_browser, running_ui
from tests.support.oversight import applicants_deciding
from tests.support.required import require_component
from ui.screenshots import applicant_entries, enter, open_page, submit_score_form, wait_idle

pytestmark = pytest.mark.integration

NARROWEST = {"width": 1280, "height": 1000}


@pytest.fixture(scope="module")
def ui_url(api: RunningApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_component(browser_unavailable_reason())
    with running_ui(api.url, tmp_path_factory.mktemp("review-ui")) as url:
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


def _sign_in(page: Any, token: str) -> None:
    box = page.get_by_label("Your role token", exact=True)  # once per session, in the sidebar
    box.fill(token)
    box.press("Enter")
    wait_idle(page, settle_ms=300)


def test_a_reviewer_decides_a_referred_case_and_the_decisions_page_shows_it(
    api: RunningApi, ui_url: str, page: Any
) -> None:
    expect = _expect()
    info = httpx.get(f"{api.url}/v1/model", timeout=30).json()
    with httpx.Client(base_url=api.url, timeout=30) as client:
        referred = applicants_deciding(client.post, _example(info), "review")[0]
    open_page(page, ui_url, "", "Score an applicant")
    submit_score_form(page, applicant_entries(info, **referred))
    opened = page.get_by_text(re.compile(r"Referred: case \d+ opened"))
    expect(opened).to_be_visible(timeout=60_000)
    case_id = int(re.search(r"case (\d+)", opened.inner_text()).group(1))
    request_id = _request_id(api, case_id)

    open_page(page, ui_url, "review", "Review queue")
    _sign_in(page, api.admin_token or "")
    enter(page, "Open case", "select", f"Case {case_id}")
    expect(page.get_by_role("heading", name=re.compile(f"Case {case_id}:"))).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Claim this case").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"Claimed, by admin"))).to_be_visible(timeout=30_000)
    page.get_by_test_id("stRadio").get_by_text("Decline", exact=True).click()
    enter(page, "Reason", "select", "Documents requested were not provided")
    page.get_by_role("textbox", name="Note").fill("payslips not sent after two reminders")
    page.get_by_role("button", name="Record the decision").click()
    wait_idle(page)
    expect(page.get_by_text(f"Case {case_id} decided: Declined, by admin (admin).")).to_be_visible(timeout=30_000)

    page.get_by_role("link", name="Decisions").click()  # in the same session: the sidebar's token stays
    page.get_by_role("heading", name="Decisions").first.wait_for(timeout=60_000)
    wait_idle(page)
    box = page.get_by_role("textbox", name="Request id", exact=True)
    box.fill(request_id)
    page.get_by_role("button", name="Look up").click()
    wait_idle(page)
    expect(
        page.get_by_text(re.compile(rf"Final decision: Declined, by admin \(admin\) on case {case_id}"))
    ).to_be_visible(timeout=30_000)


def _example(info: dict[str, Any]) -> dict[str, Any]:
    from credit_risk.schema import FeatureSchema

    return FeatureSchema.model_validate(info["feature_schema"]).example_record()


def _request_id(api: RunningApi, case_id: int) -> str:
    response = httpx.get(f"{api.url}/v1/cases/{case_id}", headers=api.admin_headers(), timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])
