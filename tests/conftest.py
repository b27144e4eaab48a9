"""Shared fixtures: a real MLflow store (SQLite in a temp dir) and a real trained model.

The session model is trained once on the committed data with a small, fast
search (same code path as ``make train``), registered and promoted, so the
API, log, UI and batch tests all run against a real registered version.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from credit_risk import registry
from credit_risk.config import DEFAULT_CONFIG_DIR, PROJECT_ROOT, ProjectConfig, Settings, load_project_config

FAST_TRAINING = {
    "cv": {"folds": 3, "repeats": 1},
    "candidates": {
        "logistic_regression": [{"C": 0.3}],
        "xgboost": [
            {
                "max_depth": 2,
                "learning_rate": 0.1,
                "n_estimators": 80,
                "subsample": 0.9,
                "colsample_bytree": 0.9,
                "min_child_weight": 1,
            }
        ],
    },
}


def write_config_dir(target: Path, *, training: dict | None = None, model: dict | None = None) -> Path:
    """Copy ``config/`` to ``target`` with top-level keys of training.yaml / model_config.yaml replaced.

    The files state only what differs from the defaults, so an override names a whole top-level
    section as it should be (keys it leaves out are at their defaults)."""
    shutil.copytree(DEFAULT_CONFIG_DIR, target, dirs_exist_ok=True)
    for name, overrides in (("training.yaml", training), ("model_config.yaml", model)):
        if overrides:
            path = target / name
            data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
            data.update(overrides)
            path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


@dataclass
class Store:
    """A real MLflow tracking store and registry in a temp dir."""

    uri: str
    settings: Settings
    config: ProjectConfig
    client: MlflowClient


def make_store(tmp: Path, *, training: dict | None = None, model: dict | None = None) -> Store:
    config_dir = write_config_dir(tmp / "config", training={**FAST_TRAINING, **(training or {})}, model=model)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = Settings(MLFLOW_TRACKING_URI=uri, CREDIT_RISK_CONFIG_DIR=config_dir)
    config = load_project_config(config_dir, root=PROJECT_ROOT)
    return Store(uri=uri, settings=settings, config=config, client=registry.connect(settings, PROJECT_ROOT))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, empty store for tests that change the registry."""
    return make_store(tmp_path)


@dataclass
class TrainedModel:
    store: Store
    version: ModelVersion


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedModel]:
    """One model trained, registered and promoted to production, shared by the session."""
    from pipelines.promote import promote
    from pipelines.train import train

    session_store = make_store(tmp_path_factory.mktemp("session-store"))
    version = train(session_store.config, session_store.settings)
    promote(session_store.config, session_store.settings, reason="test session model")
    yield TrainedModel(store=session_store, version=version)


@pytest.fixture(autouse=True)
def _tracking_uri_follows_fixture(request: pytest.FixtureRequest) -> None:
    """MLflow's tracking URI is process-global: point it at the store the test uses."""
    for name in ("store", "trained"):
        if name in request.fixturenames:
            value = request.getfixturevalue(name)
            chosen = value if isinstance(value, Store) else value.store
            registry.connect(chosen.settings, PROJECT_ROOT)
            return
