"""``GET /v1/monitoring`` serves the monitor's latest summary file as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from credit_risk.config import load_project_config
from serving.monitoring import router, summary_path_for

pytestmark = pytest.mark.code

SUMMARY = {
    "summary_version": 1,
    "generated_at": "2026-11-24T00:00:00+00:00",
    "window": {"start": "2026-11-18", "end": "2026-11-24"},
    "model": {"name": "credit-risk", "version": "3"},
    "status": "alert",
    "alert_level": "major",
    "alerts": [{"level": "major", "kind": "psi", "subject": "duration_in_month", "value": 0.9}],
    "volume": 1234,
    "time_series": {"bucket": "day", "points": []},
}


def app_with(log_dir: Path) -> FastAPI:
    """An app holding what the service's create_app holds: the config and the log directory."""
    app = FastAPI()
    app.state.config = load_project_config()
    app.state.log_dir = log_dir
    app.include_router(router)
    return app


def test_no_summary_yet_is_404_with_a_detail(tmp_path: Path) -> None:
    response = TestClient(app_with(tmp_path / "predictions")).get("/v1/monitoring")
    assert response.status_code == 404
    assert response.json() == {"detail": "no monitoring summary yet"}


def test_the_latest_summary_is_returned_as_written(tmp_path: Path) -> None:
    log_dir = tmp_path / "predictions"
    app = app_with(log_dir)
    path = summary_path_for(app.state.config, log_dir)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(SUMMARY))
    response = TestClient(app).get("/v1/monitoring")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == SUMMARY


def test_the_summary_sits_beside_the_log_directory_by_default(tmp_path: Path) -> None:
    assert summary_path_for(load_project_config(), tmp_path / "predictions") == (
        tmp_path / "monitoring" / "latest.json"
    )


def test_the_route_is_documented_with_its_responses(tmp_path: Path) -> None:
    operation = TestClient(app_with(tmp_path)).get("/openapi.json").json()["paths"]["/v1/monitoring"]["get"]
    assert set(operation["responses"]) == {"200", "404"}
