"""Fixtures for the reliability tests: a registry with good, tampered and broken versions,
and helpers to read the prediction log and watch a running service."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pyarrow.dataset as ds
import pytest

from credit_risk import lifecycle, registry
from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, load_project_config
from credit_risk.scoring import ScoringModel
from tests.conftest import Store, built_once, make_store, make_store_at

NAME = "credit-risk"
ALIAS = "production"


@dataclass(frozen=True)
class Fleet:
    """One store, four registered versions; ``good`` holds the serving alias between tests."""

    store: Store
    good: str  # trained, promoted
    next_good: str  # trained, registered, a fine successor
    tampered: str  # one byte of an artifact changed after registration (digest tag left alone)
    broken: str  # the booster corrupted, the digest tag recomputed to match: passes the hash, fails to load


def serving_section(**changes: Any) -> dict[str, Any]:
    """The committed ``serving:`` section (as loaded, defaults included) with some keys changed."""
    serving = load_project_config(DEFAULT_CONFIG_DIR).model.serving.model_dump(mode="json")
    return {**serving, **changes}


def artifact_dir(store: Store, version: str) -> Path:
    """Where the registry keeps a version's files (a local folder: the stores here are embedded)."""
    uri = store.client.get_model_version_download_uri(NAME, version)
    path = Path(unquote(urlparse(uri).path))
    assert path.is_dir(), uri
    return path


def scoring_files(store: Store, version: str) -> Path:
    return registry.scoring_dir(artifact_dir(store, version))


def _tamper(store: Store, version: str) -> None:
    """Change one digit of the reference profile: the model still loads, only the hash can tell."""
    target = scoring_files(store, version) / "reference_profile.json"
    data = bytearray(target.read_bytes())
    at = next(i for i, byte in enumerate(data) if chr(byte) in "12345678")
    data[at] += 1
    target.write_bytes(bytes(data))
    ScoringModel.load(target.parent)  # loadable: a service without the hash check would serve it


def _break(store: Store, version: str) -> None:
    """Corrupt the model file and record the new digest, as a registration of a bad build would."""
    folder = scoring_files(store, version)
    kind = json.loads((folder / "model.json").read_text())["kind"]
    target = folder / ("booster.ubj" if kind == "xgboost" else "model.json")
    content = target.read_bytes()
    target.write_bytes(content[: len(content) // 2])  # a truncated upload
    with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises, it must not load
        ScoringModel.load(folder)
    with tempfile.TemporaryDirectory() as tmp:  # the digest as registration computes it: over the download
        digest = registry.directory_digest(registry.download_version(store.client, NAME, version, Path(tmp)))
    store.client.set_model_version_tag(NAME, version, registry.ARTIFACT_DIGEST_TAG, digest)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """Four versions trained by the project's own job; the service polls every 0.5 s. Built once
    (:func:`tests.conftest.built_once`): the parallel part's users and the tests that run alone share it."""
    from pipelines.promote import promote
    from pipelines.train import train

    def build(folder: Path) -> dict:
        serving = serving_section(poll_interval_seconds=0.5, retry_seconds=0.2, max_batch_size=50)
        store = make_store(folder, model={"serving": serving})
        registry.connect(store.settings, PROJECT_ROOT)
        good = str(train(store.config, store.settings).version)
        promote(store.config, store.settings, reason="reliability: first model")
        next_good, tampered, broken = (str(train(store.config, store.settings).version) for _ in range(3))
        _tamper(store, tampered)
        _break(store, broken)
        return {"good": good, "next_good": next_good, "tampered": tampered, "broken": broken}

    own, versions = built_once(tmp_path_factory, "fleet", build)
    store = make_store_at(own)
    registry.connect(store.settings, PROJECT_ROOT)
    return Fleet(store=store, **versions)


@pytest.fixture
def on_good(fleet: Fleet) -> Iterator[Fleet]:
    """The test starts and ends with ``fleet.good`` holding the serving alias."""
    registry.connect(fleet.store.settings, PROJECT_ROOT)
    assert registry.aliases_of(fleet.store.client, NAME).get(ALIAS) == fleet.good
    yield fleet
    registry.connect(fleet.store.settings, PROJECT_ROOT)
    move_alias(fleet.store, fleet.good)


def move_alias(store: Store, version: str) -> None:
    if registry.aliases_of(store.client, NAME).get(ALIAS) != version:
        lifecycle.move_alias(store.client, NAME, ALIAS, version, action="test", reason="reliability test")


def read_log(log_dir: Path) -> list[dict[str, Any]]:
    """Every row of the prediction log (Parquet, hive-partitioned by date)."""
    if not any(log_dir.rglob("*.parquet")):
        return []
    return ds.dataset(log_dir, format="parquet", partitioning="hive").to_table().to_pylist()


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def model_info(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/v1/model", timeout=10).json()


def applicant_bytes(store: Store) -> bytes:
    return json.dumps(store.config.features.example_record()).encode()


@pytest.fixture(scope="session")
def example(fleet: Fleet) -> dict[str, Any]:
    return fleet.store.config.features.example_record()
