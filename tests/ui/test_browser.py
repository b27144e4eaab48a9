"""End to end in a real headless Chromium: the real API, a real ``streamlit run``, a person's clicks.

One UI process and one browser serve the module (each test opens its own
page, so its own Streamlit session); the API is the session's. The window is
1280 px wide, the narrowest the layout is kept for. A walk through every page
leaves the Streamlit console without a traceback or a deprecation warning. With
``CREDIT_RISK_SCREENSHOTS=1`` a last test, on a store of its own with two
versions, an experiment, outcomes and a referral, drives every page for the
README's pictures and writes them to ``docs/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from credit_risk.data import load_applicants
from credit_risk.performance import PerformanceSummary
from pipelines.synthetic import generate_applicants
from tests.conftest import Store, TrainedModel, make_store
from tests.support.api import RunningApi, running_api
from tests.support.browser import (
    CONTRAST_JS,
    browser_unavailable_reason,
    console_problems,
    launched_browser,
    running_ui,
    running_ui_process,
)
from tests.support.oversight import applicants_deciding
from tests.support.processes import RunningProcess, free_port
from tests.support.required import require_component
from tests.ui.conftest import outcomes_and_performance, score_applicants, served_schema
from ui.navigation import PAGES
from ui.screenshots import (
    VIEWPORT,
    Walkthrough,
    applicant_entries,
    capture_all,
    enter,
    fill_applicant,
    open_page,
    open_tab,
    submit_score_form,
    take,
    upload_batch,
    wait_idle,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
NARROWEST = {"width": 1280, "height": 1000}
DECISION = re.compile(r"^(Approved|Referred|Declined)\s*Risk band [A-Z]$")


# Each Vega chart on the page: its text alternative, the height of its plotting area, and the titles (the
# chart's and its axes') and legend labels drawn outside the chart's box, where the page cuts them off.
CHARTS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]'), (chart) => {
  const svg = chart.querySelector('svg.marks');
  const box = svg.getBoundingClientRect();
  const frame = svg.querySelector('.role-frame.root > g > path.background, .role-scope > g > path.background');
  const outside = (r) => r.left < box.left - 4 || r.right > box.right + 4 || r.top < box.top - 4
                         || r.bottom > box.bottom + 4;
  const cut = Array.from(svg.querySelectorAll('.role-title text, .role-axis-title text, .role-legend-label text'))
    .filter((t) => t.textContent.trim() && outside(t.getBoundingClientRect())).map((t) => t.textContent);
  return {chart: (chart.getAttribute('aria-label') || '').slice(0, 50),
          plot: frame ? frame.getBoundingClientRect().height : 0, cut};
})"""


def _require_browser() -> None:
    require_component(browser_unavailable_reason())


def _publish(shot: Path) -> None:
    """Copy a screenshot to docs/screenshots/ when asked to (CREDIT_RISK_SCREENSHOTS set)."""
    if os.environ.get("CREDIT_RISK_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOTS / shot.name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    with launched_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def ui(api: RunningApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RunningProcess]]:
    """The module's ``streamlit run``: its address and its process (whose log is the console)."""
    with running_ui_process(api.url, tmp_path_factory.mktemp("ui")) as running:
        yield running


@pytest.fixture(scope="module")
def ui_url(ui: tuple[str, RunningProcess]) -> str:
    return ui[0]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (so a fresh Streamlit session) at the narrowest supported width."""
    tab = browser.new_page(viewport=NARROWEST)
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def info(api: RunningApi) -> dict:
    return httpx.get(f"{api.url}/v1/model").json()


def _expect():
    from playwright.sync_api import expect  # installed: the browser fixture skipped otherwise

    return expect


def _scored(page: Any) -> Any:
    """Wait for a decision and return its banner."""
    banner = page.get_by_test_id("decision-banner")
    _expect()(banner).to_have_text(DECISION, timeout=60_000)
    return banner


def _press_score(page: Any) -> None:
    page.get_by_role("button", name="Score applicant").click()
    wait_idle(page)


# ------------------------------------------------------------------ Score an applicant


def test_required_fields_start_unselected_and_score_refuses_until_set(ui_url: str, page: Any, info: dict) -> None:
    expect = _expect()
    open_page(page, ui_url, "", "Score an applicant")
    checking = page.get_by_role("combobox", name="Checking account", exact=True)
    expect(checking).to_have_value("")  # not "Overdrawn", the riskiest first option
    expect(page.get_by_role("textbox", name="Loan duration (months)", exact=True)).to_have_value("")
    _press_score(page)
    expect(page.get_by_text(re.compile(r"Not scored yet: \d+ fields? needs? attention"))).to_be_visible()
    expect(page.get_by_text("Checking account: Choose a value: it is required.")).to_be_visible()
    expect(page.get_by_test_id("decision-banner")).to_have_count(0)
    # Set all but one: still refused, and only that one is named.
    entries = [e for e in applicant_entries(info) if e[0] != "Job"]
    fill_applicant(page, entries)
    _press_score(page)
    expect(page.get_by_text("Not scored yet: 1 field needs attention (Job)")).to_be_visible()
    expect(page.get_by_test_id("decision-banner")).to_have_count(0)
    enter(page, "Job", "select", "Skilled employee or official")
    _press_score(page)
    _scored(page)


def test_a_loan_officer_scores_an_applicant_and_the_result_is_announced(
    ui_url: str, page: Any, info: dict, trained: TrainedModel, tmp_path: Path
) -> None:
    expect = _expect()
    open_page(page, ui_url, "", "Score an applicant")
    submit_score_form(page, applicant_entries(info, duration_in_month=48, purpose="business"))
    banner = _scored(page)
    word = banner.inner_text().split("\n")[0].strip()
    expect(page.get_by_text("Loan duration (months) is 48, which raised the assessed risk.")).to_be_visible()
    expect(page.get_by_text(f"model version {trained.version.version}", exact=False).first).to_be_visible()
    expect(page.get_by_role("combobox", name="Purpose", exact=True)).to_have_value("Business")
    # A screen reader hears the decision from a polite live region, and the gauge and chart have text.
    live = page.locator('[role="status"][aria-live="polite"]').filter(has_text="probability of default")
    expect(live).to_have_text(re.compile(rf"^{word}: probability of default \d+\.\d%, risk band [A-Z], score \d+\.$"))
    gauge = page.get_by_role("img", name=re.compile(r"^Probability of default \d+\.\d%, in risk band [A-Z]"))
    expect(gauge).to_have_count(1)
    chart = page.locator('[role="graphics-document"][aria-label^="Share of the added risk: "]')
    expect(chart).to_have_count(1)
    assert "Loan duration (months) (48)" in chart.get_attribute("aria-label")
    plot = chart.locator("path.background").first.bounding_box()  # the plotting area, not just axis labels
    assert plot and plot["width"] > 100, f"the bars have room to be read: {plot}"
    body = page.inner_text("body")
    assert "Traceback" not in body and "(1-4) of" not in body and "log-odds" not in body.split("Technical details")[0]
    shot = take(page, tmp_path, "score")
    assert shot.stat().st_size > 10_000


def test_a_changed_input_clears_the_previous_result(ui_url: str, page: Any, info: dict) -> None:
    expect = _expect()
    open_page(page, ui_url, "", "Score an applicant")
    submit_score_form(page, applicant_entries(info, duration_in_month=24))
    _scored(page)
    enter(page, "Loan duration (months)", "text", "6")
    enter(page, "Checking account", "select", "No checking account")
    expect(page.get_by_test_id("decision-banner")).to_have_count(0)
    expect(page.get_by_text("Principal reasons")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"The application changed.*\(Checking account, Loan duration"))).to_be_visible()
    _press_score(page)
    _scored(page)
    expect(page.get_by_text("Loan duration (months) is 24", exact=False)).to_have_count(0)


def test_out_of_range_decimal_and_cleared_values_are_refused_inline(ui_url: str, page: Any, info: dict) -> None:
    expect = _expect()
    open_page(page, ui_url, "", "Score an applicant")
    fill_applicant(page, applicant_entries(info))
    enter(page, "Loan duration (months)", "text", "500")
    enter(page, "Credit amount (DM)", "text", "1200.5")
    # The rules show under their fields at once, in words, and nothing is sent.
    duration = page.get_by_text("Loan duration (months): Enter a whole number from 1 to 120 (you entered 500).")
    expect(duration).to_be_visible()
    expect(page.get_by_text("Credit amount (DM): Enter a whole number (you entered 1200.5).")).to_be_visible()
    expect(page.get_by_role("textbox", name="Credit amount (DM)", exact=True)).to_have_value("1200.5")  # not cut
    enter(page, "Credit amount (DM)", "text", "")
    _press_score(page)  # the cleared one shows when Score is pressed
    expect(page.get_by_text("Credit amount (DM): Enter a value: it is required.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Not scored yet: 2 fields need attention"))).to_be_visible()
    expect(page.get_by_test_id("decision-banner")).to_have_count(0)
    # The error sits under its own field: between that field and the next one.
    field_box = page.get_by_role("textbox", name="Loan duration (months)", exact=True).bounding_box()
    error_box = duration.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 60, (field_box, error_box)


def test_every_text_on_colour_meets_wcag_aa_and_the_banner_fits(ui_url: str, page: Any, info: dict) -> None:
    open_page(page, ui_url, "", "Score an applicant")
    submit_score_form(
        page, applicant_entries(info, duration_in_month=60, status_of_existing_checking_account="overdrawn")
    )
    banner = _scored(page)
    texts = page.evaluate(CONTRAST_JS, page.get_by_test_id("stMain").element_handle())
    on_colour = [t for t in texts if t["coloured"]]
    assert any(t["text"] == "Risk band " or t["text"].startswith("Risk band") for t in texts), "the badge was read"
    assert len(on_colour) >= 6, f"decision banner and band segments expected among {on_colour}"
    failing = [t for t in on_colour if t["ratio"] < t["needed"]]
    assert not failing, f"text on colour under WCAG AA: {failing}"
    # The band badge stays inside its banner at 1280 px.
    outer = banner.bounding_box()
    badge = banner.get_by_text(re.compile(r"^Risk band")).bounding_box()
    assert outer["x"] <= badge["x"] and badge["x"] + badge["width"] <= outer["x"] + outer["width"] + 0.5, (outer, badge)
    assert badge["y"] + badge["height"] <= outer["y"] + outer["height"] + 0.5, (outer, badge)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scroll"


def test_the_form_survives_the_api_going_down_and_a_retry_scores_it(
    trained: TrainedModel, browser: Any, info: dict, tmp_path: Path
) -> None:
    expect = _expect()
    port = free_port()
    entries = applicant_entries(info, duration_in_month=36, purpose="business")
    first = running_api(trained.store, tmp_path=tmp_path / "first", port=port)
    api = first.__enter__()
    try:
        with running_ui(api.url, tmp_path) as url:
            page = browser.new_page(viewport=NARROWEST)
            open_page(page, url, "", "Score an applicant")
            fill_applicant(page, entries)
            first.__exit__(None, None, None)
            first = None
            _press_score(page)
            expect(
                page.get_by_text("The scoring service is not reachable right now", exact=False).first
            ).to_be_visible()
            expect(page.get_by_text("Technical details").first).to_be_visible()
            assert "Errno" not in page.get_by_role("alert").first.inner_text(), "technical text only in the expander"
            for label, kind, value in entries:  # nothing reset to a default
                role = "combobox" if kind == "select" else "textbox"
                expect(page.get_by_role(role, name=label, exact=True)).to_have_value(value)
            with running_api(trained.store, tmp_path=tmp_path / "second", port=port):
                page.get_by_role("button", name="Try again").click()
                _scored(page)
            expect(page.get_by_role("combobox", name="Purpose", exact=True)).to_have_value("Business")
            page.close()
    finally:
        if first is not None:
            first.__exit__(None, None, None)


# ------------------------------------------------------------------ Batch


def _download(page: Any, button_name: str) -> list[dict[str, str]]:
    with page.expect_download() as caught:
        page.get_by_role("button", name=re.compile(button_name)).click()
    text = Path(caught.value.path()).read_text()
    return list(csv.DictReader(io.StringIO(text)))


def test_batch_carries_the_id_column_and_offers_the_rejected_rows(ui_url: str, page: Any, info: dict) -> None:
    expect = _expect()
    fields = [f["name"] for f in info["feature_schema"]["fields"]]
    example = {f["name"]: (f["categories"][0]["code"] if f["type"] == "categorical" else f.get("default") or f["min"])
               for f in info["feature_schema"]["fields"]}  # fmt: skip
    rows = [{"customer_id": f"C-{i:03d}", **example, "duration_in_month": 6 + i} for i in range(5)]
    rows[1]["purpose"] = "Car (new)"  # a label, as the Score page shows it
    rows[3]["duration_in_month"] = 500
    header = ["customer_id", *fields]
    text = "\n".join([";".join(header), *(";".join(str(r[c]) for c in header) for r in rows)]) + "\n"
    open_page(page, ui_url, "batch", "Batch scoring")
    page.locator("input[type='file']").set_input_files(
        files=[{"name": "applicants.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    expect(page.get_by_text("Read as semicolon-separated.")).to_be_visible(timeout=60_000)
    rejects = _download(page, "rejected row")
    assert [(r["row"], r["customer_id"]) for r in rejects] == [("4", "C-003")], rejects
    assert "120" in rejects[0]["problems"] and rejects[0]["duration_in_month"] == "500"
    page.get_by_role("button", name="Score 4 valid rows").click()
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=60_000)
    wait_idle(page)
    rejected = page.get_by_role("button", name=re.compile("rejected row"))
    expect(rejected).to_have_count(1)  # one download of the rows not scored, not one per part of the page
    results = _download(page, "Download results")
    assert [r["customer_id"] for r in results] == ["C-000", "C-001", "C-002", "C-004"]
    assert list(results[0])[:7] == [
        "row",
        "customer_id",
        "decision",
        "probability_of_default",
        "score",
        "risk_band",
        "reasons",
    ]
    assert {r["decision"] for r in results} <= {"Approved", "Referred", "Declined"}
    assert all(len(r["probability_of_default"].split(".")[-1]) <= 4 for r in results), "rounded figures"
    assert results[1]["purpose"] == "car_new"
    assert results[0]["reasons"] and not re.match(r"^[A-Z]{3} ", results[0]["reasons"]), "labels, no codes"
    assert re.fullmatch(r"[A-Z]{3}(; [A-Z]{3})*", results[0]["reason_codes"]), "the codes, for other systems"


def _logged(api: RunningApi, applicant_id: str, count: int) -> None:
    """Wait until ``count`` decisions of ``applicant_id`` are in the log (the writer flushes every second)."""
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{api.url}/v1/decisions", params={"applicant_id": applicant_id}, headers=api.admin_headers()
        )
        if answer.status_code == 200 and answer.json()["total"] >= count:
            return
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.3)


def test_applicant_ids_from_the_score_and_batch_pages_are_found_on_the_decisions_page(
    ui_url: str, page: Any, info: dict, api: RunningApi
) -> None:
    expect = _expect()
    open_page(page, ui_url, "", "Score an applicant")
    enter(page, "Applicant id (optional)", "text", "ui-score-77")
    submit_score_form(page, applicant_entries(info))
    expect(page.get_by_text("Applicant id ui-score-77")).to_be_visible()
    expect(page.get_by_role("button", name="Printable decision summary")).to_be_visible()
    example = {f["name"]: (f["categories"][0]["code"] if f["type"] == "categorical" else f.get("default") or f["min"])
               for f in info["feature_schema"]["fields"]}  # fmt: skip
    header = ["applicant_id", *example]
    text = ",".join(header) + "\n" + ",".join(str({"applicant_id": "ui-batch-78", **example}[c]) for c in header)
    open_page(page, ui_url, "batch", "Batch scoring")
    upload_batch(page, text + "\n")
    _logged(api, "ui-score-77", 1)
    _logged(api, "ui-batch-78", 1)
    open_page(page, ui_url, "decisions", "Decisions")
    page.get_by_label("Your role token", exact=True).fill(api.admin_token or "")
    page.get_by_label("Your role token", exact=True).press("Enter")
    wait_idle(page, settle_ms=300)
    for applicant_id in ("ui-score-77", "ui-batch-78"):
        open_tab(page, "By applicant", shows="Applicant id")
        box = page.get_by_role("textbox", name="Applicant id", exact=True)
        box.fill(applicant_id)
        box.press("Enter")
        wait_idle(page, settle_ms=300)
        page.get_by_role("button", name="List").click()
        wait_idle(page)
        expect(page.get_by_text(f"1 decision for applicant {applicant_id}, newest first")).to_be_visible()


# ------------------------------------------------------------------ charts at a desktop's and a phone's width


def test_monitoring_and_performance_charts_keep_their_plots_and_titles_at_1400_and_390_px(
    ui_url: str, browser: Any, monitoring_summary: dict, performance_summary: PerformanceSummary
) -> None:
    for width in (1400, 390):
        page = browser.new_page(viewport={"width": width, "height": 1000})
        for path, heading, count in (("monitoring", "Monitoring", 5), ("performance", "Performance", 3)):
            open_page(page, ui_url, path, heading)
            page.locator("[data-testid='stVegaLiteChart'] svg.marks").nth(count - 1).wait_for(timeout=30_000)
            page.wait_for_timeout(500)  # Vega lays a chart out again once it knows its width
            charts = page.evaluate(CHARTS_JS)
            assert len(charts) == count, f"{path} at {width} px: {charts}"
            squashed = [c for c in charts if c["plot"] < 80]
            assert not squashed, f"{path} at {width} px: plots with no room left: {squashed}"
            cut = [c for c in charts if c["cut"]]
            assert not cut, f"{path} at {width} px: titles or legends cut off: {cut}"
        page.close()


# ------------------------------------------------------------------ every page: the console, the README's pictures


def _batch_csv(store: Store, *, rows: int = 25) -> str:
    """Applicants as a lender's file holds them, an id column first, with two rows that break the schema."""
    config = store.config
    source, _ = load_applicants(config.root / config.training.data.path, config.features)
    batch = generate_applicants(source, config.features, rows=rows, seed=3).astype(object)
    batch.insert(0, "applicant_id", [f"A-{i:04d}" for i in range(1, rows + 1)])
    batch.loc[4, "purpose"] = "yacht"
    batch.loc[9, "duration_in_month"] = "two years"
    return batch.to_csv(index=False)


def _scored_deciding(api: RunningApi, decision: str, applicant_id: str) -> dict[str, Any]:
    """The answer for an applicant the served model decides ``decision``, once its record is in the log."""
    with httpx.Client(base_url=api.url, timeout=30) as client:
        applicant = applicants_deciding(client.post, served_schema(api).example_record(), decision)[0]
        answer = client.post("/v1/predict", json={**applicant, "applicant_id": applicant_id}).raise_for_status().json()
    _logged(api, applicant_id, 1)
    return answer


def _walkthrough(api: RunningApi, store: Store) -> Walkthrough:
    """Every page in a realistic state: a declined decision to open, a referral's case to read."""
    declined = _scored_deciding(api, "decline", "A-9001")
    referred = _scored_deciding(api, "review", "A-9002")
    assert referred.get("case"), f"a referral opens a case: {referred}"
    return Walkthrough(
        entries=applicant_entries(httpx.get(f"{api.url}/v1/model").json(), duration_in_month=48),
        batch_csv=_batch_csv(store),
        token=api.admin_token,
        request_id=declined["request_id"],
    )


def test_a_walk_through_every_page_leaves_no_traceback_or_deprecation_warning_on_the_console(
    ui: tuple[str, RunningProcess],
    browser: Any,
    api: RunningApi,
    trained: TrainedModel,
    monitoring_summary: dict,
    performance_summary: PerformanceSummary,
    tmp_path: Path,
) -> None:
    url, process = ui
    shots = capture_all(url, tmp_path, _walkthrough(api, trained.store), browser=browser)
    assert [shot.stem for shot in shots] == [spec.name for spec in PAGES], "every page was opened and driven"
    problems = console_problems(process.log_text())
    assert not problems, "the Streamlit console after a walk through every page:\n" + "\n".join(problems)


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


def _admin_action(page: Any, form: str, *, token: str, reason: str, button: str) -> None:
    """Fill a Models-page admin form (reason, token), press its button and confirm the move."""
    box = page.locator(".stVerticalBlock").filter(has=page.get_by_text(form, exact=True)).last
    box.get_by_role("textbox", name="Reason", exact=True).fill(reason)
    page.get_by_label("Your role token", exact=True).fill(token)  # once per session, in the sidebar
    page.get_by_label("Your role token", exact=True).press("Enter")
    wait_idle(page, settle_ms=200)
    box.get_by_role("button", name=button).click()
    page.get_by_role("button", name=re.compile(r"^Confirm: production")).click()
    wait_idle(page)


def _readme_images() -> set[str]:
    return set(re.findall(r"docs/screenshots/([\w-]+)\.png", (ROOT / "README.md").read_text()))


@pytest.mark.skipif(not os.environ.get("CREDIT_RISK_SCREENSHOTS"), reason="set CREDIT_RISK_SCREENSHOTS=1 to refresh")
def test_readme_screenshots_of_every_page(browser: Any, two_versions: Store, tmp_path: Path) -> None:
    """Every page with real data: a promotion and a rollback, a shadow experiment, a shifted population
    monitored, outcomes drawn from the model's probabilities and their performance report, a declined
    decision and a referral's case."""
    from pipelines.monitor import monitor

    expect = _expect()
    config = two_versions.config
    source, _ = load_applicants(config.root / config.training.data.path, config.features)
    with running_api(two_versions, tmp_path=tmp_path) as api, running_ui_process(api.url, tmp_path) as (ui_url, ui):
        page = browser.new_page(viewport=VIEWPORT)
        open_page(page, ui_url, "models", "Models")
        _admin_action(page, "Promote a version to production", token=api.admin_token, reason="monthly retrain",
                      button="Promote...")  # fmt: skip
        expect(page.get_by_text("Promotion done.")).to_be_visible(timeout=120_000)
        _admin_action(page, "Roll production back", token=api.admin_token, reason="approval rate fell",
                      button="Roll back...")  # fmt: skip
        expect(page.get_by_text("Rollback done.")).to_be_visible(timeout=120_000)
        page.close()
        shadow = {"challenger_version": "2", "mode": "shadow", "share": 1.0, "reason": "shadow v2 first"}
        started = httpx.post(f"{api.url}/v1/admin/experiments", json=shadow, headers=api.admin_headers(), timeout=300)
        assert started.status_code < 300, started.text
        # Longer loans than in training: the monitor should show a shift on the duration.
        live = generate_applicants(source, config.features, rows=400, seed=7, shift={"duration_in_month": 1.6})
        answers = score_applicants(api, json.loads(live.to_json(orient="records")))
        monitor(config, two_versions.settings, log_dir=api.log_dir)
        outcomes_and_performance(api, two_versions, answers, seed=11)
        shots = capture_all(ui_url, tmp_path, _walkthrough(api, two_versions), browser=browser)
        assert not console_problems(ui.log_text()), ui.log_tail()
    for shot in shots:
        _publish(shot)
    assert [s.stem for s in shots] == [spec.name for spec in PAGES]
    assert {s.stem for s in shots} <= _readme_images(), "the README shows every page's picture"
