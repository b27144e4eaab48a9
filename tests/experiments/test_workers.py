"""Start and stop reach every worker within the poll interval (real uvicorn, two workers), and an
applicant keeps their arm across workers and a restart: the ledger and the keyed hash are all they share."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import write_config_dir
from tests.experiments.conftest import TwoModels
from tests.support.api import RunningApi, running_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

POLL_SECONDS = 1.0
SLACK_SECONDS = 4.0  # a poll's ledger read, and a challenger's load in the worker that follows


def _env(two: TwoModels, tmp_path: Path) -> dict[str, str]:
    config_dir = write_config_dir(
        tmp_path / "config", model={"serving": {"poll_interval_seconds": POLL_SECONDS, "retry_seconds": 0.5}}
    )
    return {"CREDIT_RISK_CONFIG_DIR": str(config_dir)}


def _fresh(method: str, url: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30) as client:  # a new connection: the kernel picks a worker
        return client.request(method, url, **kwargs)


def _workers_running(api: RunningApi, rounds: int = 40) -> dict[str, str | None]:
    """Each worker's pid -> the experiment it runs, from fresh connections (both workers, or fails)."""
    seen: dict[str, str | None] = {}
    for _ in range(rounds):
        body = _fresh("GET", f"{api.url}/v1/experiments").json()
        seen[str(body["worker_pid"])] = body["running_here"]
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"only saw workers {sorted(seen)}"
    return seen


def _until_every_worker(api: RunningApi, expected: str | None, timeout: float) -> float:
    started = time.monotonic()
    while True:
        seen = _workers_running(api)
        if all(value == expected for value in seen.values()):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"workers still run {seen}, not {expected}"
        time.sleep(0.1)


def test_start_and_stop_reach_both_workers_within_the_poll_interval(two: TwoModels, tmp_path: Path) -> None:
    with running_api(two.store, tmp_path=tmp_path, env=_env(two, tmp_path), workers=2) as api:
        started = _fresh(
            "POST",
            f"{api.url}/v1/admin/experiments",
            json={"challenger_version": two.challenger, "mode": "shadow", "share": 0.5, "reason": "test: workers"},
            headers=api.admin_headers(),
        )
        assert started.status_code == 201, started.text
        experiment_id = started.json()["experiment"]["id"]
        took = _until_every_worker(api, experiment_id, POLL_SECONDS + SLACK_SECONDS)
        assert took <= POLL_SECONDS + SLACK_SECONDS
        stopped = _fresh(
            "POST",
            f"{api.url}/v1/admin/experiments/{experiment_id}/stop",
            json={"reason": "test: done"},
            headers=api.admin_headers(),
        )
        assert stopped.status_code == 200, stopped.text
        took = _until_every_worker(api, None, POLL_SECONDS + SLACK_SECONDS)
        assert took <= POLL_SECONDS + SLACK_SECONDS


def _arms(api: RunningApi, applicant: dict[str, Any], ids: list[str], repeats: int) -> dict[str, set[str]]:
    arms: dict[str, set[str]] = {key: set() for key in ids}
    for _ in range(repeats):
        for key in ids:
            response = _fresh("POST", f"{api.url}/v1/predict", json={**applicant, "applicant_id": key})
            assert response.status_code == 200, response.text
            arms[key].add(response.json()["experiment"]["arm"])
    return arms


def test_an_applicant_keeps_their_arm_across_workers_and_a_restart(two: TwoModels, tmp_path: Path) -> None:
    applicant = two.store.config.features.example_record()
    ids = [f"applicant-{i}" for i in range(30)]
    env = _env(two, tmp_path)
    with running_api(two.store, tmp_path=tmp_path, env=env, workers=2) as api:
        started = _fresh(
            "POST",
            f"{api.url}/v1/admin/experiments",
            json={"challenger_version": two.challenger, "mode": "split", "share": 0.5, "reason": "test: arms"},
            headers=api.admin_headers(),
        )
        assert started.status_code == 201, started.text
        _until_every_worker(api, started.json()["experiment"]["id"], POLL_SECONDS + SLACK_SECONDS)
        before = _arms(api, applicant, ids, repeats=3)
    assert all(len(arms) == 1 for arms in before.values()), f"an applicant changed arm: {before}"
    assert {next(iter(a)) for a in before.values()} == {"champion", "challenger"}
    with running_api(two.store, tmp_path=tmp_path, env=env, workers=2, log_dir=tmp_path / "log-2") as api:
        after = _arms(api, applicant, ids, repeats=1)
    assert after == before, "an applicant's arm changed after a restart"
