"""Two real versions (champion in production, a different challenger) on one store, shared by the
experiment and approval tests; each test leaves production on the champion and no experiment running."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from credit_risk import lifecycle, registry
from credit_risk.config import PROJECT_ROOT, ProjectConfig, Settings, load_project_config
from credit_risk.experiments.model import active_experiment
from credit_risk.lifecycle import ledger
from serving.app import create_app
from tests.conftest import FAST_TRAINING, Store, built_once, make_store, make_store_at, write_config_dir
from tests.serving.conftest import wait_ready

ADMIN_TOKEN = "experiments-admin-token-0123456789"
APPROVER_TOKEN = "experiments-approver-token-0123456789"
# the challenger: another model (deeper trees, no logistic candidate), so the arms really differ
CHALLENGER_TRAINING = {
    **FAST_TRAINING,
    "candidates": {
        "xgboost": [
            {
                "max_depth": 3,
                "learning_rate": 0.1,
                "n_estimators": 60,
                "subsample": 0.9,
                "colsample_bytree": 0.6,
                "min_child_weight": 1,
            }
        ]
    },
}


@dataclass
class TwoModels:
    store: Store
    champion: str
    challenger: str


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> TwoModels:
    """Trained once for the whole run (:func:`tests.conftest.built_once`): each worker gets its own copy."""
    from pipelines.train import train

    def build(folder: Path) -> dict:
        store = make_store(folder)
        registry.connect(store.settings, PROJECT_ROOT)
        champion = str(train(store.config, store.settings).version)
        lifecycle.promote(store.config, store.settings, reason="test: the champion")
        other = load_project_config(write_config_dir(folder / "challenger-config", training=CHALLENGER_TRAINING))
        return {"champion": champion, "challenger": str(train(other, store.settings).version)}

    own, versions = built_once(tmp_path_factory, "experiments-store", build)
    return TwoModels(make_store_at(own), **versions)


@pytest.fixture
def two(two_models: TwoModels) -> Iterator[TwoModels]:
    """The two versions; afterwards production is the champion again and no experiment runs."""
    registry.connect(two_models.store.settings, PROJECT_ROOT)
    yield two_models
    client, name = two_models.store.client, two_models.store.config.model.registry.model_name
    running = active_experiment(ledger.read_controls(client, name), name)
    if running is not None:
        ledger.record_control(
            client, name, "experiment", action="stop", reason="test reset", actor="test", figures=running.figures()
        )
    if registry.aliases_of(client, name).get("production") != two_models.champion:
        lifecycle.move_alias(client, name, "production", two_models.champion, action="test", reason="reset")


def with_model(config: ProjectConfig, section: str, **changes: Any) -> ProjectConfig:
    """The same configuration with some keys of one ``model_config.yaml`` section changed."""
    part = getattr(config.model, section).model_copy(update=changes)
    return config.model_copy(update={"model": config.model.model_copy(update={section: part})})


def settings_for(store: Store, log_dir: Path, **env: str | None) -> Settings:
    values: dict[str, Any] = {
        "MLFLOW_TRACKING_URI": store.uri,
        "CREDIT_RISK_CONFIG_DIR": store.settings.config_dir,
        "CREDIT_RISK_ADMIN_TOKEN": ADMIN_TOKEN,
        "CREDIT_RISK_LOG_DIR": log_dir,
        **env,
    }
    return Settings(**{k: v for k, v in values.items() if v is not None})


@contextlib.contextmanager
def service(
    store: Store, log_dir: Path, *, config: ProjectConfig | None = None, **env: str | None
) -> Iterator[TestClient]:
    """The service in-process on ``store`` (admin token, plus ``env``), ready."""
    app = create_app(config or store.config, settings_for(store, log_dir, **env))
    with TestClient(app) as client:
        wait_ready(client)
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
