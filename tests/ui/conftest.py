"""Fixtures for the UI tests: the real scoring API on the session's trained model, AppTest, a monitoring summary
and a performance report made by the real jobs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest
from streamlit.testing.v1 import AppTest

from credit_risk.performance import PerformanceSummary
from credit_risk.schema import FeatureSchema
from tests.conftest import Store, TrainedModel
from tests.support.api import RunningApi, running_api

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"


@pytest.fixture(scope="session")
def api(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """One real uvicorn process serving the session model, shared by the UI tests."""
    with running_api(trained.store, tmp_path=tmp_path_factory.mktemp("ui-api")) as running:
        yield running


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """``open_app(api_url, page=None)``: the app, pointed at ``api_url`` the way a deployment does (env), run once."""

    def _open(api_url: str, page: str | None = None) -> AppTest:
        monkeypatch.setenv("CREDIT_RISK_API_URL", api_url)
        monkeypatch.delenv("CREDIT_RISK_CONFIG_DIR", raising=False)  # the project's config/: its ui section
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        if page is not None:
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, f"the page raised: {[e.value for e in at.exception]}"
        return at

    return _open


def served_schema(api: RunningApi) -> FeatureSchema:
    return FeatureSchema.model_validate(httpx.get(f"{api.url}/v1/model").json()["feature_schema"])


def logged_rows(log_dir: Path) -> int:
    files = list(log_dir.rglob("*.parquet"))
    return ds.dataset(files, partitioning="hive").count_rows() if files else 0


def score_applicants(api: RunningApi, applicants: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score ``applicants`` through the API and wait for the log writer's flush; the API's answers."""
    before = logged_rows(api.log_dir)
    answers: list[dict[str, Any]] = []
    for start in range(0, len(applicants), 50):  # 50 applicants stay under the service's body limit
        chunk = list(applicants[start : start + 50])
        response = httpx.post(f"{api.url}/v1/predict/batch", json={"applicants": chunk}, timeout=60)
        answers += response.raise_for_status().json()["results"]
    deadline = time.monotonic() + 30
    while logged_rows(api.log_dir) < before + len(applicants):
        assert time.monotonic() < deadline, f"{len(applicants)} scored rows never reached the log in {api.log_dir}"
        time.sleep(0.2)
    return answers


def score_and_monitor(api: RunningApi, store: Store, applicants: Sequence[dict[str, Any]]) -> dict:
    """Score ``applicants`` through the API, wait for the log writer's flush, run the real monitor job on the log."""
    from pipelines.monitor import monitor

    score_applicants(api, applicants)
    return monitor(store.config, store.settings, log_dir=api.log_dir)


def outcomes_and_performance(
    api: RunningApi, store: Store, answers: Sequence[dict[str, Any]], *, seed: int | None = None
) -> PerformanceSummary:
    """Outcomes for the booked applicants among ``answers`` through the API, then the real performance job,
    as of two days on with no maturity wait (so today's decisions count).

    Every fourth booked applicant is bad; with ``seed``, each is bad with its probability of default instead
    (a seeded draw), so the realized figures are those of a model that works, as the README's pictures want.
    """
    from pipelines.performance.job import performance

    draw = random.Random(seed).random

    def bad(i: int, answer: dict[str, Any]) -> bool:
        return draw() < answer["probability_of_default"] if seed is not None else i % 4 == 0

    observed = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    rows = [
        {"request_id": a["request_id"], "outcome": "bad" if bad(i, a) else "good", "observed_at": observed}
        for i, a in enumerate(answers)
        if a["decision"] != "decline"
    ]
    assert rows, "some applicants are booked"
    response = httpx.post(f"{api.url}/v1/outcomes", json={"outcomes": rows}, headers=api.admin_headers(), timeout=60)
    assert response.status_code == 200, response.text
    as_of = datetime.now(UTC) + timedelta(days=2)
    return performance(store.config, store.settings, maturity_days=0, as_of=as_of, log_dir=api.log_dir)


@pytest.fixture
def monitoring_summary(api: RunningApi, trained: TrainedModel) -> Iterator[dict]:
    """A real summary of 60 applicants; removed afterwards, since other tests expect 'no summary yet'."""
    from credit_risk.decision_log.paths import summary_path

    example = served_schema(api).example_record()
    summary = score_and_monitor(api, trained.store, [{**example, "duration_in_month": 6 + i % 40} for i in range(60)])
    config = trained.store.config
    try:
        yield summary
    finally:
        summary_path(config.model.monitoring, api.log_dir, config.root).unlink(missing_ok=True)


@pytest.fixture
def performance_summary(api: RunningApi, trained: TrainedModel) -> Iterator[PerformanceSummary]:
    """40 applicants scored through the API, outcomes posted for the booked ones, the real job run; the
    summary removed afterwards, since other tests expect 'no report yet'."""
    from credit_risk.performance import summary_path

    example = served_schema(api).example_record()
    applicants = [{**example, "duration_in_month": 6 + i, "applicant_id": f"ui-{i}"} for i in range(40)]
    summary = outcomes_and_performance(api, trained.store, score_applicants(api, applicants))
    config = trained.store.config
    try:
        yield summary
    finally:
        summary_path(config.model.performance, api.log_dir, config.root).unlink(missing_ok=True)
