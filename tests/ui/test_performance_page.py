"""The Performance page in Streamlit's AppTest against the real API (uvicorn) and a real performance summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from credit_risk.outcomes.decisions import read_decisions
from credit_risk.performance import PerformanceSummary, summary_path
from tests.conftest import TrainedModel
from tests.support.api import RunningApi
from tests.ui.conftest import served_schema

pytestmark = pytest.mark.integration

OpenApp = Callable[..., AppTest]


@pytest.fixture
def performance_summary(api: RunningApi, trained: TrainedModel) -> Iterator[PerformanceSummary]:
    """40 applicants scored through the API, outcomes posted for the booked ones, the real job run."""
    from pipelines.performance.job import performance

    store, example = trained.store, served_schema(api).example_record()
    applicants = [{**example, "duration_in_month": 6 + i, "applicant_id": f"ui-{i}"} for i in range(40)]
    answers = httpx.post(f"{api.url}/v1/predict/batch", json={"applicants": applicants}, timeout=60).json()["results"]
    ids = {a["request_id"] for a in answers}
    deadline = time.monotonic() + 30
    name = store.config.model.registry.model_name
    while not ids <= set(
        read_decisions(api.log_dir, model_name=name, columns=["request_id"])["request_id"].to_pylist()
    ):
        assert time.monotonic() < deadline, "the scored applicants never reached the log"
        time.sleep(0.2)
    observed = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    rows = [
        {"request_id": a["request_id"], "outcome": "bad" if i % 4 == 0 else "good", "observed_at": observed}
        for i, a in enumerate(answers)
        if a["decision"] != "decline"
    ]
    assert rows, "some applicants are booked"
    response = httpx.post(f"{api.url}/v1/outcomes", json={"outcomes": rows}, headers=api.admin_headers(), timeout=60)
    assert response.status_code == 200, response.text
    summary = performance(
        store.config, store.settings, maturity_days=0, as_of=datetime.now(UTC) + timedelta(days=2), log_dir=api.log_dir
    )
    try:
        yield summary
    finally:
        summary_path(store.config.model.performance, api.log_dir, store.config.root).unlink(missing_ok=True)


def test_performance_says_when_no_summary_exists(api: RunningApi, open_app: OpenApp) -> None:
    at = open_app(api.url, page="performance")
    assert any("No performance report exists yet" in i.value for i in at.info), [i.value for i in at.info]


def test_performance_draws_the_summary_with_coverage_and_the_selection_caveat(
    api: RunningApi, open_app: OpenApp, performance_summary: PerformanceSummary
) -> None:
    at = open_app(api.url, page="performance")
    [(version, figures)] = performance_summary.versions.items()
    assert [h.value for h in at.header][:1] == [f"Version {version}"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Matured decisions"] == f"{figures.decisions:,}"
    assert metrics["With an outcome"] == f"{figures.with_outcome:,}"
    assert any("Selection bias" in w.value for w in at.warning)
    headings = [h.value for h in at.subheader]
    assert headings[:2] == ["Coverage by decision", "Realized figures beside the holdout at training"]
    coverage = at.dataframe[0].value.set_index("decision")
    assert coverage.loc["Declined", "with outcome"] == 0, "declined applicants have no outcome (one word a decision)"
    assert len(at.get("vega_lite_chart")) == 3, "bands, reliability diagram, vintages"


def test_an_admin_refreshes_the_report_from_the_page(
    api: RunningApi, open_app: OpenApp, performance_summary: PerformanceSummary
) -> None:
    at = open_app(api.url, page="performance")
    assert not [b for b in at.button if b.label == "Refresh now"], "only an admin is offered the refresh"
    assert any("An admin can refresh" in c.value for c in at.caption)
    at.text_input(key="role.token").input(api.admin_token or "").run()
    at.text_input(key="performance.maturity_days").input("0").run()
    next(b for b in at.button if b.label == "Refresh now").click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    done = [s.value for s in at.success if s.value.startswith("Refreshed the performance report")]
    assert done and "MLflow run" in done[0], [s.value for s in (*at.success, *at.error)]
