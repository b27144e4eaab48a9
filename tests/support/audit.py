"""The service with role tokens, in-process (lifespan included), for the audit tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from credit_risk.config import ProjectConfig, Settings
from serving.app import create_app
from tests.conftest import Store
from tests.serving.conftest import LOOPBACK

ADMIN = "test-admin-token-0123456789"
AUDITOR = "test-auditor-token-9876543210"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"service not ready: {client.get('/ready').text}")
        time.sleep(0.05)


@contextlib.contextmanager
def audit_client(
    store: Store,
    log_dir: Path,
    *,
    admin: str | None = ADMIN,
    admin_name: str | None = "ops-alice",
    auditor: str | None = AUDITOR,
    auditor_name: str | None = "audit-bob",
    config: ProjectConfig | None = None,
    hash_key: str | None = None,
) -> Iterator[TestClient]:
    """The real service on ``store`` with an admin token named ops-alice and an auditor named audit-bob."""
    settings = Settings(
        MLFLOW_TRACKING_URI=store.uri,
        CREDIT_RISK_CONFIG_DIR=store.settings.config_dir,
        CREDIT_RISK_ADMIN_TOKEN=admin,
        CREDIT_RISK_ADMIN_TOKEN_NAME=admin_name,
        CREDIT_RISK_AUDITOR_TOKEN=auditor,
        CREDIT_RISK_AUDITOR_TOKEN_NAME=auditor_name,
        CREDIT_RISK_LOG_DIR=log_dir,
        CREDIT_RISK_LOG_HASH_KEY=hash_key,
    )
    app = create_app(config or store.config, settings)
    with TestClient(app, base_url=LOOPBACK) as client:
        wait_ready(client)
        yield client


def wait_logged(client: TestClient, request_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """The logged decision, once the writer has flushed it (every second by default)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/decisions/{request_id}", headers=bearer(AUDITOR))
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 404, response.text
        if time.monotonic() > deadline:
            raise TimeoutError(f"{request_id} never reached the log")
        time.sleep(0.2)
