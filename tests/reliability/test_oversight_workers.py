"""Human oversight behind real uvicorn with two workers: the claim race on SQLite and PostgreSQL,
the stop switch followed by every worker, and kill -9 under load losing no case."""

from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from credit_risk.cases import CaseStore
from credit_risk.config import ReviewConfig
from tests.conftest import TrainedModel
from tests.support.api import running_api
from tests.support.oversight import applicants_deciding, bearer
from tests.support.postgres import postgres_unavailable_reason, running_postgres, sqlalchemy_url
from tests.support.required import require_component

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REVIEWER = "reliability-reviewer-token-24680"
ADMIN = "reliability-admin-token-13579-xyz"
# every applicant referred: a policy of its own (a new version, so it is recorded beside the default)
ALL_REFERRED = {"policy_version": "oversight-all-referred", "approve_below": 0.0001, "decline_at_or_above": 1.0}


def config_dir(trained: TrainedModel, target: Path, **sections: dict[str, Any]) -> Path:
    shutil.copytree(trained.store.settings.config_dir, target)
    path = target / "model_config.yaml"
    data = yaml.safe_load(path.read_text())
    for name, changes in sections.items():
        data[name] = {**data.get(name, {}), **changes}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def env_for(config: Path) -> dict[str, str]:
    return {
        "CREDIT_RISK_CONFIG_DIR": str(config),
        "CREDIT_RISK_ADMIN_TOKEN": ADMIN,
        "CREDIT_RISK_ADMIN_TOKEN_NAME": "ops-alice",
        "CREDIT_RISK_REVIEWER_TOKEN": REVIEWER,
        "CREDIT_RISK_REVIEWER_TOKEN_NAME": "review-carol",
    }


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_component(postgres_unavailable_reason())
    with running_postgres(tmp_path_factory.mktemp("oversight-pg"), dbname="cases") as url:
        yield sqlalchemy_url(url)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_reviewers_claiming_at_once_on_two_workers_exactly_one_wins(
    trained: TrainedModel, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    review: dict[str, Any] = {}
    if database == "postgresql":
        review["database_url"] = request.getfixturevalue("postgres_url")
    config = config_dir(trained, tmp_path / "config", decision=ALL_REFERRED, review=review)
    with running_api(trained.store, tmp_path=tmp_path, env=env_for(config), workers=2) as api:
        applicant = trained.store.config.features.example_record()
        with httpx.Client(base_url=api.url, timeout=30) as client:
            case_ids = [client.post("/v1/predict", json=applicant).json()["case"]["id"] for _ in range(12)]
        outcomes: dict[int, list[int]] = {case_id: [] for case_id in case_ids}

        def claim(case_id: int, token: str, barrier: threading.Barrier) -> None:
            with httpx.Client(base_url=api.url, timeout=30) as own:  # its own connection: either worker
                barrier.wait(10)
                outcomes[case_id].append(own.post(f"/v1/cases/{case_id}/claim", headers=bearer(token)).status_code)

        for case_id in case_ids:
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=claim, args=(case_id, t, barrier)) for t in (REVIEWER, ADMIN)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
    assert all(sorted(codes) == [200, 409] for codes in outcomes.values()), outcomes


def test_every_worker_follows_the_stop_switch_within_the_poll_interval(trained: TrainedModel, tmp_path: Path) -> None:
    config = config_dir(trained, tmp_path / "config", serving={"poll_interval_seconds": 1.0})
    with (
        running_api(trained.store, tmp_path=tmp_path, env=env_for(config), workers=2) as api,
        httpx.Client(base_url=api.url, timeout=30) as client,
    ):
        approved = applicants_deciding(client.post, trained.store.config.features.example_record(), "approve")[0]
        paused = client.post("/v1/admin/automation", json={"mode": "paused", "reason": "drift"}, headers=bearer(ADMIN))
        assert paused.status_code == 200, paused.text
        try:
            time.sleep(2.5)  # the poll interval, and margin for a busy machine
            answers = [fresh_post(api.url, approved) for _ in range(30)]  # new connections: either worker
            seen = Counter((a["decision"], (a.get("automation") or {}).get("model_decision")) for a in answers)
            assert seen == {("review", "approve"): 30}, seen
            assert all(fresh_model(api.url)["automation"]["mode"] == "paused" for _ in range(10))
        finally:
            resumed = client.post("/v1/admin/automation", json={"mode": "on", "reason": "ok"}, headers=bearer(ADMIN))
            assert resumed.status_code == 200, resumed.text
        time.sleep(2.5)
        assert [fresh_post(api.url, approved)["decision"] for _ in range(10)] == ["approve"] * 10


def fresh_post(url: str, applicant: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/v1/predict", json=applicant)
        assert response.status_code == 200, response.text
        return response.json()


def fresh_model(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.get("/v1/model").json()


def test_kill_9_under_load_loses_no_case_and_opens_none_twice(trained: TrainedModel, tmp_path: Path) -> None:
    # segments close every 30 s: at the kill the answered records are in the write-ahead files only
    config = config_dir(
        trained,
        tmp_path / "config",
        decision=ALL_REFERRED,
        prediction_log={"flush_interval_seconds": 30.0, "upload_artifacts": False},
    )
    log_dir = tmp_path / "log"
    applicant = trained.store.config.features.example_record()
    answered: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                request_id = f"k9-{uuid.uuid4().hex[:12]}"
                try:
                    response = client.post("/v1/predict", json=applicant, headers={"X-Request-ID": request_id})
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:
                    with lock:
                        answered[request_id] = response.json()["case"]["id"]

    env = env_for(config)
    with running_api(trained.store, tmp_path=tmp_path / "first", env=env, log_dir=log_dir, workers=2) as api:
        threads = [threading.Thread(target=load, args=(api.url,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(answered) < 200:
            assert time.monotonic() < deadline, f"only {len(answered)} answers in 60 s: {api.process.log_tail()}"
            time.sleep(0.05)
        api.process.terminate(signal.SIGKILL)  # the whole group: both workers, mid-load
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not list(log_dir.rglob("*.parquet")), "records were already in Parquet: the kill proves nothing"
    with running_api(trained.store, tmp_path=tmp_path / "second", env=env, log_dir=log_dir) as restarted:
        store = CaseStore(f"sqlite:///{log_dir.parent / 'cases' / 'cases.sqlite'}", ReviewConfig())
        deadline = time.monotonic() + 60
        while True:  # the reconciliation at start has read the recovered files
            with store.engine.connect() as connection:
                rows = connection.exec_driver_sql("select request_id, id from cases").all()
                files = connection.exec_driver_sql("select count(*) from case_log_files").scalar_one()
            if files and {r for r, _ in rows} >= set(answered):
                break
            assert time.monotonic() < deadline, f"{len(set(answered) - {r for r, _ in rows})} cases missing"
            time.sleep(0.2)
        restarted.process.terminate(signal.SIGTERM)
        store.close()
    counts = Counter(request_id for request_id, _ in rows)
    assert max(counts.values()) == 1, "a decision has two cases"
    ids = dict(rows)
    moved = {r: (case_id, ids[r]) for r, case_id in answered.items() if ids[r] != case_id}
    assert not moved, f"cases renumbered after the restart: {list(moved.items())[:3]}"
