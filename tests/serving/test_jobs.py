"""Jobs from the API: the monitor run by the service in a process of its own, followed to its end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import TrainedModel
from tests.serving.conftest import ADMIN_TOKEN, app_client

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_the_monitor_runs_from_the_api_to_its_end_with_its_mlflow_run(trained: TrainedModel, tmp_path: Path) -> None:
    with app_client(trained.store, tmp_path / "logs" / "predictions") as client:
        started = client.post("/v1/admin/jobs", json={"job": "monitor"}, headers=ADMIN)
        assert started.status_code == 202, started.text
        run = started.json()
        assert (run["job"], run["state"], run["actor"]) == ("monitor", "running", "admin (admin)")
        again = client.post("/v1/admin/jobs", json={"job": "monitor"}, headers=ADMIN)
        assert again.status_code == 409 and "already running" in again.text, "one run of a job at a time"
        deadline = time.monotonic() + 240
        while True:
            state = client.get(f"/v1/admin/jobs/{run['id']}", headers=ADMIN).json()
            if state["state"] != "running":
                break
            assert time.monotonic() < deadline, state
            time.sleep(1)
    assert state["state"] == "finished" and state["exit_code"] == 0, state["output"]
    assert state["mlflow_run_id"], state["output"]
    assert trained.store.client.get_run(state["mlflow_run_id"]).info.status == "FINISHED"
    assert any(line.startswith("Monitoring finished") for line in state["output"]), state["output"]


def test_a_bad_job_or_parameter_is_named_and_nothing_starts(trained: TrainedModel, tmp_path: Path) -> None:
    with app_client(trained.store, tmp_path / "logs" / "predictions") as client:
        unknown = client.post("/v1/admin/jobs", json={"job": "train"}, headers=ADMIN)
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "job", unknown.text
        bad = client.post("/v1/admin/jobs", json={"job": "performance", "params": {"as_of": "soon"}}, headers=ADMIN)
        assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text, bad.text
        assert client.post("/v1/admin/jobs", json={"job": "monitor"}).status_code == 401
        assert client.get("/v1/admin/jobs/" + "0" * 32, headers=ADMIN).status_code == 404
    assert not (tmp_path / "logs" / "jobs").exists() or not list((tmp_path / "logs" / "jobs").glob("*.json"))
