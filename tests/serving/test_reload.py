"""Following the alias: hot swap under load, rollback, refused artifacts, serialised reloads,
promotion and rollback through the API, and a registry that is not there at start."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import pytest

from credit_risk import lifecycle, registry
from credit_risk.config import PROJECT_ROOT
from tests.conftest import Store, two_versions_store
from tests.serving.conftest import ADMIN_TOKEN, app_client
from tests.support.api import running_api

NAME = "credit-risk"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class TwoVersions:
    store: Store
    first: str  # holds the serving alias between tests
    second: str  # the challenger


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoVersions]:
    """A store with version 1 in production and version 2 registered beside it (polls every 0.3 s)."""
    serving = {"poll_interval_seconds": 0.3, "retry_seconds": 0.2, "max_batch_size": 100}
    store, first, second = two_versions_store(tmp_path_factory, model={"serving": serving})
    registry.connect(store.settings, PROJECT_ROOT)
    yield TwoVersions(store, first, second)


@pytest.fixture
def on_first(two: TwoVersions) -> Iterator[TwoVersions]:
    """Each test starts and ends with the first version holding the serving alias."""
    registry.connect(two.store.settings, PROJECT_ROOT)
    yield two
    registry.connect(two.store.settings, PROJECT_ROOT)
    if registry.aliases_of(two.store.client, NAME).get("production") != two.first:
        _move(two, two.first)


def _move(two: TwoVersions, version: str) -> None:
    lifecycle.move_alias(two.store.client, NAME, "production", version, action="test", reason="test")


def _artifact_dir(store: Store, version: str) -> Path:
    uri = store.client.get_model_version_download_uri(NAME, version)
    path = Path(unquote(urlparse(uri).path))
    assert path.is_dir(), uri
    return path


# ------------------------------------------------------------------ in-process


@pytest.mark.code
def test_a_tampered_artifact_is_refused_and_the_old_version_keeps_serving(
    on_first: TwoVersions, tmp_path: Path, applicant_example: dict
) -> None:
    two = on_first
    target = next(_artifact_dir(two.store, two.second).rglob("model.json"))
    original = target.read_bytes()
    with app_client(two.store, tmp_path, poll_interval_seconds=600) as client:
        try:
            target.write_bytes(original + b"\n")  # one byte changed after registration
            _move(two, two.second)
            response = client.post("/v1/admin/reload", headers=ADMIN)
            assert response.status_code == 409, response.text
            assert response.json()["attempt"]["outcome"] == "refused"
            assert "hash mismatch" in response.json()["attempt"]["error"]
            info = client.get("/v1/model").json()
            assert info["version"] == two.first
            assert (info["last_reload"]["outcome"], info["last_reload"]["version"]) == ("refused", two.second)
            scored = client.post("/v1/predict", json=applicant_example)
            assert scored.status_code == 200 and scored.json()["model"]["version"] == two.first
            assert client.get("/ready").status_code == 200
        finally:
            target.write_bytes(original)


@pytest.mark.code
def test_a_version_without_a_hash_tag_is_refused(on_first: TwoVersions, tmp_path: Path) -> None:
    two = on_first
    tag = registry.get_version(two.store.client, NAME, two.second).tags[registry.ARTIFACT_DIGEST_TAG]
    with app_client(two.store, tmp_path, poll_interval_seconds=600) as client:
        try:
            two.store.client.delete_model_version_tag(NAME, two.second, registry.ARTIFACT_DIGEST_TAG)
            _move(two, two.second)
            attempt = client.post("/v1/admin/reload", headers=ADMIN).json()["attempt"]
            assert attempt["outcome"] == "refused" and "artifact_sha256" in attempt["error"]
            assert client.get("/v1/model").json()["version"] == two.first
        finally:
            two.store.client.set_model_version_tag(NAME, two.second, registry.ARTIFACT_DIGEST_TAG, tag)


@pytest.mark.code
def test_two_reloads_at_once_load_the_new_version_once(on_first: TwoVersions, tmp_path: Path) -> None:
    two = on_first
    with app_client(two.store, tmp_path, poll_interval_seconds=600) as client:
        holder = client.app.state.runtime.holder
        _move(two, two.second)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=lambda: outcomes.append(holder.refresh(trigger="admin").outcome)) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == ["loaded", "unchanged", "unchanged"]
        assert holder.served.version == two.second


@pytest.mark.code
def test_promote_and_rollback_through_the_api_follow_the_alias_at_once(on_first: TwoVersions, tmp_path: Path) -> None:
    two = on_first
    with app_client(two.store, tmp_path, poll_interval_seconds=600) as client:
        response = client.post("/v1/admin/promote", json={"reason": "test: api promotion"}, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["event"]["to_version"], body["reload"]["outcome"]) == (two.second, "loaded")
        assert (body["event"]["state"], body["served_version"]) == ("completed", two.second)
        assert body["event"]["actor"] == "admin (admin)"  # the caller, not the service's OS user
        assert {gate["name"] for gate in body["gates"] if gate["passed"]} == {
            "min_auc",
            "max_brier",
            "min_disparate_impact",
            "max_auc_drop",
        }
        assert client.get("/v1/model").json()["version"] == two.second
        response = client.post(
            "/v1/admin/rollback", json={"version": None, "reason": "test: api rollback"}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        assert response.json()["event"]["to_version"] == two.first
        assert response.json()["event"]["actor"] == "admin (admin)"
        assert client.get("/v1/model").json()["version"] == two.first
        history = client.get("/v1/registry").json()["history"]
        assert [(e["from_version"], e["to_version"], e["state"]) for e in history[-2:]] == [
            (two.first, two.second, "completed"),
            (two.second, two.first, "completed"),
        ]


@pytest.mark.code
def test_promotion_dry_run_through_the_api_answers_the_gates_and_moves_nothing(
    on_first: TwoVersions, tmp_path: Path
) -> None:
    two = on_first
    with app_client(two.store, tmp_path, poll_interval_seconds=600) as client:
        history = client.get("/v1/registry").json()["history"]
        response = client.post("/v1/admin/promote", json={"dry_run": True}, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["version"], body["champion_version"], body["dry_run"]) == (two.second, two.first, True)
        assert body["would_promote"] is True and body["failed_gates"] == []
        for gate in body["gates"]:
            assert set(gate) == {"name", "passed", "value", "limit", "comparison", "message"}
        assert client.get("/v1/registry").json()["history"] == history
        assert registry.aliases_of(two.store.client, NAME)["production"] == two.first
        assert client.get("/v1/model").json()["version"] == two.first


@pytest.mark.code
def test_a_move_the_service_fails_to_load_answers_409_with_the_event_and_the_reload(
    on_first: TwoVersions, tmp_path: Path
) -> None:
    """Rollback to an earlier holder whose digest matches but whose booster no longer loads."""
    two = on_first
    folder = next(_artifact_dir(two.store, two.second).rglob("model.json")).parent
    kind = json.loads((folder / "model.json").read_text())["kind"]
    target = folder / ("booster.ubj" if kind == "xgboost" else "model.json")
    original = target.read_bytes()
    tag = registry.get_version(two.store.client, NAME, two.second).tags[registry.ARTIFACT_DIGEST_TAG]
    with app_client(two.store, tmp_path, poll_interval_seconds=600) as client:
        _move(two, two.second)  # the second version held the alias once (the service does not follow: no poll)
        _move(two, two.first)
        try:
            target.write_bytes(original[: len(original) // 2])
            download = registry.download_version(two.store.client, NAME, two.second, tmp_path / "broken")
            two.store.client.set_model_version_tag(
                NAME, two.second, registry.ARTIFACT_DIGEST_TAG, registry.directory_digest(download)
            )
            response = client.post(
                "/v1/admin/rollback", json={"version": two.second, "reason": "test: broken"}, headers=ADMIN
            )
            assert response.status_code == 409, response.text
            body = response.json()
            assert (body["event"]["to_version"], body["event"]["state"]) == (two.second, "completed")
            assert (body["reload"]["outcome"], body["reload"]["version"]) == ("failed", two.second)
            assert body["served_version"] == two.first and "did not load it" in body["detail"]
            assert client.get("/v1/model").json()["version"] == two.first
        finally:
            target.write_bytes(original)
            two.store.client.set_model_version_tag(NAME, two.second, registry.ARTIFACT_DIGEST_TAG, tag)


@pytest.mark.code
def test_refused_promotion_is_422_with_the_reason(on_first: TwoVersions, tmp_path: Path) -> None:
    with app_client(on_first.store, tmp_path, poll_interval_seconds=600) as client:
        missing = client.post("/v1/admin/promote", json={"version": "99", "reason": "x"}, headers=ADMIN)
        assert missing.status_code == 422
        assert "version 99 of 'credit-risk' does not exist" in missing.json()["detail"][0]["msg"]
        same = client.post("/v1/admin/promote", json={"version": on_first.first, "reason": "x"}, headers=ADMIN)
        assert same.status_code == 422 and "already holds" in same.json()["detail"][0]["msg"]


@pytest.mark.code
def test_registry_unreachable_at_start_then_back(on_first: TwoVersions, tmp_path: Path) -> None:
    later = tmp_path / "not-yet"
    later.write_text("a file where the registry's folder should be: the store cannot open")
    store = on_first.store
    db = Path(unquote(urlparse(store.uri).path))
    moved = Store(
        uri=f"sqlite:///{later / 'mlflow.db'}", settings=store.settings, config=store.config, client=store.client
    )
    with app_client(moved, tmp_path / "log", ready=False, retry_seconds=0.2) as client:
        deadline = time.monotonic() + 30
        while (response := client.get("/ready")).json().get("reason", "").startswith("starting"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert response.status_code == 503
        assert "registry check failed" in response.json()["reason"]
        assert client.post("/v1/predict", json={}).status_code == 503
        later.unlink()
        later.mkdir()
        shutil.copy(db, later / "mlflow.db")  # the registry comes back
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").text
            time.sleep(0.05)
        assert client.get("/v1/model").json()["version"] == on_first.first


@pytest.mark.code
def test_registry_lost_later_keeps_serving_and_reports_the_failed_poll(
    on_first: TwoVersions, tmp_path: Path, applicant_example: dict
) -> None:
    copy = tmp_path / "registry"
    copy.mkdir()
    shutil.copy(Path(unquote(urlparse(on_first.store.uri).path)), copy / "mlflow.db")
    store = on_first.store
    moved = Store(
        uri=f"sqlite:///{copy / 'mlflow.db'}", settings=store.settings, config=store.config, client=store.client
    )
    with app_client(moved, tmp_path / "log", retry_seconds=0.2) as client:
        (copy / "mlflow.db").write_bytes(b"not a database" * 1000)  # the registry breaks under the service
        response = client.post("/v1/admin/reload", headers=ADMIN)
        assert response.status_code == 503
        assert client.get("/v1/model").json()["last_poll"]["outcome"] == "registry_error"
        assert client.post("/v1/predict", json=applicant_example).status_code == 200
        assert client.get("/ready").status_code == 200


# ------------------------------------------------------------------ a real uvicorn process


@pytest.mark.integration
def test_hot_swap_and_back_under_load_fails_no_request(
    on_first: TwoVersions, tmp_path: Path, applicant_example: dict
) -> None:
    two = on_first
    seen: list[list[str]] = [[] for _ in range(3)]
    failures: list[str] = []
    stop = threading.Event()

    def drive(url: str, log: list[str]) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/predict", json=applicant_example)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                else:
                    log.append(response.json()["model"]["version"])

    def wait_for(url: str, version: str) -> None:
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v1/model").json()["version"] != version:
            assert time.monotonic() < deadline, f"the service never switched to version {version}"
            time.sleep(0.05)
        time.sleep(0.5)  # let requests flow on the new version

    with running_api(two.store, tmp_path=tmp_path) as api:
        threads = [threading.Thread(target=drive, args=(api.url, log)) for log in seen]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            _move(two, two.second)
            wait_for(api.url, two.second)
            _move(two, two.first)  # rollback: the alias moves back, no restart
            wait_for(api.url, two.first)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    assert not failures, failures[:5]
    for log in seen:
        switches = [v for i, v in enumerate(log) if i == 0 or log[i - 1] != v]
        assert switches == [two.first, two.second, two.first], switches


@pytest.fixture
def applicant_example(two: TwoVersions) -> dict:
    return two.store.config.features.example_record()
