"""``make serve WORKERS=2``: two workers, and every scrape of /metrics counts both (multiprocess mode)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TrainedModel
from tests.support.api import running_make_serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # a hang guard (set-up trains models)

REQUESTS = 40


def _total(metrics: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", metrics, re.MULTILINE))


def _ready_pids(url: str) -> set[str]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        text = client.get(f"{url}/metrics").text
    return set(re.findall(r'^credit_risk_ready{pid="(\d+)"} 1\.0$', text, re.MULTILINE))


def test_metrics_sum_every_worker(trained: TrainedModel, tmp_path: Path) -> None:
    applicant = trained.store.config.features.example_record()
    with running_make_serve(trained.store, tmp_path=tmp_path, workers=2) as api:
        # /ready answered once one worker had its model: the other may still be loading its own
        deadline = time.monotonic() + 60
        while len(_ready_pids(api.url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        pids = set()
        for _ in range(REQUESTS):  # a new connection each time: the kernel spreads them over the workers
            with httpx.Client(trust_env=False, timeout=10) as client:
                assert client.post(f"{api.url}/v1/predict", json=applicant).status_code == 200
        for _ in range(6):
            with httpx.Client(trust_env=False, timeout=10) as client:
                text = client.get(f"{api.url}/metrics").text
            assert _total(text, "credit_risk_predictions_total") == REQUESTS, "a scrape missed a worker's counts"
            pids |= set(re.findall(r'^credit_risk_ready{pid="(\d+)"} 1\.0$', text, re.MULTILINE))
        assert len(pids) == 2, f"expected both workers' readiness in /metrics, saw pids {pids}"
