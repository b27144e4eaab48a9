"""Fixtures for the scoring service: an in-process app (TestClient) on the session's real model."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from credit_risk.config import ProjectConfig, Settings
from serving.app import create_app
from tests.conftest import Store, TrainedModel

ADMIN_TOKEN = "test-admin-token-0123456789"
# the address a TestClient names in its Host header: the service answers only its own (serving.allowed_hosts)
LOOPBACK = "http://127.0.0.1"


def with_serving(config: ProjectConfig, **changes: Any) -> ProjectConfig:
    """The same configuration with some ``serving:`` keys changed."""
    serving = config.model.serving.model_copy(update=changes)
    return config.model_copy(update={"model": config.model.model_copy(update={"serving": serving})})


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"service not ready: {response.text}")
        time.sleep(0.05)


@contextlib.contextmanager
def app_client(
    store: Store,
    log_dir: Path,
    *,
    admin_token: str | None = ADMIN_TOKEN,
    config: ProjectConfig | None = None,
    ready: bool = True,
    **serving: Any,
) -> Iterator[TestClient]:
    """The service in-process (lifespan included) on ``store``; waits for ``/ready`` unless ``ready=False``."""
    settings = Settings(
        MLFLOW_TRACKING_URI=store.uri,
        CREDIT_RISK_CONFIG_DIR=store.settings.config_dir,
        CREDIT_RISK_ADMIN_TOKEN=admin_token,
        CREDIT_RISK_LOG_DIR=log_dir,
    )
    app = create_app(with_serving(config or store.config, **serving), settings)
    with TestClient(app, base_url=LOOPBACK) as client:
        if ready:
            wait_ready(client)
        yield client


@pytest.fixture(scope="module")
def client(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One in-process service per test module, serving the session's production model."""
    with app_client(trained.store, tmp_path_factory.mktemp("log"), max_batch_size=50) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def applicant(trained: TrainedModel) -> dict[str, Any]:
    """A valid applicant: the schema's example record."""
    return trained.store.config.features.example_record()
