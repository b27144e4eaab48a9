"""Personal data in the decision log's copies (security review, issue 31, items 5 to 7).

The real service (lifespan, writer, audit routes) on the session's real model and MLflow store:
``applicant_id`` can be hashed (and still looked up and joined by its clear value) or dropped;
retention removes every copy of an old decision (log, salvage, audit index and lookup copies,
access log, MLflow); and every file holding personal data is created 0600 in 0700 folders, even
under a umask of 022.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from credit_risk import registry
from credit_risk.config import ProjectConfig
from credit_risk.decision_log.format import log_schema
from credit_risk.decision_log.privacy import keyed_hash
from credit_risk.outcomes.table import OutcomeTable
from credit_risk.schema import FeatureSchema
from serving.prediction_log import PredictionLogWriter
from serving.prediction_log.files import write_segment
from serving.prediction_log.wal import Segment
from tests.conftest import Store, TrainedModel
from tests.support.audit import ADMIN, AUDITOR, audit_client, bearer, wait_logged

pytestmark = pytest.mark.timeout(300)  # the first test may train the session model

KEY = "personal-data-hash-key-0123456789abcdef"
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
APPLICANT = "applicant-4711"


def _config(store: Store, **privacy: Any) -> ProjectConfig:
    """The store's configuration, its log with these privacy settings and its own serving experiment
    (retention here must not touch the MLflow copies of other tests sharing the session's store)."""
    changes = {"serving_experiment": f"credit-risk-serving-{uuid.uuid4().hex[:8]}", **privacy}
    log = store.config.model.prediction_log.model_copy(update=changes)
    return store.config.model_copy(update={"model": store.config.model.model_copy(update={"prediction_log": log})})


@contextlib.contextmanager
def _service(store: Store, root: Path, config: ProjectConfig) -> Iterator[TestClient]:
    with audit_client(store, root / "log", config=config, hash_key=KEY) as client:
        yield client


def _score(
    client: TestClient, applicant: dict[str, Any], request_id: str, *, applicant_id: str = APPLICANT
) -> dict[str, Any]:
    response = client.post(
        "/v1/predict", json={**applicant, "applicant_id": applicant_id}, headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 200, response.text
    return wait_logged(client, request_id)


def _logged_rows(log_dir: Path) -> list[dict[str, Any]]:
    return ds.dataset(log_dir, format="parquet", partitioning="hive").to_table().to_pylist()


# ------------------------------------------------------------------ item 5: applicant_id hashed or dropped


@pytest.fixture(scope="module")
def hashed(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    root = tmp_path_factory.mktemp("hashed-applicant")
    config = _config(trained.store, hash_fields=("applicant_id",))
    with _service(trained.store, root, config) as client:
        yield client, root


def test_a_hashed_applicant_id_is_logged_as_its_keyed_hash(
    hashed: tuple[TestClient, Path], applicant: dict[str, Any]
) -> None:
    client, root = hashed
    _score(client, applicant, "hashed-logged-1")
    row = next(r for r in _logged_rows(root / "log") if r["request_id"] == "hashed-logged-1")
    assert row["applicant_id"] == keyed_hash(KEY.encode(), APPLICANT), "the Parquet column is not the keyed HMAC"


def test_a_hashed_applicant_id_is_found_by_its_clear_value(
    hashed: tuple[TestClient, Path], applicant: dict[str, Any]
) -> None:
    client, _ = hashed
    _score(client, applicant, "hashed-found-1")
    response = client.get(f"/v1/decisions?applicant_id={APPLICANT}", headers=bearer(AUDITOR))
    assert response.status_code == 200, response.text
    found = response.json()
    assert "hashed-found-1" in [d["request_id"] for d in found["decisions"]]
    assert {d["applicant_id"] for d in found["decisions"]} == {APPLICANT}, "the page shows the id that was asked"


def test_an_outcome_by_clear_applicant_id_joins_a_hashed_log(
    hashed: tuple[TestClient, Path], applicant: dict[str, Any]
) -> None:
    client, root = hashed
    own = "applicant-with-one-decision"  # an applicant id of several decisions is ambiguous for an outcome
    _score(client, applicant, "hashed-outcome-1", applicant_id=own)
    observed = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    loaded = client.post(
        "/v1/outcomes",
        json={"outcomes": [{"applicant_id": own, "outcome": "bad", "observed_at": observed}]},
        headers=bearer(ADMIN),
    )
    assert loaded.status_code == 200, loaded.text
    stored = OutcomeTable(root / "outcomes").history().to_pylist()
    assert [r["request_id"] for r in stored] == ["hashed-outcome-1"], (
        "the outcome joined the applicant's latest decision"
    )
    assert stored[0]["applicant_id"] == keyed_hash(KEY.encode(), own), "the outcomes table holds the hash"


def test_a_dropped_applicant_id_is_not_logged_and_a_lookup_by_it_says_so(
    trained: TrainedModel, tmp_path: Path, applicant: dict[str, Any]
) -> None:
    with _service(trained.store, tmp_path, _config(trained.store, drop_fields=("applicant_id",))) as client:
        _score(client, applicant, "dropped-1")
        response = client.get(f"/v1/decisions?applicant_id={APPLICANT}", headers=bearer(AUDITOR))
    row = next(r for r in _logged_rows(tmp_path / "log") if r["request_id"] == "dropped-1")
    assert row["applicant_id"] is None
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["field"] == "applicant_id" and "not kept" in problem["msg"], problem


# ------------------------------------------------------------------ item 6: retention covers every copy


def _files_holding(root: Path, needle: str) -> list[Path]:
    """Files under ``root`` that hold ``needle``: in a Parquet file's values (its pages are compressed),
    elsewhere in the bytes."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            if needle in str(pq.read_table(path).to_pylist()):
                found.append(path)
        elif needle.encode() in path.read_bytes():
            found.append(path)
    return found


def test_retention_leaves_no_copy_of_an_old_decision(
    trained: TrainedModel, tmp_path: Path, applicant: dict[str, Any]
) -> None:
    store, config = trained.store, _config(trained.store)
    artifacts = registry.embedded_artifact_root(store.uri)
    assert artifacts is not None, "the session's store is embedded: its artifacts are a local folder"
    old_id = f"old-{uuid.uuid4().hex}"
    with _service(store, tmp_path, config) as client:
        _score(client, applicant, old_id)  # the lookup also writes the index, its copy, and the access log
        roots = {"log": tmp_path / "log", "audit": tmp_path / "audit"}
        for name, root in roots.items():
            assert _files_holding(root, old_id), f"the {name} folder should hold the decision before retention"
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while not _files_holding(artifacts, old_id):  # the uploader copies closed files to MLflow
            assert datetime.now(UTC) < deadline, "the decision never reached the MLflow copies"
            time.sleep(0.2)
        later = datetime.now(UTC).date() + timedelta(days=config.model.prediction_log.retention_days + 1)
        assert client.app.state.runtime.writer.apply_retention(today=later), "the service's retention deleted nothing"
        for where in roots.values():
            holding = _files_holding(where, old_id)
            assert not holding, f"after retention these still hold {old_id}: {holding}"
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while holding := _files_holding(artifacts, old_id):  # MLflow's copies go on a thread of their own
            assert datetime.now(UTC) < deadline, f"after retention these MLflow copies still hold {old_id}: {holding}"
            time.sleep(0.2)
        assert client.get(f"/v1/decisions/{old_id}", headers=bearer(AUDITOR)).status_code == 404


def test_retention_deletes_old_salvage_files(trained: TrainedModel, tmp_path: Path) -> None:
    salvage = tmp_path / "log" / "_invalid"
    salvage.mkdir(parents=True)
    old, new = salvage / "invalid-a-000000001.jsonl", salvage / "invalid-a-000000002.jsonl"
    old.write_text('{"record": {"applicant_id": "x"}}\n')
    new.write_text('{"record": {"applicant_id": "y"}}\n')
    long_ago = (datetime.now(UTC) - timedelta(days=40)).timestamp()
    os.utime(old, (long_ago, long_ago))
    config = trained.store.config.model.prediction_log.model_copy(update={"retention_days": 30})
    schema = trained.store.config.features
    writer = PredictionLogWriter(config, directory=tmp_path / "log", schema=schema, client_factory=None)
    writer.apply_retention(today=datetime.now(UTC).date())
    assert not old.exists() and new.exists()


# ------------------------------------------------------------------ item 7: private files and folders


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(root: Path) -> dict[Path, int]:
    """Every file and folder under ``root`` (itself included) and how far its mode is from private (0: it is
    0600 or a 0700 folder); what vanishes meanwhile is skipped."""
    found = {}
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            info = path.stat()
            wanted = PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE
            found[path] = stat.S_IMODE(info.st_mode) ^ wanted
    return found


def test_files_holding_personal_data_are_private_under_umask_022(
    trained: TrainedModel, tmp_path: Path, applicant: dict[str, Any], umask_022: None
) -> None:
    store, config = trained.store, _config(trained.store)
    with _service(store, tmp_path, config) as client:
        _score(client, applicant, "private-1")  # log, index, lookup copy, access log
        observed = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        loaded = client.post(
            "/v1/outcomes",
            json={"outcomes": [{"request_id": "private-1", "outcome": "good", "observed_at": observed}]},
            headers=bearer(ADMIN),
        )
        assert loaded.status_code == 200, loaded.text
        journal = tmp_path / "log" / "_uploads"
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while not any(p.stat().st_size for p in journal.glob("*.txt")):  # the uploads journal, once MLflow has a copy
            assert datetime.now(UTC) < deadline, "no upload was journaled"
            time.sleep(0.2)
        # one more decision: its write-ahead segment stays open (flush_interval_seconds) while the trees are walked
        assert client.post("/v1/predict", json=applicant).status_code == 200
        trees = [tmp_path / "log", tmp_path / "audit", tmp_path / "outcomes"]
        modes = {path: mode for tree in trees for path, mode in _modes(tree).items()}
    kinds = {p.name for p in modes}
    assert {"access.jsonl", "decisions.sqlite", "lock"} <= kinds, sorted(kinds)
    assert any(p.suffix == ".parquet" and "audit" in p.parts for p in modes), "no lookup copy was written"
    assert any(p.name.startswith("seg-") for p in modes), "no write-ahead segment was seen"
    loose = {str(p.relative_to(tmp_path)): f"bits {oct(off)} differ" for p, off in modes.items() if off}
    assert not loose, f"not 0600 files in 0700 folders: {loose}"


def test_salvage_files_are_private_under_umask_022(tmp_path: Path, trained: TrainedModel, umask_022: None) -> None:
    schema: FeatureSchema = trained.store.config.features
    naive = {"request_id": "r1", "scored_at": "2026-01-01T00:00:00", "model_name": "m", "model_version": "1"}
    segment = Segment(1, tmp_path / "seg", records=[naive])
    output = write_segment(tmp_path / "log", "w1", segment, lambda key, _: log_schema(schema))
    assert output.invalid == 1
    salvage = tmp_path / "log" / "_invalid"
    assert stat.S_IMODE(salvage.stat().st_mode) == PRIVATE_DIR
    assert [stat.S_IMODE(p.stat().st_mode) for p in salvage.iterdir()] == [PRIVATE_FILE]
