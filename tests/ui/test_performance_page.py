"""The Performance page in Streamlit's AppTest against the real API (uvicorn) and a real performance summary."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from credit_risk.performance import PerformanceSummary
from tests.support.api import RunningApi

pytestmark = pytest.mark.integration

OpenApp = Callable[..., AppTest]


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
