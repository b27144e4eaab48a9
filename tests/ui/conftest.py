"""Fixtures for the UI tests: the real scoring API on the session's trained model, AppTest, a monitoring summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest
from streamlit.testing.v1 import AppTest

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


def score_and_monitor(api: RunningApi, store: Store, applicants: Sequence[dict[str, Any]]) -> dict:
    """Score ``applicants`` through the API, wait for the log writer's flush, run the real monitor job on the log."""
    from pipelines.monitor import monitor

    before = logged_rows(api.log_dir)
    for start in range(0, len(applicants), 50):  # 50 applicants stay under the service's body limit
        chunk = list(applicants[start : start + 50])
        httpx.post(f"{api.url}/v1/predict/batch", json={"applicants": chunk}, timeout=60).raise_for_status()
    deadline = time.monotonic() + 30
    while logged_rows(api.log_dir) < before + len(applicants):
        assert time.monotonic() < deadline, f"{len(applicants)} scored rows never reached the log in {api.log_dir}"
        time.sleep(0.2)
    return monitor(store.config, store.settings, log_dir=api.log_dir)


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
