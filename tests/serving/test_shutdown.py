"""Graceful shutdown of a real uvicorn process: not ready first, then drain; every answer is logged."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pytest

from tests.conftest import TrainedModel
from tests.support.api import running_api

pytestmark = pytest.mark.integration


def test_sigterm_turns_ready_false_first_and_every_answered_request_is_logged(
    trained: TrainedModel, tmp_path: Path
) -> None:
    applicant = trained.store.config.features.example_record()
    answered: list[str] = []
    unexpected: list[str] = []
    stop = threading.Event()

    def drive(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/predict", json=applicant)
                except httpx.TransportError:
                    time.sleep(0.01)  # refused once the server stopped accepting: a clean refusal
                    continue
                if response.status_code == 200:
                    answered.append(response.json()["request_id"])
                else:
                    unexpected.append(f"{response.status_code}: {response.text[:200]}")

    with running_api(trained.store, tmp_path=tmp_path) as api:
        threads = [threading.Thread(target=drive, args=(api.url,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            api.process.proc.send_signal(signal.SIGTERM)
            ready = httpx.get(f"{api.url}/ready", timeout=5)
            assert ready.status_code == 503 and ready.json()["reason"].startswith("draining"), ready.text
            during = httpx.post(f"{api.url}/v1/predict", json=applicant, timeout=5)
            assert during.status_code == 200, "requests are still answered during the drain grace period"
            answered.append(during.json()["request_id"])
            api.process.proc.wait(30)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        log_tail = api.process.log_tail()
    assert not unexpected, unexpected[:5]
    assert len(answered) > 10
    logged = ds.dataset(api.log_dir, format="parquet", partitioning="hive").to_table(columns=["request_id"])
    missing = set(answered) - set(logged.column("request_id").to_pylist())
    assert not missing, f"{len(missing)} answered request(s) not in the log; server log:\n{log_tail}"
