"""The prediction log behind the real service: uvicorn processes, real Parquet files, the MLflow run."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest

from credit_risk import registry
from credit_risk.decision_log.paths import ARTIFACT_DIR
from tests.support.api import running_api

pytestmark = pytest.mark.integration


def read_log(log_dir: Path) -> list[dict[str, Any]]:
    return ds.dataset(log_dir, format="parquet", partitioning="hive").to_table().to_pylist()


class Load:
    """Threads posting applicants until stopped; remembers every answered request id."""

    def __init__(
        self, url: str, applicant: dict[str, Any], *, threads: int = 4, reconnect_every: int | None = None
    ) -> None:
        self.url, self.applicant = url, applicant
        # a new connection every N requests: the kernel spreads connections, not requests, over workers
        self.reconnect_every = reconnect_every
        self.answered: list[str] = []
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            self._run_connection()

    def _run_connection(self) -> None:
        sent = 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and (self.reconnect_every is None or sent < self.reconnect_every):
                sent += 1
                request_id = uuid.uuid4().hex
                try:
                    response = client.post(
                        f"{self.url}/v1/predict", json=self.applicant, headers={"X-Request-ID": request_id}
                    )
                except httpx.HTTPError:
                    continue  # refused or cut while shutting down: not answered
                with self._lock:
                    self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                    if response.status_code == 200:
                        self.answered.append(response.json()["request_id"])

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def stop_gracefully(api: Any) -> None:
    """SIGTERM; uvicorn shuts down (the log is drained in the lifespan) and re-raises the signal."""
    code = api.process.terminate(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), api.process.log_tail()
    assert "Application shutdown complete" in api.process.log_text(), api.process.log_tail()


def applicant(trained) -> dict[str, Any]:
    return trained.store.config.features.example_record()


def test_every_answered_request_is_exactly_one_row_with_its_values(trained, tmp_path: Path) -> None:
    answers: dict[str, dict[str, Any]] = {}
    with running_api(trained.store, tmp_path=tmp_path) as api, httpx.Client(timeout=10) as client:
        base = applicant(trained)
        for i in range(60):
            body = {**base, "duration_in_month": 6 + i % 40}
            if i % 2:
                body.pop("age_in_years")  # protected and optional: logged as null
            response = client.post(f"{api.url}/v1/predict", json=body)
            assert response.status_code == 200, response.text
            answers[response.json()["request_id"]] = {"sent": body, "answer": response.json()}
        batch = client.post(f"{api.url}/v1/predict/batch", json={"applicants": [base] * 40})
        assert batch.status_code == 200, batch.text
        for result in batch.json()["results"]:
            answers[result["request_id"]] = {"sent": base, "answer": result, "batch_id": batch.json()["batch_id"]}
        stop_gracefully(api)
    rows = read_log(api.log_dir)
    assert len(rows) == len(answers) == 100
    for row in rows:
        expected = answers[row["request_id"]]
        answer = expected["answer"]
        assert row["model_version"] == answer["model"]["version"] == str(trained.version.version)
        assert row["probability"] == answer["probability_of_default"]
        assert (row["score"], row["risk_band"], row["decision"]) == (
            answer["score"],
            answer["risk_band"],
            answer["decision"],
        )
        assert row["reasons"] == [reason["code"] for reason in answer["reasons"]]
        assert row["batch_id"] == expected.get("batch_id")
        assert row["latency_ms"] > 0
        for name in trained.store.config.features.by_name:
            assert row[name] == expected["sent"].get(name), name


def test_sigterm_under_load_keeps_every_answered_request(trained, tmp_path: Path) -> None:
    with running_api(trained.store, tmp_path=tmp_path) as api, Load(api.url, applicant(trained)) as load:
        time.sleep(2.0)
        before = len(load.answered)
        stop_gracefully(api)
    assert before > 50, f"the load was too light to prove anything: {load.statuses}"
    logged = [row["request_id"] for row in read_log(api.log_dir)]
    assert len(logged) == len(set(logged)), "a request was logged twice"
    missing = set(load.answered) - set(logged)
    assert not missing, f"{len(missing)} answered request(s) not in the log"


def test_two_workers_under_load_log_every_answered_request_once(trained, tmp_path: Path) -> None:
    with running_api(trained.store, tmp_path=tmp_path, workers=2) as api:
        with Load(api.url, applicant(trained), threads=6, reconnect_every=10) as load:
            time.sleep(3.0)
        stop_gracefully(api)
    logged = [row["request_id"] for row in read_log(api.log_dir)]
    assert load.answered, load.statuses
    assert sorted(logged) == sorted(load.answered), "every answered request exactly once, nothing else"
    writers = {path.name.split("-")[2] for path in api.log_dir.rglob("*.parquet")}
    assert len(writers) == 2, f"expected files from both workers, got pids {writers}"
    assert not list(api.log_dir.rglob(".*.tmp")), "a temporary file was left behind"


def test_log_files_appear_in_the_serving_run_in_mlflow(trained, tmp_path: Path) -> None:
    with running_api(trained.store, tmp_path=tmp_path) as api, httpx.Client(timeout=10) as client:
        for _ in range(5):
            assert client.post(f"{api.url}/v1/predict", json=applicant(trained)).status_code == 200
        stop_gracefully(api)
    store = trained.store
    run_id = registry.serving_run_id(
        store.client,
        experiment=store.config.model.prediction_log.serving_experiment,
        model_name=store.config.model.registry.model_name,
        model_version=str(trained.version.version),
    )
    uploaded = set(registry.list_artifact_paths(store.client, run_id, ARTIFACT_DIR))
    local = {f"{ARTIFACT_DIR}/{p.parent.name}/{p.name}" for p in api.log_dir.rglob("*.parquet")}
    assert local and local <= uploaded
